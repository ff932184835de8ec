#pragma once
// condition_variable: waits for a change announced under a coil::mutex.
//
// A notified waiter does not wake up to fight for the lock: it moves from the
// condition's queue to the mutex's queue and is resumed only once the lock is
// its (wait morphing), so notify_all() causes no thundering herd. Every wait
// returns with the lock held again, also when it fails with
// operation_canceled: the caller's guard stays valid either way.
//
// With a predicate, the predicate is checked as the lock is handed over and
// the waiter goes back to waiting if it is false, so it never sees a spurious
// wake. The check may run inside another task's unlock() or notify: it must
// only read state the mutex protects, and must not suspend or notify.
//
// As with std::condition_variable, notify_one() wakes one waiter, which may
// find its own predicate false and wait on: waiters with different
// predicates call for notify_all().
#include <coroutine>
#include <system_error>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/result.hpp"
#include "coil/sync/mutex.hpp"
#include "coil/rt/waiter.hpp"

namespace coil {

// Waits for a change announced under a coil::mutex (see the file description).
class condition_variable {
 public:
  class [[nodiscard]] wait_awaiter : public detail::mutex_waiter {
   public:
    wait_awaiter(condition_variable& cv, mutex::guard& g) noexcept : cv_(&cv), guard_(&g) { on_grant = &granted; }
    wait_awaiter(wait_awaiter&&) noexcept = default;
    ~wait_awaiter() {
      // Queued on the condition or the mutex: the hook unlinks itself. Given
      // the lock but destroyed before resuming: the guard does not own it
      // (it let go when the wait began), so pass it on here.
      if (status_ == status::scheduled) mutex_->unlock();
    }

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      COIL_ASSERT(guard_->owns_lock(), "condition_variable::wait needs a guard that owns its mutex");
      if (!begin(h)) return false;
      if (check_ != nullptr && check_(*this)) return false;
      mutex_ = guard_->m_;
      park_on_condition();
      guard_->owns_ = false;
      mutex_->unlock();
      return true;
    }
    result<void> await_resume() noexcept {
      status_ = status::done;
      guard_->owns_ = true;             // the lock is held in every outcome
      if (error_) return fail(error_);  // failed before waiting: never let go
      if (canceled_) return fail(std::errc::operation_canceled);
      return {};
    }

   protected:
    bool (*check_)(wait_awaiter&) noexcept = nullptr;  // the predicate, if any

   private:
    friend class condition_variable;

    void park_on_condition() noexcept {
      in_condition_ = true;
      park(cv_->waiters_, &on_stop);
    }
    // Notified or cancelled: queue for the lock; no longer cancellable, since
    // the wait must return holding it.
    void move_to_mutex() noexcept {
      in_condition_ = false;
      static_cast<ready_node&>(*this).unlink();
      stop_watching();
      mutex_->acquire_for(*this);
    }
    static bool granted(detail::mutex_waiter& w) noexcept {
      auto& self = static_cast<wait_awaiter&>(w);
      if (self.canceled_ || self.check_ == nullptr || self.check_(self)) return true;
      if (self.stop_ != nullptr && self.stop_->stop_requested()) {
        self.canceled_ = true;
        return true;
      }
      self.park_on_condition();  // predicate still false: decline the lock
      return false;
    }
    static void on_stop(stop_callback& cb) noexcept {
      auto& self = static_cast<wait_awaiter&>(detail::from_stop<detail::mutex_waiter>(cb));
      if (!self.in_condition_) return;
      self.canceled_ = true;
      self.move_to_mutex();
    }

    condition_variable* cv_;
    mutex::guard* guard_;
    mutex* mutex_ = nullptr;
    bool in_condition_ = false;
    bool canceled_ = false;
  };

  template <class Pred>
  class [[nodiscard]] pred_wait_awaiter : public wait_awaiter {
   public:
    pred_wait_awaiter(condition_variable& cv, mutex::guard& g, Pred p) noexcept
        : wait_awaiter(cv, g), pred_(std::move(p)) {
      check_ = &check;
    }
    pred_wait_awaiter(pred_wait_awaiter&&) noexcept = default;

   private:
    static bool check(wait_awaiter& w) noexcept { return static_cast<pred_wait_awaiter&>(w).pred_(); }
    Pred pred_;
  };

  condition_variable() noexcept = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;
  ~condition_variable() { COIL_ASSERT(waiters_.empty(), "coil::condition_variable destroyed while tasks wait on it"); }

  // Releases g's lock, waits for a notify, takes the lock back.
  wait_awaiter wait(mutex::guard& g) noexcept { return wait_awaiter(*this, g); }

  // Waits until pred() holds (checked first, and at each notify, with the
  // lock held). Gives operation_canceled (lock held) if cancelled first.
  template <class Pred>
  pred_wait_awaiter<Pred> wait(mutex::guard& g, Pred pred) noexcept {
    return pred_wait_awaiter<Pred>(*this, g, std::move(pred));
  }

  // Moves the longest waiter to the mutex's queue (it resumes holding the lock).
  void notify_one() noexcept {
    if (wait_awaiter* w = waiters_.pop_front()) w->move_to_mutex();
  }
  // Moves every waiter to the mutex's queue, in order.
  void notify_all() noexcept {
    // Detach the current waiters first: one whose predicate fails goes back
    // to waiters_ and must not be seen again by this call.
    detail::waiter_queue<wait_awaiter> notified;
    notified.splice_back(waiters_);
    while (wait_awaiter* w = notified.pop_front()) w->move_to_mutex();
  }

  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  detail::waiter_queue<wait_awaiter> waiters_;
};

}  // namespace coil
