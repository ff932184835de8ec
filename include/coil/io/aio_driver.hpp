#pragma once
// Linux AIO backend (io_setup/io_submit/io_getevents), for O_DIRECT files.
// It runs the same completions as uring_driver and epoll_driver: an op whose
// vtable has prep_iocb (dio_ops with .aio set, io/ops/direct.hpp) fills a
// request here instead of an SQE. The driver facade (io/driver.hpp) owns one
// per runtime, created on first use; it is also usable on its own: push,
// flush (one io_submit per batch), wait or poll the eventfd, reap
// completions into your list. Single-threaded; knows nothing about coroutines.
//
// Raw system calls rather than libaio: libaio adds nothing but thin wrappers,
// and its struct iocb hides aio_rw_flags on older releases, which write sync
// levels need.
//
// Guarantees:
// - the kernel never owns more than capacity() requests; the rest wait in a
//   FIFO user-space queue and are submitted as completions free room;
// - a partial io_submit keeps the unsubmitted tail queued, in order; a request
//   the kernel rejects at submission completes with that error;
// - EAGAIN from io_submit is backpressure: the queue waits for a completion
//   instead of retrying in a loop;
// - every completion is handed back exactly once, through reap().
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "coil/core/assert.hpp"
#include "coil/core/intrusive_list.hpp"
#include "coil/core/result.hpp"
#include "coil/core/unique_fd.hpp"
#include "coil/io/completion.hpp"

namespace coil {

// The kernel's struct iocb (linux/aio_abi.h), mirrored so this header does not
// pull in <linux/fs.h> (which clashes with <sys/mount.h>). The .cpp checks the
// layout against the kernel header.
struct aio_iocb {
  uint64_t data = 0;  // aio_data: returned in the event (the completion)
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint32_t key = 0;      // aio_key: set by the kernel
  int32_t rw_flags = 0;  // aio_rw_flags: RWF_DSYNC, RWF_SYNC, ...
#else
  int32_t rw_flags = 0;
  uint32_t key = 0;
#endif
  uint16_t opcode = 0;  // aio_lio_opcode: IOCB_CMD_*
  int16_t reqprio = 0;
  uint32_t fildes = 0;
  uint64_t buf = 0;
  uint64_t nbytes = 0;
  int64_t offset = 0;
  uint64_t reserved2 = 0;
  uint32_t flags = 0;  // IOCB_FLAG_RESFD, IOCB_FLAG_IOPRIO
  uint32_t resfd = 0;
};
static_assert(sizeof(aio_iocb) == 64, "struct iocb is 64 bytes in the kernel ABI");

// The kernel's struct io_event, mirrored for the same reason.
struct aio_event {
  uint64_t data;  // the request's aio_data
  uint64_t obj;   // the iocb address
  int64_t res;
  int64_t res2;
};

// Durability of one write, set per request in aio_rw_flags (like pwritev2).
enum class write_sync : uint8_t {
  none,
  dsync,  // RWF_DSYNC: data (and the metadata needed to read it) is durable on completion
  sync,   // RWF_SYNC: data and all metadata, like O_SYNC
};

// Filling a request. Lengths above the kernel's 0x7ffff000-byte cap are
// clamped by the kernel (short transfer), like read(2).
void aio_prep_read(aio_iocb& cb, int fd, void* buf, std::size_t len, uint64_t offset) noexcept;
void aio_prep_write(aio_iocb& cb, int fd, const void* buf, std::size_t len, uint64_t offset,
                    write_sync sync = write_sync::none) noexcept;
// iov (the array itself) must stay valid until the request completes.
void aio_prep_readv(aio_iocb& cb, int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset) noexcept;
void aio_prep_writev(aio_iocb& cb, int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset,
                     write_sync sync = write_sync::none) noexcept;
// Files without AIO fsync (pipes, some file systems) make the request fail
// with the kernel's EINVAL; dio_ops::fsync reports errc::unsupported_op.
void aio_prep_fsync(aio_iocb& cb, int fd, bool datasync) noexcept;

struct aio_options {
  unsigned capacity = 128;  // most requests the kernel owns at once (io_setup's nr_events)
  bool eventfd = true;      // signal completions on event_fd() (IOCB_FLAG_RESFD); the facade needs it
  // push() flushes once this many requests were pushed since the last flush
  // (0: only flush()/wait() submit). 1, the default, is fio's
  // iodepth_batch_submit: one io_submit per request, which lets the device
  // start on each request at once; AIO carries only O_DIRECT I/O, where
  // that matters more than the system calls a batch saves
  // (docs/performance.md, submit batching).
  unsigned submit_batch = 1;
};

struct aio_stats {
  uint64_t pushed = 0;
  uint64_t submitted = 0;         // requests the kernel accepted
  uint64_t completed = 0;         // completions reaped (including submission failures)
  uint64_t submit_calls = 0;      // io_submit system calls
  uint64_t getevents_calls = 0;   // io_getevents system calls
  uint64_t partial_submits = 0;   // io_submit took fewer than offered
  uint64_t eagain = 0;            // io_submit said EAGAIN (backpressure)
  uint64_t queued_for_space = 0;  // flushes that left requests waiting for capacity
  uint32_t in_flight_max = 0;
  uint32_t in_flight = 0;         // now: requests the kernel owns
};

class aio_driver {
 public:
  static result<std::unique_ptr<aio_driver>> create(const aio_options& opts = {});
  // Waits for every in-flight request (their memory may still be in use by
  // the kernel), then destroys the context. Queued requests end with
  // -ECANCELED. Completions are left in state done and are not reported.
  ~aio_driver();
  aio_driver(const aio_driver&) = delete;
  aio_driver& operator=(const aio_driver&) = delete;

