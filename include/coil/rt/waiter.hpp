#pragma once
// The wait node of the runtime's waiting primitives (coil/sync, spawn_on) (internal).
//
// A waiter lives in its awaiter, so in the waiting coroutine's frame: waiting
// never allocates. Its one list hook is in at most one list at a time: the
// primitive's FIFO while it waits, then the runtime's ready queue once woken.
// Because the hook unlinks itself on destruction, a frame destroyed mid-wait
// leaves no dangling pointer in either list. Wakers never resume a coroutine
// inline, they schedule it: a release() in a loop cannot recurse, and the
// waker keeps running until it suspends itself.
//
// Single core: a primitive and all its waiters belong to one runtime.
#include <coroutine>
#include <cstdint>
#include <system_error>

#include "coil/core/assert.hpp"
#include "coil/core/error.hpp"
#include "coil/core/intrusive_list.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/stop.hpp"
#include "coil/rt/task.hpp"

namespace coil::detail {

// FIFO of waiters of one concrete type W (W derives from waiter).
template <class W>
class waiter_queue {
 public:
  waiter_queue() noexcept = default;
  bool empty() const noexcept { return list_.empty(); }
  std::size_t size() const noexcept { return list_.size(); }
  void push_back(W& w) noexcept { list_.push_back(static_cast<ready_node&>(w)); }
  W* front() noexcept { return static_cast<W*>(list_.front()); }
  W* pop_front() noexcept { return static_cast<W*>(list_.pop_front()); }
  void splice_back(waiter_queue& other) noexcept { list_.splice_back(other.list_); }

 private:
  intrusive_list<ready_node> list_;
};

class waiter : public ready_node, public stop_callback {
 public:
  enum class status : uint8_t {
    idle,       // not parked: never awaited, or finished without suspending
    queued,     // in a primitive's FIFO
    scheduled,  // woken (granted, cancelled or failed); its resume is queued
    done,       // resumed: whatever it was granted now belongs to the caller
  };

  waiter() noexcept = default;
  waiter& operator=(const waiter&) = delete;

  status state() const noexcept { return status_; }
  // For a primitive moving the node between FIFOs (a condition wait taking
  // its mutex back).
  void mark_queued() noexcept { status_ = status::queued; }

  // Leaves the FIFO (if in one), stops watching for cancellation and queues
  // the coroutine's resume. The caller sets the outcome first.
  void wake() noexcept {
    // Catches a primitive shared between cores, before the race spreads.
    COIL_ASSERT(rt_->on_owner_thread(), "a coil::sync primitive was used from two cores (it is single-core)");
    static_cast<ready_node&>(*this).unlink();
    static_cast<stop_callback&>(*this).unlink();
    status_ = status::scheduled;
    rt_->schedule(*this);
  }
  // Same, failing the wait.
  void fail_wait(std::error_code e) noexcept {
    error_ = e;
    wake();
  }

  // The usual stop callback: a queued waiter leaves its FIFO and resumes with
  // operation_canceled; one already woken keeps what it was granted.
  static void cancel_on_stop(stop_callback& cb) noexcept {
    auto& w = static_cast<waiter&>(cb);
    if (w.status_ == status::queued) w.fail_wait(std::make_error_code(std::errc::operation_canceled));
  }

 protected:
  // Awaiters are movable only before they are awaited (so they can be handed
  // to with_timeout); the moved-to node starts afresh.
  waiter(waiter&& o) noexcept : ready_node(), stop_callback() {
    COIL_ASSERT(o.status_ == status::idle, "moving a coil::sync wait that was already awaited");
  }

  // The checks every wait starts with. A cancelled task's new waits fail at
  // once, as its new I/O operations do, even when the primitive is free: a
  // task winding down does not take fresh resources. True if it may go on.
  template <class P>
  bool begin(std::coroutine_handle<P> h) noexcept {
    const admission a = admit<when_closing::proceed>(h);
    rt_ = a.rt;
    stop_ = a.stop;
    if (!a.ok()) {
      error_ = error_of(a.why);
      return false;
    }
    handle = h;
    return true;
  }

  // Queues this node (whose concrete type is W) and watches for cancellation,
  // after queueing so a callback that runs at once finds it in its FIFO.
  template <class W>
  void park(waiter_queue<W>& q, stop_callback::fn_type on_stop = &cancel_on_stop) noexcept {
    status_ = status::queued;
    q.push_back(static_cast<W&>(*this));
    watch_stop(on_stop);
  }
  void watch_stop(stop_callback::fn_type on_stop) noexcept {
    if (stop_ == nullptr) return;
    stop_callback::fn = on_stop;
    stop_->add(*this);
  }
  void stop_watching() noexcept { static_cast<stop_callback&>(*this).unlink(); }

  // await_resume for waits that carry no value.
  result<void> finish() noexcept {
    status_ = status::done;
    if (error_) return fail(error_);
    return {};
  }

  runtime* rt_ = nullptr;
  stop_source* stop_ = nullptr;
  std::error_code error_;  // why the wait failed (cancelled, closed, no runtime)
  status status_ = status::idle;
};

// W from its stop callback base (the callback's fn gets only that).
template <class W>
W& from_stop(stop_callback& cb) noexcept {
  return static_cast<W&>(static_cast<waiter&>(cb));
}

}  // namespace coil::detail
