#pragma once
// Timers: a user-space heap in the runtime; the loop parks until the nearest
// deadline, so timers cost no system call of their own. A timer never fires
// early: it fires on the first loop turn at or after its deadline. Durations
// and deadlines saturate (core/duration.hpp): too far away is never, past
// or negative is now.
#include <chrono>
#include <coroutine>

#include "coil/core/duration.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/stop.hpp"
#include "coil/rt/task.hpp"

namespace coil {

// Awaitable: suspends until the runtime clock reaches deadline_ns. Gives
// operation_canceled if its task is cancelled first.
class [[nodiscard]] sleep_awaiter : detail::timer_node, stop_callback {
 public:
  enum class kind : uint8_t {
    relative,       // ns is a duration from when the wait starts
    runtime_clock,  // ns is a deadline in runtime::now_ns() terms
    steady_clock,   // ns is a deadline in std::chrono::steady_clock terms
  };
  sleep_awaiter(int64_t ns, kind k) noexcept : ns_(ns), kind_(k) {}
  sleep_awaiter(sleep_awaiter&& o) noexcept : ns_(o.ns_), kind_(o.kind_) {
    COIL_ASSERT(o.rt_ == nullptr, "moving a timer that was already awaited");
  }
  sleep_awaiter& operator=(sleep_awaiter&&) = delete;
  ~sleep_awaiter() {
    if (rt_ != nullptr) rt_->remove_timer(*this);
  }

  bool await_ready() const noexcept { return kind_ == kind::relative && ns_ <= 0; }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    const detail::admission a = detail::admit<detail::when_closing::proceed>(h);
    if (!a.ok()) {
      early_ = detail::error_of(a.why);
      return false;
    }
    runtime* rt = a.rt;
    stop_source* stop = a.stop;
    const int64_t now = rt->now_ns();
    switch (kind_) {
      case kind::relative: deadline_ns = detail::saturating_add(now, ns_); break;
      case kind::runtime_clock: deadline_ns = ns_; break;
      case kind::steady_clock: {
        const int64_t steady_now = detail::saturating_ns(std::chrono::steady_clock::now().time_since_epoch());
        // forever stays forever in any clock, not forever minus the offset
        deadline_ns =
            ns_ == forever_ns ? forever_ns : detail::saturating_add(now, detail::saturating_sub(ns_, steady_now));
        break;
      }
    }
    if (deadline_ns <= now) return false;
    rt_ = rt;
    handle = h;
    rt->add_timer(*this);
    if (stop != nullptr) {
      stop_callback::fn = &on_stop;
      stop->add(*this);
    }
    return true;
  }

  result<void> await_resume() noexcept {
    static_cast<stop_callback&>(*this).unlink();
    if (early_) return fail(early_);
    return {};
  }

 private:
  static void on_stop(stop_callback& cb) noexcept {
    auto& self = static_cast<sleep_awaiter&>(cb);
    if (self.heap_index == not_armed) return;  // already fired; resume is queued
    self.rt_->remove_timer(self);
    self.early_ = make_error_code(std::errc::operation_canceled);
    self.rt_->schedule(self);
  }

  int64_t ns_;
  kind kind_;
  runtime* rt_ = nullptr;
  std::error_code early_;
};

// Waits at least d; gives operation_canceled if the task is cancelled first.
// A zero or negative d does not suspend; one beyond 292 years never ends.
inline sleep_awaiter sleep_for(duration_ns d) noexcept { return sleep_awaiter(d.ns, sleep_awaiter::kind::relative); }

// Deadline in the runtime's clock, as from runtime::now_ns().
inline sleep_awaiter sleep_until_ns(int64_t deadline_ns) noexcept {
  return sleep_awaiter(deadline_ns, sleep_awaiter::kind::runtime_clock);
}

// steady_clock is CLOCK_MONOTONIC; on a CLOCK_BOOTTIME runtime the deadline is
// translated through the offset between the two clocks when the wait starts.
// time_point::max() (of any duration) is never reached.
template <class Duration>
sleep_awaiter sleep_until(std::chrono::time_point<std::chrono::steady_clock, Duration> tp) noexcept {
  return sleep_awaiter(detail::saturating_ns(tp.time_since_epoch()), sleep_awaiter::kind::steady_clock);
}

// Lets every other ready task run before this one continues.
struct [[nodiscard]] yield_awaiter : detail::ready_node {
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    runtime* rt = runtime::current();
    if (rt == nullptr) return false;
    handle = h;
    rt->schedule(*this);
    return true;
  }
  void await_resume() const noexcept {}
};
inline yield_awaiter yield() noexcept { return {}; }

}  // namespace coil
