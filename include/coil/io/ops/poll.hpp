#pragma once
// Readiness of any descriptor, including ones coil did not open (a
// third-party library's socket, an eventfd, a tty, inotify): the bridge for
// code that does its own non-blocking I/O and only needs to know when.
#include <poll.h>

#include <cerrno>
#include <cstdint>

#include <liburing.h>

#include "coil/core/result.hpp"

namespace coil::ops {

// Waits until fd is ready for one of Events (POLLIN, POLLOUT, POLLPRI,
// POLLRDHUP; combine with |). The result is the ready events, which may
// also hold POLLERR and POLLHUP (always reported, as poll(2) does).
// Errors: EBADF, EINVAL (a descriptor that cannot wait: a regular file).
template <uint32_t Events>
struct poll_ready {
  static_assert(Events != 0 && (Events & ~uint32_t{POLLIN | POLLOUT | POLLPRI | POLLRDHUP}) == 0,
                "poll_ready waits for POLLIN, POLLOUT, POLLPRI or POLLRDHUP");
  static constexpr uint8_t opcode = IORING_OP_POLL_ADD;
  static constexpr uint32_t poll_events = Events;  // EPOLL* and POLL* bits agree
  static constexpr bool waits_on_peer = true;
  // Readiness drivers keep fd in their epoll set only while such ops wait:
  // the fd may be closed behind coil's back, and its number reused.
  static constexpr bool foreign_fd = true;
  int fd;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_poll_add(&s, fd, Events); }
  int32_t perform(bool nowait) const noexcept {
    if (fd < 0) return -EBADF;  // poll(2) would skip it and wait for nothing
    pollfd p{fd, static_cast<short>(Events), 0};
    for (;;) {
      const int r = ::poll(&p, 1, nowait ? 0 : -1);
      if (r < 0 && errno == EINTR && !nowait) continue;
      if (r < 0) return -errno;
      if (r == 0) return -EAGAIN;
      // io_uring refuses a bad descriptor with EBADF at submission.
      return (p.revents & POLLNVAL) ? -EBADF : static_cast<int32_t>(static_cast<uint16_t>(p.revents));
    }
  }
  static result<uint32_t> complete(int32_t res) noexcept { return from_kernel(res); }
};

}  // namespace coil::ops
