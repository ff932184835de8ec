#pragma once
// splice(2) between a descriptor and a pipe: the bytes move inside the
// kernel, never through user memory (socket -> pipe -> socket copies, see
// stream/copy.hpp). Two ops, one per direction, because readiness applies to
// the side that is not the pipe: splice_in (fd -> pipe) waits for fd to be
// readable, splice_out (pipe -> fd) for fd to be writable. Both work at the
// descriptors' stream positions.
//
// io_uring (IORING_OP_SPLICE, 5.7+) runs splices on its io-wq workers.
// Readiness (perform(true)): the pipe side gets SPLICE_F_NONBLOCK, and fd is
// set O_NONBLOCK around the call (sockets stay in blocking mode, and splice
// has no per-call flag for the other side; as connect does, see ops/net.hpp).
// Errors: EINVAL (neither side a pipe, or a descriptor splice cannot use),
// EBADF, EPIPE/ECONNRESET (splice_out to a closed peer; never SIGPIPE on a
// socket: splice to a socket adds no MSG_NOSIGNAL, so callers that can meet a
// closed peer should ignore SIGPIPE), ENOMEM. A result of 0 from splice_in is
// the end of fd's stream.
#include <fcntl.h>
#include <sys/epoll.h>

#include "coil/io/ops/common.hpp"

namespace coil::ops {

namespace detail {
// splice(in -> out) with fd non-blocking for the call when nowait.
inline int32_t splice_once(int fd, int in, int out, uint32_t len, unsigned flags, bool nowait) noexcept {
  if (!nowait) return kernel_ret(::splice(in, nullptr, out, nullptr, len, flags));
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  const bool toggle = (fl & O_NONBLOCK) == 0;
  if (toggle && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  const int32_t r = kernel_ret(::splice(in, nullptr, out, nullptr, len, flags | SPLICE_F_NONBLOCK));
  if (toggle) (void)::fcntl(fd, F_SETFL, fl);
  return r;
}
}  // namespace detail

// Up to len bytes from fd into pipe (the pipe's write end).
struct splice_in {
  static constexpr uint8_t opcode = IORING_OP_SPLICE;
  static constexpr uint32_t poll_events = EPOLLIN;
  static constexpr bool waits_on_peer = true;
  int fd;
  int pipe;
  uint32_t len;
  unsigned flags = SPLICE_F_MOVE;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_splice(&s, fd, -1, pipe, -1, len, flags); }
  int32_t perform(bool nowait) const noexcept { return detail::splice_once(fd, fd, pipe, len, flags, nowait); }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

// Up to len bytes from pipe (the pipe's read end) into fd.
struct splice_out {
  static constexpr uint8_t opcode = IORING_OP_SPLICE;
  static constexpr uint32_t poll_events = EPOLLOUT;
  static constexpr bool waits_on_peer = true;
  int fd;
  int pipe;
  uint32_t len;
  unsigned flags = SPLICE_F_MOVE;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_splice(&s, pipe, -1, fd, -1, len, flags); }
  int32_t perform(bool nowait) const noexcept { return detail::splice_once(fd, pipe, fd, len, flags, nowait); }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

}  // namespace coil::ops
