#pragma once
// Awaiting a Linux AIO request from a coroutine, on the runtime's normal path.
//
// Each thread has one AIO context, created on first use (configure it first
// with configure_thread_aio). The runtime is not told about it: while
// requests are in flight an internal "reaper" task awaits a read of the
// context's eventfd like any other operation, so the runtime's one park waits
// for io_uring and AIO together. When the read completes the reaper collects
// events (io_getevents, never blocking) and schedules the waiting tasks.
// Requests pushed during a loop turn are submitted together on the next turn
// (one io_submit) by a short-lived "flusher" task, or at push when
// aio_options::submit_batch says so.
//
// aio_awaiter<Op> lives in the awaiting frame (no heap per request). If the
// frame is destroyed while the kernel owns the request, the destructor
// cancels it and, since files rarely allow that, blocks in io_getevents until
// it completes: the kernel never DMAs into freed memory. At thread exit the
// context waits for whatever is still in flight.
//
// Op needs, besides the usual op contract (ops/common.hpp):
//   void prep_iocb(aio_iocb&) const;       fill the AIO request
#include <coroutine>
#include <cstddef>
#include <span>
#include <system_error>

#include "coil/core/result.hpp"
#include "coil/io/aio_driver.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/stop.hpp"
#include "coil/rt/task.hpp"

namespace coil {

// Options for the calling thread's AIO context. Takes effect at its next
// creation: fails with device_or_resource_busy while requests are pending.
result<void> configure_thread_aio(const aio_options& opts) noexcept;

// The calling thread's AIO driver, created on first use (statistics, tests).
result<aio_driver*> thread_aio_driver() noexcept;

namespace detail {

struct aio_waiter : aio_completion {
  ready_node node;  // scheduled on rt when the request completes
  runtime* rt = nullptr;
  const stop_source* stop_src = nullptr;  // the waiting task's, for its name in listings
  uint32_t since_ms = 0;              // runtime::stamp_ms() when awaited
};

// Lists this thread's AIO requests owned by rt's tasks into out (as
// runtime::pending_ops); returns how many there are, listed or not.
std::size_t aio_pending_ops(const runtime& rt, std::span<pending_op_info> out, uint32_t now_ms) noexcept;

// Pushes w to this thread's context and makes sure it is submitted this turn
// and reaped later. An error means the context could not be created.
std::error_code aio_submit(runtime& rt, aio_waiter& w) noexcept;
void aio_cancel(aio_waiter& w) noexcept;
// Returns once the kernel has let go of w (see the lifetime rule above).
void aio_cancel_and_wait(aio_waiter& w) noexcept;

}  // namespace detail

template <class Op>
class [[nodiscard]] aio_awaiter : detail::aio_waiter, stop_callback {
 public:
  using result_type = decltype(Op::complete(0));

  explicit aio_awaiter(Op op) noexcept : op_(op) {}
  aio_awaiter(const aio_awaiter&) = delete;
  aio_awaiter& operator=(const aio_awaiter&) = delete;
  ~aio_awaiter() {
    if (state == aio_state::queued || state == aio_state::in_flight) detail::aio_cancel_and_wait(*this);
  }

  bool await_ready() const noexcept { return false; }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    runtime* r = runtime::current();
    if (r == nullptr) return fail_now(errc::no_runtime);
    if (!r->accepting()) return fail_now(errc::runtime_closed);
    stop_source* stop = detail::stop_of(h);
    if (stop != nullptr && stop->stop_requested()) return fail_now(std::errc::operation_canceled);
    op_.prep_iocb(cb);
    node.handle = h;
    rt = r;
    stop_src = stop;
    since_ms = r->stamp_ms();
    if (std::error_code ec = detail::aio_submit(*r, *this)) {
      early_ = ec;
      return false;
    }
    if (stop != nullptr) {
      stop_callback::fn = &on_stop;
      stop->add(*this);
    }
    return true;
  }

  result_type await_resume() noexcept {
    static_cast<stop_callback&>(*this).unlink();
    if (early_) return result_type(fail(early_));
    state = aio_state::idle;
    // Transfers are capped below 2 GiB, so the result fits.
    return Op::complete(static_cast<int32_t>(res));
  }

  Op& op() noexcept { return op_; }

 private:
  template <class E>
  bool fail_now(E e) noexcept {
    early_ = make_error_code(e);
    return false;
  }
  static void on_stop(stop_callback& cb) noexcept { detail::aio_cancel(static_cast<aio_awaiter&>(cb)); }

  Op op_;
  std::error_code early_;  // failure decided before reaching the kernel
};

}  // namespace coil
