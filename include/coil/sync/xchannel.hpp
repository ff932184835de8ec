#pragma once
// xchannel<T>: a bounded FIFO between tasks on any cores (any threads that
// own a coil runtime, cores::run's or plain ones). Same interface as
// channel<T>:
//
//   send(v)    waits while the channel is full; fails with sync_errc::closed.
//   recv()     waits while it is empty; after close() gives the items still
//              buffered, then sync_errc::closed.
//   try_send / try_recv: never wait; operation_would_block instead.
//   close()    wakes every waiter on every core: receivers drain what is
//              left, senders fail (their value is dropped).
//
// State sits behind one mutex, held only for a few pointer moves, never
// while a coroutine runs. Waiters are nodes in the waiting frames; a waker
// hands the item over (into the receiver's frame, or the sender's value into
// the buffer) under the lock, then wakes the waiter's core with
// runtime::post, so the item is delivered even if the waiter is cancelled in
// the meantime. A cancelled waiter still queued leaves the queue. A frame
// destroyed while its wake is in flight waits for it; a receiver destroyed
// holding an undelivered item passes it on (to a waiting receiver, else back
// into the buffer unless a sender refilled it: then it is dropped).
//
// Runtimes get remote posting switched on at first use (enable_remote).
#include <coroutine>
#include <cstddef>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/intrusive_list.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/await_arg.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/stop.hpp"
#include "coil/rt/task.hpp"
#include "coil/sync/channel.hpp"
#include "coil/sync/error.hpp"

namespace coil {

template <class T>
// A bounded FIFO between tasks on any threads that own a coil runtime (see
// the file description).
class xchannel {
  static_assert(std::is_nothrow_move_constructible_v<T>, "xchannel<T> moves items in noexcept code");

  // One wait, in the waiting frame. `st` is guarded by the channel's mutex
  // until the wake is posted; then only the home thread touches the node.
  class xwait : public detail::remote_node, public stop_callback {
   public:
    enum class state : unsigned char { idle, queued, posted, done };
    explicit xwait(xchannel& c) noexcept : ch_(&c) {}
    xwait(xwait&& o) noexcept : detail::remote_node(), stop_callback(), ch_(o.ch_) {
      COIL_ASSERT(o.st_.load(std::memory_order_relaxed) == state::idle, "moving an xchannel wait that was already awaited");
    }
    ~xwait() { settle(); }

   protected:
    struct hook : list_hook {
      xwait* self = nullptr;
    };

    // Leaves the queue or waits for an in-flight wake: afterwards nothing
    // but this thread touches the node. For destructors.
    void settle() noexcept {
      const state s = st_.load(std::memory_order_relaxed);
      if (s == state::idle || s == state::done) return;
      static_cast<stop_callback&>(*this).unlink();
      {
        std::lock_guard lock(ch_->mu_);
        if (st_.load(std::memory_order_relaxed) == state::queued) {
          link_.unlink();
          st_.store(state::idle, std::memory_order_relaxed);
          return;
        }
      }
      h_ = {};  // posted: the wake runs here and resumes nothing
      rt_->wait_remote(delivered_);
    }

    // await_resume's start: the wait is over; why it failed, if it did.
    std::error_code resumed() noexcept {
      st_.store(state::done, std::memory_order_relaxed);
      return error_;
    }

    // Common start of a wait; false (with error_ set) if it must not wait.
    template <class P>
    bool begin(std::coroutine_handle<P> h) noexcept {
      const detail::admission a = detail::admit(h);
      rt_ = a.rt;
      stop_ = a.stop;
      if (!a.ok()) {
        error_ = detail::error_of(a.why);
        return false;
      }
      if (auto r = rt_->enable_remote(); !r) {
        error_ = r.error();
        return false;
      }
      h_ = h;
      link_.self = this;
      remote_node::run = &on_wake;
      stop_callback::fn = &on_stop;
      return true;
    }
    // Under the lock.
    void enqueue(intrusive_list<hook>& q) noexcept {
      st_.store(state::queued, std::memory_order_relaxed);
      q.push_back(link_);
    }
    // Under the lock: the outcome is set; the caller posts after unlocking.
    void mark_posted() noexcept {
      link_.unlink();
      st_.store(state::posted, std::memory_order_relaxed);
    }
    void post_wake() noexcept { rt_->post(*this); }
    // await_suspend's end, with the lock dropped: w is this (parked: watch
    // for cancellation, which only this thread can request, so no wake can
    // be missed) or a waiter to wake, or nullptr.
    bool after_lock(xwait* w) noexcept {
      if (w == this) {
        if (stop_ != nullptr) stop_->add(*this);
        return true;
      }
      if (w != nullptr) w->post_wake();
      return false;
    }

