#pragma once
// Awaiting an operation: op_awaiter<Op> lives in the awaiting coroutine's
// frame (no heap), pushes itself to the runtime's driver on suspension and is
// resumed after its completion is reaped.
//
// Lifetime rule: if the frame is destroyed while the kernel owns the
// operation, the destructor cancels it and blocks until the completion
// arrives, so the kernel never writes into freed memory. A late file
// descriptor (an open that finished anyway) is closed, not leaked.
#include <sys/uio.h>

#include <cerrno>
#include <coroutine>
#include <type_traits>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/result.hpp"
#include "coil/io/completion.hpp"
#include "coil/io/op_completion.hpp"
#include "coil/io/ops.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/stop.hpp"

namespace coil {

namespace detail {
// The eager path of op_awaiter::try_eager for an op not (yet) in an awaiter:
// true, with res set, if one non-blocking call finished it.
template <class Op, class May>
bool try_eager(const Op& op, stop_source* stop, May&& may, int32_t& res) noexcept {
  static_assert(ops::eager_op<Op>);
  runtime* rt = runtime::current();
  if (rt == nullptr || !rt->accepting() || !rt->eager_turn() || !may()) return false;
  if (stop != nullptr && stop->stop_requested()) return false;
  const int32_t r = op.perform(true);
  if (r == -EAGAIN || r == -EINTR || r == ops::retry_later) return false;
  res = r;
  rt->driver().count_eager();
  return true;
}
}  // namespace detail

// Out: the type await_resume returns; must be constructible from the result
// of Op::complete (lets file::open return result<file> from result<unique_fd>).
template <class Op, class Out = decltype(Op::complete(0))>
class [[nodiscard]] op_awaiter : detail::rt_completion, stop_callback {
 public:
  static_assert(detail::checked_operation<Op>());

  explicit op_awaiter(Op op) noexcept : op_(op) {}
  // Movable only before it is awaited (so it can be passed to with_timeout).
  op_awaiter(op_awaiter&& o) noexcept : op_(o.op_) {
    COIL_ASSERT(o.state == op_state::idle && !o.rt_, "moving an operation that was already awaited");
    o.consumed_ = true;  // the moved-from shell owns nothing (e.g. close's fd)
  }
  op_awaiter& operator=(op_awaiter&&) = delete;

  ~op_awaiter() {
    if (state == op_state::queued || state == op_state::in_flight) rt_->cancel_and_wait(*this);
    if constexpr (ops::yields_fd_op<Op>) {
      if (!consumed_ && state == op_state::done && res >= 0) (void)::close(res);
    }
    if constexpr (ops::discards_op<Op>) {
      if (!consumed_ && state == op_state::done) op_.discard(res);  // e.g. descriptors a recvmsg received
    }
    if constexpr (ops::consumes_fd_op<Op>) {
      // A close that never reached the kernel still releases the descriptor.
      if (!consumed_ && rt_ == nullptr && op_.fd >= 0) close_now();
    }
    // list hooks unlink themselves: a done-but-unresumed completion leaves the
    // ready list, and the stop callback leaves its source.
  }

  bool await_ready() const noexcept { return false; }

  // Always inlined, like admit: whether the compiler inlines these on its
  // own varies with the caller and moved the cost per op by 10-20
  // instructions either way (docs/performance.md).
  template <class P>
  [[gnu::always_inline]] bool await_suspend(std::coroutine_handle<P> h) noexcept {
    const detail::admission a = detail::admit(h);
    rt_ = a.rt;
    if (!a.ok()) return refuse(a.why);
    if constexpr (ops::inline_read_op<Op>) {
      if (try_inline_read()) return false;  // finished: the task goes on at once
    }
    stop_source* stop = a.stop;
    waiter = h;
    since_ms_ = rt_->stamp_ms();
    detail::bind_op<Op, op_awaiter, P>(*this, op_);  // listings can name the task
    if constexpr (ops::aio_capable_op<Op>) {
      rt_->driver().push(*this);  // routes by the vtable bind_op chose
    } else {
      rt_->driver().push_io<uring_driver::required_opcode(Op::opcode)>(*this);
    }
    if (stop != nullptr) {
      stop_callback::fn = &on_stop;
      stop->add(*this);
    }
    return true;
  }

  Out await_resume() noexcept {
    static_cast<stop_callback&>(*this).unlink();
    consumed_ = true;
    if (early_ != detail::refusal::none) {
      if constexpr (ops::consumes_fd_op<Op>) close_now();  // like close(2): released even on error
      return Out(fail(detail::error_of(early_)));
    }
    state = op_state::idle;
    if constexpr (ops::consumes_fd_op<Op>) {
      // Cancelled before the kernel ran it (queued for ring space, or an
      // io-wq item that never started): the descriptor is still open.
      if (res == -ECANCELED) close_now();
    }
    return Out(Op::complete(res));
  }

