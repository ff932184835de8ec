#pragma once
// The operation contract shared by every op struct (see ops/fs.hpp, ops/net.hpp).
// An op is a plain struct, no coroutine or driver knowledge:
//   static constexpr uint8_t opcode;         io_uring opcode (probed at start)
//   static constexpr uint32_t poll_events;   readiness to wait for when a
//       non-blocking attempt gives -EAGAIN (EPOLLIN/EPOLLOUT); 0 means the op
//       may block and a fallback driver runs it on a worker thread
//   int fd;                                  the descriptor readiness applies to
//                                            (needed when poll_events != 0)
//   void prep(io_uring_sqe&) const;          fill an SQE
//   int32_t perform(bool nowait) const;      the equivalent syscall, returning
//       the result or -errno; with nowait it must not block (MSG_DONTWAIT,
//       RWF_NOWAIT) and returns -EAGAIN instead
//   static R complete(int32_t res);          kernel result -> typed result
//   static constexpr bool yields_fd;         (optional) a result >= 0 is an fd
//       that must be closed if nobody consumes it
//   static constexpr bool consumes_fd;       (optional) the op closes fd
//   static constexpr bool never_blocks;      (optional) perform(false) is quick
//       even with poll_events == 0 (nop, close): no worker thread needed
//   static constexpr bool waits_on_peer;     (optional) may wait indefinitely
//       for another party (socket recv, send, accept, connect)
//   bool at_stream_position() const;         (optional) per op: waits on a
//       peer like waits_on_peer (fs ops at current_position: pipes, ttys)
//   static constexpr bool device_io;         (optional) O_DIRECT: goes to a
//       block device (io_uring submits these in small batches)
//   static constexpr bool eager;             (optional) on a quiet loop turn
//       the io_uring runtime may try perform(true) instead of the ring
//       (socket sends; see uring_options::eager_send)
#include <cerrno>
#include <cstddef>
#include <cstdint>

#include <liburing.h>

#include "coil/core/result.hpp"

namespace coil::ops {

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
  if (res < 0) return fail(errno_code(-res));
  return {};
}
}  // namespace detail

// Any op on a registered file (driver().register_file): the SQE names the
// slot with IOSQE_FIXED_FILE; readiness drivers use the op's own fd.
template <class Op>
struct fixed : Op {
  static constexpr bool eager = false;  // a system call cannot name the slot
  int slot;
  fixed(Op op, int file_slot) noexcept : Op(op), slot(file_slot) {}
  void prep(io_uring_sqe& s) const noexcept {
    Op::prep(s);
    s.fd = slot;
    s.flags |= IOSQE_FIXED_FILE;
  }
};

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