    static void on_wake(detail::remote_node& n) noexcept {
      auto& w = static_cast<xwait&>(n);
      static_cast<stop_callback&>(w).unlink();
      w.st_.store(state::done, std::memory_order_relaxed);
      w.resume_.handle = w.h_;
      runtime* rt = w.rt_;
      w.delivered_.store(true, std::memory_order_release);
      if (w.resume_.handle) rt->resume_posted(w.resume_);
    }
    static void on_stop(stop_callback& cb) noexcept {
      auto& w = static_cast<xwait&>(cb);
      {
        std::lock_guard lock(w.ch_->mu_);
        if (w.st_.load(std::memory_order_relaxed) != state::queued) return;  // already served: that wins
        w.error_ = std::make_error_code(std::errc::operation_canceled);
        w.mark_posted();
      }
      w.post_wake();  // to itself: callbacks never resume inline
    }

    friend class xchannel;
    xchannel* ch_;
    runtime* rt_ = nullptr;
    stop_source* stop_ = nullptr;
    std::coroutine_handle<> h_;
    detail::ready_node resume_;
    hook link_;
    std::error_code error_;
    // Atomic only so a destructor may peek without the lock; decisions are
    // made under it.
    std::atomic<state> st_{state::idle};
    std::atomic<bool> delivered_{false};
  };

 public:
  class [[nodiscard]] send_awaiter : public xwait {
   public:
    send_awaiter(xchannel& c, T v) noexcept : xwait(c), value_(std::move(v)) {}
    send_awaiter(send_awaiter&&) noexcept = default;

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      if (!this->begin(h)) return false;
      xwait* wake = nullptr;
      {
        std::lock_guard lock(this->ch_->mu_);
        xchannel& c = *this->ch_;
        if (c.closed_) {
          this->error_ = sync_errc::closed;
          return false;
        }
        if (!c.put(std::move(value_), wake)) {
          this->enqueue(c.senders_);
          wake = this;
        }
      }
      return this->after_lock(wake);
    }
    result<void> await_resume() noexcept {
      if (auto e = this->resumed()) return fail(e);
      return {};
    }

   private:
    friend class xchannel;
    T value_;
  };

  class [[nodiscard]] recv_awaiter : public xwait {
   public:
    explicit recv_awaiter(xchannel& c) noexcept : xwait(c) {}
    recv_awaiter(recv_awaiter&&) noexcept = default;
    ~recv_awaiter() {
      this->settle();  // before item_ is read: a waker may be filling it
      if (item_) this->ch_->give_back(std::move(*item_));
    }

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      if (!this->begin(h)) return false;
      xwait* wake = nullptr;
      {
        std::lock_guard lock(this->ch_->mu_);
        xchannel& c = *this->ch_;
        if (!c.take(item_, wake)) {
          if (c.closed_) {
            this->error_ = sync_errc::closed;
            return false;
          }
          this->enqueue(c.receivers_);
          wake = this;
        }
      }
      return this->after_lock(wake);
    }
    result<T> await_resume() noexcept {
      if (auto e = this->resumed()) return fail(e);
      T v = std::move(*item_);
      item_.reset();
      return v;
    }

