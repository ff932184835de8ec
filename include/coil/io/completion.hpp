#pragma once
// The unit of work a driver tracks. Callers own completions (usually inside a
// coroutine frame or on the stack) and extend them by inheritance; the driver
// never allocates one. The pointer to the completion is the io_uring user_data.
#include <cstdint>

#include <liburing.h>

#include "coil/core/intrusive_list.hpp"

namespace coil {

enum class op_state : uint8_t {
  idle,       // not yet pushed, or finished and reaped back to the owner
  queued,     // waiting in user space (for ring room, or to be tried)
  in_flight,  // the kernel (or a worker thread) owns it and its memory
  done,       // result set; sitting in a reaped list
};

struct completion;
struct aio_iocb;  // io/aio_driver.hpp

// Ops submitted as one io_uring link chain (rt/link.hpp): their SQEs go to
// the ring together and contiguous, or all wait for room together.
// Readiness drivers never see a chain: its owner pushes one member at a time.
struct link_chain {
  completion* const* members = nullptr;
  uint8_t count = 0;
  bool hard = false;  // IOSQE_IO_HARDLINK: a failure does not cancel the rest
};

// How a driver runs an operation. io_uring fills an SQE; readiness drivers
// (epoll) call perform: nonblocking first, then again when fd is ready, or
// blocking on a worker thread when the op cannot report readiness.
struct op_vtable {
  void (*prep)(completion&, io_uring_sqe&) noexcept;
  // The equivalent system call; returns the result or -errno. With nowait it
  // must not block and returns -EAGAIN instead.
  int32_t (*perform)(completion&, bool nowait) noexcept;
  uint32_t poll_events;  // EPOLLIN/EPOLLOUT to wait for on -EAGAIN; 0: may block
  uint8_t opcode;        // io_uring opcode, for probing and statistics
  bool consumes_fd;      // the op closes `fd` (readiness state must be dropped)
  bool never_blocks;     // perform(false) is quick (nop, close): run it inline
  // Multishot ops (one submission, many results). Non-null: the driver hands
  // every result of c to on_cqe (c.res and c.cqe_flags set; IORING_CQE_F_MORE
  // set while the op stays armed) and never returns c through reap(). The
  // final result comes with c.state already done; the hook may push c again
  // from there (re-arm), except while c is being drained.
  void (*on_cqe)(completion&) noexcept = nullptr;
  // Readiness emulation of a multishot op: a result of 0 ends it (recv's end
  // of stream); otherwise only errors do.
  bool zero_ends = false;
  // For in-flight listings, never on the I/O path: the name of the task
  // waiting for c (null: none) and the coarse-clock ms when it asked.
  // Null: the owner records neither.
  void (*owner)(const completion&, const char*& task, uint32_t& since_ms) noexcept = nullptr;
  // fd may be one coil did not open and will not see closed (ops::poll_ready):
  // readiness drivers keep it registered only while such ops wait on it.
  bool foreign_fd = false;
  // Non-null: the op runs on the Linux AIO backend (aio_driver), which fills
  // one request from it at submission; prep and perform are not used then.
  void (*prep_iocb)(completion&, aio_iocb&) noexcept = nullptr;
  // Non-null: c is a member of a link chain; on_cqe takes its one result.
  link_chain* (*chain_of)(completion&) noexcept = nullptr;
};

// Single-result ops may still get several CQEs (send_zc): every CQE with
// IORING_CQE_F_MORE stores its result and the op stays in flight; a final
// notification CQE (IORING_CQE_F_NOTIF) keeps the stored result.
struct completion : list_hook {
  const op_vtable* ops = nullptr;
  int32_t res = 0;        // kernel result: >= 0 success, -errno failure
  uint32_t cqe_flags = 0;
  op_state state = op_state::idle;
  bool cancel_requested : 1 = false;
  bool cancel_issued : 1 = false;  // io_uring: cancel SQE sent; AIO: io_cancel asked
  // Completes only when something outside this process acts (a peer sends,
  // drains or connects) or is multishot: io_uring keeps such ops outside its
  // CQ bound, else ops waiting for room could be what those ops wait for.
  bool unbounded : 1 = false;
  // Goes to a block device (O_DIRECT): io_uring submits these in small
  // batches (uring_options::device_submit_batch).
  bool device : 1 = false;
  // A TCP read whose short result means an empty queue (readiness drivers,
  // ops::recv::short_means_empty): while the fd's input is known empty since
  // its last readiness edge, it waits for the next edge instead of trying a
  // recv that would say EAGAIN.
  bool reads_to_empty : 1 = false;
  bool emptied : 1 = false;  // set by perform: the attempt left the queue empty
  // io_uring: times resubmitted after an ECANCELED coil did not ask for
  // (uring_driver::max_cancel_retries at most). Zeroed by every push; no
  // initializer, so constructing a completion stays one masked store.
  uint8_t cancel_retries : 2;
  // epoll: owned by the worker pool (queued for or running on a worker).
  // Set by epoll's push; no initializer, as for cancel_retries. Lives in
  // the padding before fd.
  bool on_worker : 1;
  int32_t fd = -1;             // descriptor readiness applies to (epoll)
};

}  // namespace coil
