#pragma once
// event: a flag tasks can wait for. set() wakes every waiter and lets later
// waits through until reset(). Single core, no atomics.
#include <coroutine>

#include "coil/core/assert.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/waiter.hpp"

namespace coil {

// A flag tasks wait for (single core).
class event {
 public:
  class [[nodiscard]] wait_awaiter : public detail::waiter {
   public:
    explicit wait_awaiter(event& e) noexcept : event_(&e) {}
    wait_awaiter(wait_awaiter&&) noexcept = default;

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      if (!begin(h) || event_->set_) return false;
      park(event_->waiters_);
      return true;
    }
    result<void> await_resume() noexcept { return finish(); }

   private:
    event* event_;
  };

  explicit event(bool set = false) noexcept : set_(set) {}
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  ~event() { COIL_ASSERT(waiters_.empty(), "coil::event destroyed while tasks wait on it"); }

  // Wakes every current waiter; waits started before reset() pass at once.
  void set() noexcept {
    set_ = true;
    while (wait_awaiter* w = waiters_.pop_front()) w->wake();
  }
  // Later waits block again until the next set().
  void reset() noexcept { set_ = false; }
  bool is_set() const noexcept { return set_; }

  // Completes when the event is set, or with operation_canceled.
  wait_awaiter wait() noexcept { return wait_awaiter(*this); }

 private:
  bool set_;
  detail::waiter_queue<wait_awaiter> waiters_;
};

}  // namespace coil