   private:
    friend class xchannel;
    std::optional<T> item_;
  };

  // capacity >= 1.
  explicit xchannel(std::size_t capacity) : buf_(checked(capacity)) {}
  xchannel(const xchannel&) = delete;
  xchannel& operator=(const xchannel&) = delete;
  ~xchannel() {
    COIL_ASSERT(senders_.empty() && receivers_.empty(), "coil::xchannel destroyed while tasks wait on it");
  }

  // Waits for room, then buffers value; sync_errc::closed once closed.
  // Takes a T or what makes one; coil::moved(item) hands a named item over
  // (rt/await_arg.hpp: on g++ 12 a braced aggregate made inside co_await is
  // refused).
  template <class U = T>
    requires std::is_constructible_v<T, detail::taken_ref_t<U&&>>
  send_awaiter send(U&& value) noexcept(std::is_nothrow_constructible_v<T, detail::taken_ref_t<U&&>>) {
    static_assert(detail::await_arg_ok<U&&>, COIL_AWAIT_ARG_MESSAGE);
    return send_awaiter(*this, T(detail::take_arg(std::forward<U>(value))));
  }
  // Waits for an item; after close(), the buffered ones, then sync_errc::closed.
  recv_awaiter recv() noexcept { return recv_awaiter(*this); }

  // Moves from v only on success.
  result<void> try_send(T&& v) noexcept {
    xwait* wake = nullptr;
    {
      std::lock_guard lock(mu_);
      if (closed_) return fail(sync_errc::closed);
      if (receivers_.empty() && buf_.full()) return fail(std::errc::operation_would_block);
      (void)put(std::move(v), wake);
    }
    if (wake != nullptr) wake->post_wake();
    return {};
  }

  // An item now, or operation_would_block (sync_errc::closed once closed and drained).
  result<T> try_recv() noexcept {
    std::optional<T> item;
    xwait* wake = nullptr;
    {
      std::lock_guard lock(mu_);
      if (!take(item, wake))
        return fail(closed_ ? make_error_code(sync_errc::closed)
                            : std::make_error_code(std::errc::operation_would_block));
    }
    if (wake != nullptr) wake->post_wake();
    return std::move(*item);
  }

  // Idempotent, thread-safe. Buffered items stay receivable.
  void close() noexcept {
    std::lock_guard lock(mu_);
    closed_ = true;
    // Posting under the lock: a woken frame cannot go before its wake ran.
    while (hook* h = receivers_.pop_front()) fail_one(*h->self);
    while (hook* h = senders_.pop_front()) fail_one(*h->self);
  }

  bool is_closed() const noexcept {
    std::lock_guard lock(mu_);
    return closed_;
  }
  std::size_t size() const noexcept {
    std::lock_guard lock(mu_);
    return buf_.size();
  }
  std::size_t capacity() const noexcept { return buf_.capacity(); }

 private:
  using hook = typename xwait::hook;

  static std::size_t checked(std::size_t capacity) noexcept {
    COIL_ASSERT(capacity > 0, "coil::xchannel capacity must be at least 1");
    return capacity;
  }
  static void fail_one(xwait& w) noexcept {
    w.error_ = sync_errc::closed;
    w.st_.store(xwait::state::posted, std::memory_order_relaxed);
    w.post_wake();
  }

  // Under the lock. Hands v to a waiting receiver (set in wake) or buffers
  // it; false if the buffer is full (v untouched).
  bool put(T&& v, xwait*& wake) noexcept {
    if (hook* h = receivers_.front()) {
      auto& r = static_cast<recv_awaiter&>(*h->self);
      r.item_.emplace(std::move(v));
      r.mark_posted();
      wake = &r;
      return true;
    }
    if (buf_.full()) return false;
    buf_.push(std::move(v));
    return true;
  }
  // Under the lock. Takes the oldest item; a sender waiting for room moves
  // its value in (set in wake).
  bool take(std::optional<T>& out, xwait*& wake) noexcept {
    if (buf_.size() == 0) return false;
    out.emplace(buf_.pop());
    if (hook* h = senders_.front()) {
      auto& s = static_cast<send_awaiter&>(*h->self);
      buf_.push(std::move(s.value_));
      s.mark_posted();
      wake = &s;
    }
    return true;
  }
  void give_back(T&& v) noexcept {
    xwait* wake = nullptr;
    {
      std::lock_guard lock(mu_);
      (void)put(std::move(v), wake);  // full: dropped (see the header note)
    }
    if (wake != nullptr) wake->post_wake();
  }

  mutable std::mutex mu_;
  detail::ring<T> buf_;
  bool closed_ = false;
  intrusive_list<hook> senders_;
  intrusive_list<hook> receivers_;
};

}  // namespace coil
