#pragma once
// semaphore: counted permits, handed out strictly first come, first served.
// A release gives permits straight to the waiter at the head of the queue
// (no barging: a later acquire or try_acquire cannot overtake it), and a
// waiter that leaves the head (cancelled or destroyed) lets the next one be
// served, so no release is ever lost. Single core, no atomics.
#include <coroutine>
#include <cstddef>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/waiter.hpp"

namespace coil {

// Counted permits handed out first come, first served (single core).
class semaphore {
 public:
  // Holds n permits; gives them back when destroyed or released.
  class [[nodiscard]] permit {
   public:
    permit() noexcept = default;
    permit(permit&& o) noexcept : sem_(std::exchange(o.sem_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    permit& operator=(permit&& o) noexcept {
      if (this != &o) {
        release();
        sem_ = std::exchange(o.sem_, nullptr);
        n_ = std::exchange(o.n_, 0);
      }
      return *this;
    }
    ~permit() { release(); }

    std::size_t count() const noexcept { return n_; }
    void release() noexcept {
      if (sem_ != nullptr) std::exchange(sem_, nullptr)->release(std::exchange(n_, 0));
    }
    // Keeps the permits taken: the semaphore's count stays lower.
    void forget() noexcept {
      sem_ = nullptr;
      n_ = 0;
    }

   private:
    friend class semaphore;
    permit(semaphore* s, std::size_t n) noexcept : sem_(s), n_(n) {}
    semaphore* sem_ = nullptr;
    std::size_t n_ = 0;
  };

  class [[nodiscard]] acquire_awaiter : public detail::waiter {
   public:
    acquire_awaiter(semaphore& s, std::size_t n) noexcept : sem_(&s), n_(n) {}
    acquire_awaiter(acquire_awaiter&&) noexcept = default;
    ~acquire_awaiter() {
      if (status_ == status::queued) {
        // Leaving the head may unblock the waiters behind it.
        static_cast<ready_node&>(*this).unlink();
        sem_->dispatch();
      } else if (status_ == status::scheduled && !error_) {
        sem_->release(n_);  // granted, but the frame died before taking them
      }
    }

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      if (!begin(h)) return false;
      if (sem_->waiters_.empty() && sem_->count_ >= n_) {
        sem_->count_ -= n_;
        return false;
      }
      park(sem_->waiters_, &on_stop);
      return true;
    }
    result<permit> await_resume() noexcept {
      status_ = status::done;
      if (error_) return fail(error_);
      return permit(sem_, n_);
    }

   private:
    friend class semaphore;
    static void on_stop(stop_callback& cb) noexcept {
      cancel_on_stop(cb);
      detail::from_stop<acquire_awaiter>(cb).sem_->dispatch();
    }

    semaphore* sem_;
    std::size_t n_;
  };

  explicit semaphore(std::size_t count) noexcept : count_(count) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  ~semaphore() { COIL_ASSERT(waiters_.empty(), "coil::semaphore destroyed while tasks wait on it"); }

  // Completes with n permits, or with operation_canceled. Waits behind every
  // earlier waiter, even one that asks for more.
  acquire_awaiter acquire(std::size_t n = 1) noexcept { return acquire_awaiter(*this, n); }

  // n permits now, or operation_would_block (also when others are queued).
  result<permit> try_acquire(std::size_t n = 1) noexcept {
    if (!waiters_.empty() || count_ < n) return fail(std::errc::operation_would_block);
    count_ -= n;
    return permit(this, n);
  }

  // Adds n permits (they need not have been acquired: this also grows it).
  void release(std::size_t n = 1) noexcept {
    count_ += n;
    dispatch();
  }

  std::size_t available() const noexcept { return count_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  void dispatch() noexcept {
    while (acquire_awaiter* w = waiters_.front()) {
      if (count_ < w->n_) return;
      count_ -= w->n_;
      w->wake();
    }
  }

  std::size_t count_;
  detail::waiter_queue<acquire_awaiter> waiters_;
};

}  // namespace coil
