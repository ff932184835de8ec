#pragma once
// The operation contract shared by every op struct (see ops/fs.hpp,
// ops/net.hpp): `operation` below, plus optional capabilities, each a named
// concept documented where it is declared. An op is a plain struct with no
// coroutine or driver knowledge; drivers and awaiters read these concepts at
// compile time, so an op pays only for the capabilities it declares.
//
// Errors: each op's comment lists the errnos its system call commonly gives.
// Every op may also fail with
//   ECANCELED        cancelled (stop token, timeout, destroyed awaiter)
//   EOPNOTSUPP       io_uring: the kernel lacks the op's opcode
//   errc::no_runtime / errc::runtime_closed   awaited off a runtime, or on
//                    one that stopped accepting work (op_awaiter)
#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include <liburing.h>

#include "coil/core/result.hpp"

namespace coil {
struct aio_iocb;  // coil/io/aio_driver.hpp
}  // namespace coil

namespace coil::ops {

// Has `int fd`: the descriptor readiness applies to (required when
// poll_events != 0).
template <class Op>
concept fd_op = requires(const Op& op) {
  { op.fd } -> std::convertible_to<int>;
};

// Every op has:
//   static constexpr uint8_t opcode;        io_uring opcode (probed at start)
//   static constexpr uint32_t poll_events;  readiness to wait for when a
//       non-blocking attempt gives -EAGAIN (EPOLLIN/EPOLLOUT); 0 means the op
//       may block and a fallback driver runs it on a worker thread
//   void prep(io_uring_sqe&) const noexcept;  fills an SQE
//   int32_t perform(bool nowait) const noexcept;  the equivalent system
//       call, returning the result or -errno; with nowait it must not block
//       (MSG_DONTWAIT, RWF_NOWAIT) and returns -EAGAIN instead
//   static R complete(int32_t res) noexcept;  kernel result -> typed result
template <class Op>
concept operation = requires(const Op& op, io_uring_sqe& sqe, bool nowait, int32_t res) {
  { Op::opcode } -> std::convertible_to<uint8_t>;
  { Op::poll_events } -> std::convertible_to<uint32_t>;
  { op.prep(sqe) } noexcept -> std::same_as<void>;
  { op.perform(nowait) } noexcept -> std::same_as<int32_t>;
  { Op::complete(res) } noexcept;
} && (Op::poll_events == 0 || fd_op<Op>);

// Optional capabilities. A flag counts when declared true, so a derived op
// can turn one off (fixed<Op>::eager). Members are detected by the call
// coil makes, not by an exact signature: one declared slightly off (no
// noexcept, an int result) is still used, or fails to compile where it is
// used, instead of being silently ignored.

// static constexpr bool yields_fd: a result >= 0 is a new descriptor, closed
// if nobody takes it (a late open).
template <class Op>
concept yields_fd_op = requires { requires Op::yields_fd; };

// static constexpr bool consumes_fd: the op closes fd, which is released even
// if the op never runs; readiness drivers drop their state for it.
template <class Op>
concept consumes_fd_op = fd_op<Op> && requires { requires Op::consumes_fd; };

// static constexpr bool never_blocks: perform(false) is quick even with
// poll_events == 0 (nop, close), so it runs inline, not on a worker thread.
template <class Op>
concept never_blocks_op = requires { requires Op::never_blocks; };

// static constexpr bool waits_on_peer: may wait indefinitely for another
// party (socket recv, send, accept, connect); io_uring keeps such ops
// outside its CQ bound.
template <class Op>
concept waits_on_peer_op = requires { requires Op::waits_on_peer; };

// bool at_stream_position() const: per op, waits on a peer like
// waits_on_peer (file ops at current_position: pipes, ttys, sockets).
template <class Op>
concept stream_position_op = requires(const Op& op) {
  op.at_stream_position();
};

// static constexpr bool device_io: O_DIRECT, goes to a block device
// (io_uring submits these in small batches).
template <class Op>
concept device_op = requires { requires Op::device_io; };

// static constexpr bool eager: on a quiet loop turn the io_uring runtime may
// try perform(true) instead of the ring (socket sends; see
// uring_options::eager_send).
template <class Op>
concept eager_op = requires { requires Op::eager; };

// static constexpr bool inline_read: a positional read the io_uring runtime
// first tries as one preadv2(RWF_NOWAIT) (a page-cache hit needs no ring
// round trip; see uring_options::inline_reads). Needs fd, buf, len, offset.
template <class Op>
concept inline_read_op = requires { requires Op::inline_read; };

// static constexpr bool multishot: one submission, many results, each
// handed to the owner's on_cqe (see op_vtable::on_cqe).
template <class Op>
concept multishot_op = requires { requires Op::multishot; };

// static constexpr bool zero_ends: readiness emulation of a multishot op
// ends at a result of 0 (recv's end of stream); otherwise only errors do.
template <class Op>
concept zero_ends_op = requires { requires Op::zero_ends; };

// static constexpr bool foreign_fd: fd may be one coil did not open and
// will not see closed (poll_ready): readiness drivers keep it registered
// only while such ops wait on it.
template <class Op>
concept foreign_fd_op = fd_op<Op> && requires { requires Op::foreign_fd; };

// bool reads_to_empty() const; bool emptied(int32_t res) const: a read whose short
// result means an empty queue (recv's short_means_empty). reads_to_empty() says
// whether this op is one; emptied(res) whether that attempt left the queue
// empty, so readiness drivers wait for the next edge instead of retrying.
template <class Op>
concept reads_to_empty_op = requires(const Op& op, int32_t res) {
  op.reads_to_empty();
  op.emptied(res);
};

// mutable uint32_t out_flags: readiness emulation of CQE flags (a provided
// buffer's id), set by perform and copied to completion::cqe_flags. Such ops
// need a driver (no blocking form).
template <class Op>
concept reports_flags_op = requires(const Op& op) { op.out_flags; };

// void discard(int32_t res) const: releases what a result nobody takes holds
// (descriptors a recvmsg received).
template <class Op>
concept discards_op = requires(const Op& op, int32_t res) { op.discard(res); };

// bool aio; void prep_iocb(aio_iocb&) const: the op has a Linux AIO form
// (dio_ops, io/ops/direct.hpp). With aio set it binds a vtable whose
// prep_iocb fills the request, and the driver runs it on its AIO backend.
template <class Op>
concept aio_capable_op = requires(const Op& op, aio_iocb& cb) {
  { op.aio } -> std::convertible_to<bool>;
  op.prep_iocb(cb);
};

// perform(true) result meaning "not now, and no readiness edge will say when"
// (a Unix connect to a full backlog): readiness drivers try again shortly.
inline constexpr int32_t retry_later = INT32_MIN;

// Offset meaning "use and advance the file position" (pipes, sockets, ttys).
inline constexpr uint64_t current_position = static_cast<uint64_t>(-1);

namespace detail {
inline int32_t kernel_ret(long r) noexcept { return r < 0 ? -errno : static_cast<int32_t>(r); }
inline result<size_t> to_size(int32_t res) noexcept {
  return from_kernel(res).map([](uint32_t n) { return static_cast<size_t>(n); });
}
inline result<void> to_void(int32_t res) noexcept {
  if (res < 0) return fail(kernel_error(res));
  return {};
}
}  // namespace detail

// Any op on a registered file (driver().register_file): the SQE names the
// slot with IOSQE_FIXED_FILE; readiness drivers use the op's own fd. Errors:
// Op's, and EBADF for an empty slot.
template <class Op>
struct fixed : Op {
  static constexpr bool eager = false;  // a system call cannot name the slot
  static constexpr bool inline_read = false;
  int slot;
  fixed(Op op, int file_slot) noexcept : Op(op), slot(file_slot) {}
  void prep(io_uring_sqe& s) const noexcept {
    Op::prep(s);
    s.fd = slot;
    s.flags |= IOSQE_FIXED_FILE;
  }
};

// A round trip through the kernel. Errors: only the shared ones.
struct nop {
  static constexpr uint8_t opcode = IORING_OP_NOP;
  static constexpr uint32_t poll_events = 0;
  static constexpr bool never_blocks = true;
  int fd = -1;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_nop(&s); }
  int32_t perform(bool) const noexcept { return 0; }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

}  // namespace coil::ops
