#pragma once
// The op that times the op before it in a link chain (rt/link.hpp).
#include <cstdint>
#include <system_error>

#include <liburing.h>

#include "coil/core/duration.hpp"
#include "coil/io/ops/common.hpp"

namespace coil::ops {

// IORING_OP_LINK_TIMEOUT: cancels the chain member before it if that has not
// finished within timeout_ns; that member then gives timed_out (rt/link.hpp).
// Its own result: timed_out when it fired, success when the timed op
// finished first or never started. Only valid inside a chain, after another
// op; readiness drivers emulate it with a deadline (epoll_driver).
struct link_timeout {
  static constexpr uint8_t opcode = IORING_OP_LINK_TIMEOUT;
  static constexpr uint32_t poll_events = 0;
  static constexpr bool never_blocks = true;  // no system call of its own
  int64_t timeout_ns = 0;
  mutable __kernel_timespec ts{};  // filled at prep; the kernel reads it at submission
  void prep(io_uring_sqe& s) const noexcept {
    const int64_t ns = timeout_ns < 0 ? 0 : timeout_ns;
    ts.tv_sec = ns / 1'000'000'000LL;
    ts.tv_nsec = ns % 1'000'000'000LL;
    io_uring_prep_link_timeout(&s, &ts, 0);
  }
  int32_t perform(bool) const noexcept { return -EINVAL; }  // never run alone
  static result<void> complete(int32_t res) noexcept {
    if (res == -ETIME) return fail(std::errc::timed_out);
    return {};
  }
};

}  // namespace coil::ops
