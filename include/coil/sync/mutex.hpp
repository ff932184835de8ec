#pragma once
// mutex: an async lock, handed over strictly in FIFO order. unlock() gives the
// lock straight to the head waiter (it stays locked meanwhile), so a task that
// calls lock() later cannot overtake one already waiting. Single core, no
// atomics: it orders tasks across suspension points, not threads.
#include <coroutine>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/waiter.hpp"

namespace coil {

class mutex;
class condition_variable;

namespace detail {
// Anything queued on a mutex: a lock() call, or a condition wait taking the
// lock back. on_grant, when set, runs as the lock is handed over; returning
// false declines it (a condition wait whose predicate still fails).
struct mutex_waiter : waiter {
  bool (*on_grant)(mutex_waiter&) noexcept = nullptr;
};
}  // namespace detail

// An async lock handed over in FIFO order (single core).
class mutex {
 public:
  // Owns the lock; unlocks when destroyed.
  class [[nodiscard]] guard {
   public:
    guard() noexcept = default;
    guard(guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)), owns_(std::exchange(o.owns_, false)) {}
    guard& operator=(guard&& o) noexcept {
      if (this != &o) {
        unlock();
        m_ = std::exchange(o.m_, nullptr);
        owns_ = std::exchange(o.owns_, false);
      }
      return *this;
    }
    ~guard() { unlock(); }

    bool owns_lock() const noexcept { return owns_; }
    coil::mutex* mutex() const noexcept { return m_; }
    void unlock() noexcept {
      if (owns_) {
        owns_ = false;
        m_->unlock();
      }
    }

   private:
    friend class coil::mutex;
    friend class condition_variable;
    explicit guard(coil::mutex* m) noexcept : m_(m), owns_(true) {}
    coil::mutex* m_ = nullptr;
    bool owns_ = false;
  };

  class [[nodiscard]] lock_awaiter : public detail::mutex_waiter {
   public:
    explicit lock_awaiter(mutex& m) noexcept : m_(&m) {}
    lock_awaiter(lock_awaiter&&) noexcept = default;
    ~lock_awaiter() {
      // Granted, but the frame died before taking the lock: pass it on.
      if (status_ == status::scheduled && !error_) m_->unlock();
    }

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      if (!begin(h)) return false;
      if (!m_->locked_) {
        m_->locked_ = true;
        return false;
      }
      park(m_->waiters_);
      return true;
    }
    result<guard> await_resume() noexcept {
      status_ = status::done;
      if (error_) return fail(error_);
      return guard(m_);
    }

   private:
    mutex* m_;
  };

  mutex() noexcept = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;
  ~mutex() {
    COIL_ASSERT(waiters_.empty(), "coil::mutex destroyed while tasks wait on it");
    COIL_ASSERT(!locked_, "coil::mutex destroyed while locked");
  }

  // Completes with a guard owning the lock, or with operation_canceled.
  lock_awaiter lock() noexcept { return lock_awaiter(*this); }

  // The lock now, or operation_would_block.
  result<guard> try_lock() noexcept {
    if (locked_) return fail(std::errc::operation_would_block);
    locked_ = true;
    return guard(this);
  }

  bool locked() const noexcept { return locked_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  friend class condition_variable;

  // Hands the lock to the first waiter that takes it, else unlocks.
  void unlock() noexcept {
    COIL_ASSERT(locked_, "unlocking a coil::mutex that is not locked");
    while (detail::mutex_waiter* w = waiters_.pop_front()) {
      if (w->on_grant != nullptr && !w->on_grant(*w)) continue;
      w->wake();
      return;
    }
    locked_ = false;
  }

  // Queues w to take the lock, or gives it at once if free.
  void acquire_for(detail::mutex_waiter& w) noexcept {
    if (locked_) {
      w.mark_queued();
      waiters_.push_back(w);
      return;
    }
    locked_ = true;
    if (w.on_grant == nullptr || w.on_grant(w)) {
      w.wake();
    } else {
      unlock();
    }
  }

  bool locked_ = false;
  detail::waiter_queue<detail::mutex_waiter> waiters_;
};

}  // namespace coil
