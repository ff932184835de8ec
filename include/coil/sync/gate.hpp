#pragma once
// gate: tracks in-flight work so shutdown can wait for it. Work enters (a
// holder guard), leaves when the guard goes; close() stops new entries, which
// fail with sync_errc::gate_closed, and completes once the last holder left.
// Single core, no atomics.
#include <coroutine>
#include <cstddef>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/result.hpp"
#include "coil/sync/error.hpp"
#include "coil/rt/waiter.hpp"

namespace coil {

// Tracks in-flight work so that shutdown can wait for it (single core).
class gate {
 public:
  // Proof of being inside the gate; leaves it when destroyed. Moved into a
  // task's parameters it lives as long as the frame (for a spawned task,
  // until it is joined): call leave() when the work is done.
  class [[nodiscard]] holder {
   public:
    holder() noexcept = default;
    holder(holder&& o) noexcept : gate_(std::exchange(o.gate_, nullptr)) {}
    holder& operator=(holder&& o) noexcept {
      if (this != &o) {
        leave();
        gate_ = std::exchange(o.gate_, nullptr);
      }
      return *this;
    }
    ~holder() { leave(); }
    void leave() noexcept {
      if (gate_ != nullptr) std::exchange(gate_, nullptr)->leave();
    }

   private:
    friend class gate;
    explicit holder(gate* g) noexcept : gate_(g) {}
    gate* gate_ = nullptr;
  };

  class close_awaiter : public detail::waiter {
   public:
    explicit close_awaiter(gate& g) noexcept : gate_(&g) {}
    close_awaiter(close_awaiter&&) noexcept = default;

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      if (!begin(h) || gate_->count_ == 0) return false;
      park(gate_->closers_);
      return true;
    }
    // Cancelled: the gate stays closed; holders may still be inside. A task
    // already cancelled (a shutdown) drains with `co_await shield(...)`.
    result<void> await_resume() noexcept { return finish(); }

   private:
    gate* gate_;
  };

  gate() noexcept = default;
  gate(const gate&) = delete;
  gate& operator=(const gate&) = delete;
  ~gate() {
    COIL_ASSERT(count_ == 0, "coil::gate destroyed while holders are inside (await close() first)");
    COIL_ASSERT(closers_.empty(), "coil::gate destroyed while a close() waits on it");
  }

  // A holder, or sync_errc::gate_closed once close() was called.
  result<holder> enter() noexcept {
    if (closed_) return fail(sync_errc::gate_closed);
    ++count_;
    return holder(this);
  }

  // Closes the gate now (calling is enough; awaiting is optional) and gives
  // an awaitable that completes when no holder is left inside.
  close_awaiter close() noexcept {
    closed_ = true;
    return close_awaiter(*this);
  }

  bool is_closed() const noexcept { return closed_; }
  std::size_t holders() const noexcept { return count_; }

 private:
  void leave() noexcept {
    COIL_ASSERT(count_ > 0, "coil::gate left more often than entered");
    if (--count_ != 0 || !closed_) return;
    while (close_awaiter* w = closers_.pop_front()) w->wake();
  }

  std::size_t count_ = 0;
  bool closed_ = false;
  detail::waiter_queue<close_awaiter> closers_;
};

}  // namespace coil