  // Queues c (c.ops->prep_iocb set, state idle). The request is filled from
  // the op when it is submitted: at the next flush() or wait(), or now when
  // options' submit_batch is reached.
  void push(completion& c) noexcept;

  // Submits queued requests while capacity allows. A request the kernel
  // rejects completes with its error; EAGAIN leaves the rest queued until a
  // completion frees resources. Every failure belongs to a request, so it
  // surfaces through reap(), never here.
  void flush() noexcept;

  // Flushes, then blocks until at least one completion is ready or
  // timeout_ns passes (negative: no timeout). Returns at once when nothing
  // can complete. A signal is not an error.
  result<void> wait(int64_t timeout_ns) noexcept;

  // Collects ready completions without blocking and appends them (state done)
  // to out, plus requests that failed at submission. Returns how many. Call
  // flush() afterwards to submit requests that were waiting for room.
  std::size_t reap(intrusive_list<completion>& out) noexcept;

  // Only the requests that finished without the kernel (submission errors,
  // cancelled while queued): no system call.
  std::size_t take_finished(intrusive_list<completion>& out) noexcept;
  bool has_finished() const noexcept { return !finished_.empty(); }

  // Asks the kernel to cancel c. Most files cannot cancel a started read or
  // write (io_cancel says EINVAL); c then completes normally. A request still
  // queued in user space completes with -ECANCELED at the next reap.
  void cancel(completion& c) noexcept;

  // Returns only when the kernel no longer owns c: cancels it, and if that
  // fails, blocks in io_getevents until it completes. Other completions that
  // arrive meanwhile are appended to out. On return c is done and unlinked.
  void cancel_and_wait(completion& c, intrusive_list<completion>& out) noexcept;

  // Readable (eventfd counter > 0) when completions may be ready; -1 without.
  int event_fd() const noexcept { return efd_.get(); }
  uint32_t in_flight() const noexcept { return in_flight_; }
  uint32_t capacity() const noexcept { return capacity_; }
  bool has_queued() const noexcept { return !waiting_.empty(); }
  bool has_pending_work() const noexcept { return in_flight_ != 0 || !waiting_.empty() || !finished_.empty(); }
  aio_stats stats() const noexcept {
    aio_stats s = stats_;
    s.in_flight = in_flight_;
    return s;
  }

  // Calls f(completion&, bool in_flight) for every request pushed and not
  // yet completed: with the kernel (true, in submission order), then waiting
  // in user space (false). For diagnostics; f must not push or cancel.
  template <class F>
  void for_each_pending(F&& f) noexcept {
    submitted_.for_each([&](completion& c) { f(c, true); });
    waiting_.for_each([&](completion& c) { f(c, false); });
  }

 private:
  aio_driver() = default;
  // Moves ready completions to out; returns how many, or -errno. min_nr 0
  // never blocks.
  long get_events(long min_nr, int64_t timeout_ns, intrusive_list<completion>& out) noexcept;
  void fail_front(int32_t res) noexcept;
  // The iocb slot c was submitted in (c in flight).
  aio_iocb* slot_of(const completion& c) noexcept;
  void free_slot(aio_iocb& cb) noexcept;
  // Every slot is free or holds a request the kernel owns (debug builds).
  void check_invariants() const noexcept {
    COIL_DEBUG_ASSERT(in_flight_ <= capacity_, "more AIO requests in flight than the context holds");
    COIL_DEBUG_ASSERT(free_.size() + in_flight_ == capacity_, "an iocb slot is neither free nor in flight");
    COIL_DEBUG_ASSERT(in_flight_ != 0 || submitted_.empty(), "AIO requests listed in flight with none counted");
  }

  unsigned long ctx_ = 0;  // aio_context_t
  unique_fd efd_;
  uint32_t capacity_ = 0;
  uint32_t in_flight_ = 0;
  uint32_t submit_batch_ = 0;            // aio_options::submit_batch
  uint32_t unflushed_ = 0;               // pushes since the last flush
  intrusive_list<completion> waiting_;    // pushed, not yet accepted by the kernel
  intrusive_list<completion> submitted_;  // the kernel owns them (for listings)
  intrusive_list<completion> finished_;   // done without reaching the kernel, or reaped by wait()
  // One request per kernel slot, filled at submission: an op carries no
  // iocb of its own, and the kernel names a request by its address
  // (io_event::obj, io_cancel).
  std::vector<aio_iocb> iocbs_;
  std::vector<uint32_t> free_;            // indices of unused iocbs_
  std::vector<aio_iocb*> batch_;          // capacity entries: io_submit's argument
  std::vector<completion*> staged_;       // the completions behind batch_
  std::vector<aio_event> events_;         // capacity entries: io_getevents' output
  aio_stats stats_;
};

}  // namespace coil