  Op& op() noexcept { return op_; }

  // The blocking form (coil::block on a thread without a runtime): the op's
  // own system call, made as a readiness driver's worker makes it, with the
  // same result conversion. Consumes the awaiter. Not for ops that need a
  // driver (multishot, provided buffers).
  Out perform_blocking() noexcept
    requires(!ops::multishot_op<Op> && !ops::reports_flags_op<Op>)
  {
    COIL_ASSERT(state == op_state::idle && !rt_ && !consumed_, "perform_blocking on an awaited operation");
    consumed_ = true;
    int32_t r;
    if constexpr (ops::consumes_fd_op<Op>) {
      r = close_now();  // close(2): never retried, the number is gone
    } else {
      do {
        r = op_.perform(false);
      } while (r == -EINTR);
    }
    return Out(Op::complete(r));
  }

  // Tries the op with one non-blocking system call instead of the ring, on an
  // eager turn of an io_uring runtime (see uring_options::eager_send). True
  // if that finished it: the caller resumes at once and await_resume gives
  // the result. Not-now answers leave it for await_suspend. may() is the
  // caller's own condition, asked only on an eager turn.
  template <class May>
  bool try_eager(stop_source* stop, May&& may) noexcept {
    return detail::try_eager(op_, stop, std::forward<May>(may), res);
  }

 private:
  // A positional read of a regular file: one preadv2(RWF_NOWAIT) first
  // (runtime::inline_read_may decides). True if that finished it, with res
  // set; the kernel never saw the op, so nothing is left to cancel.
  bool try_inline_read() noexcept {
    if (op_.offset == ops::current_position || !rt_->inline_read_may(op_.fd)) return false;
    iovec v{op_.buf, op_.len};
    const long n = ::preadv2(op_.fd, &v, 1, static_cast<off_t>(op_.offset), RWF_NOWAIT);
    const int32_t r = n >= 0 ? static_cast<int32_t>(n) : -errno;
    if (!rt_->inline_read_done(op_.fd, r)) return false;
    res = r;
    return true;
  }
  bool refuse(detail::refusal why) noexcept {
    early_ = why;
    return false;
  }
  int32_t close_now() noexcept {
    detail::fd_closing(op_.fd);
    return op_.perform(false);
  }
  template <class, class>
  friend struct detail::op_vtable_for;
  template <class, class, class>
  friend struct detail::op_vtable_named;
  template <class, class, const op_vtable&>
  friend struct detail::op_vtable_aio;
  static Op& op_ref(completion& c) noexcept {
    return static_cast<op_awaiter&>(static_cast<detail::rt_completion&>(c)).op_;
  }
  static void on_stop(stop_callback& cb) noexcept {
    auto& self = static_cast<op_awaiter&>(cb);
    self.rt_->driver().cancel(self);
  }
  // The waiting coroutine's promise type is P (bound in await_suspend).
  template <class P>
  static void owner_of(const completion& c, const char*& task, uint32_t& since_ms) noexcept {
    const auto& self = static_cast<const op_awaiter&>(static_cast<const detail::rt_completion&>(c));
    since_ms = self.since_ms_;
    task = nullptr;
    if constexpr (std::is_base_of_v<detail::promise_base, P>) {
      const stop_source* s = std::coroutine_handle<P>::from_address(self.waiter.address()).promise().stop;
      if (s != nullptr) task = s->name();
    }
  }

  Op op_;
  runtime* rt_ = nullptr;
  detail::refusal early_ = detail::refusal::none;  // why it never reached the driver
  uint32_t since_ms_ = 0;  // runtime::stamp_ms() when awaited, for listings
  bool consumed_ = false;
};

// Awaits a no-op round trip through the kernel.
inline op_awaiter<ops::nop> nop() noexcept { return op_awaiter<ops::nop>(ops::nop{}); }

// Awaits readiness of any pollable descriptor, coil's or not (a library's
// non-blocking socket, an eventfd, a pipe, a tty): Events is POLLIN, POLLOUT,
// POLLPRI or POLLRDHUP, or several with |. The result is the ready events,
// POLLERR and POLLHUP included when they hold. An fd coil did not open
// must stay open until the wait ends (cancel it first: a stop token, or
// with_timeout); closing it under a waiting op leaves the op waiting. A
// descriptor that cannot wait (a regular file, not ready for POLLPRI) fails
// with EINVAL.
template <uint32_t Events>
op_awaiter<ops::poll_ready<Events>> wait_ready(int fd) noexcept {
  return op_awaiter<ops::poll_ready<Events>>(ops::poll_ready<Events>{fd});
}
inline op_awaiter<ops::poll_ready<POLLIN>> wait_readable(int fd) noexcept { return wait_ready<POLLIN>(fd); }
inline op_awaiter<ops::poll_ready<POLLOUT>> wait_writable(int fd) noexcept { return wait_ready<POLLOUT>(fd); }

}  // namespace coil
