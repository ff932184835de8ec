#pragma once
// channel<T>: a bounded FIFO between tasks on one core.
//
//   send(v)    waits while the channel is full; fails with sync_errc::closed.
//   recv()     waits while it is empty; after close() gives the items still
//              buffered, then sync_errc::closed.
//   try_send / try_recv: never wait; operation_would_block instead.
//   close()    wakes every waiter: receivers drain what is left, senders
//              fail (their value is dropped).
//
// Both sides are served in FIFO order. Items always pass through the buffer:
// a woken receiver holds a reservation on one buffered item and takes it when
// it resumes. A receiver cancelled or destroyed before then gives its
// reservation to the next receiver, and the item stays buffered: nothing is
// lost in a race between an item arriving and a receiver leaving. A sender's
// value enters the buffer as the sender is woken, so it is sent even if the
// sender is then cancelled or destroyed.
//
// Cross-core later: the waiting logic here is per core. A cross-core channel
// keeps this interface, swaps the ring for a lock-free one and wakes a
// waiter on another core through that core's mailbox.
#include <coroutine>
#include <cstddef>
#include <memory>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/await_arg.hpp"
#include "coil/sync/error.hpp"
#include "coil/rt/waiter.hpp"

namespace coil {

namespace detail {
// Fixed-capacity ring of T, allocated once; T needs no default constructor.
template <class T>
class ring {
 public:
  explicit ring(std::size_t capacity) : slots_(std::make_unique<slot[]>(capacity)), capacity_(capacity) {}
  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;
  ~ring() {
    while (size_ != 0) (void)pop();
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool full() const noexcept { return size_ == capacity_; }

  void push(T&& v) noexcept {
    std::size_t i = head_ + size_;
    if (i >= capacity_) i -= capacity_;
    ::new (static_cast<void*>(slots_[i].bytes)) T(std::move(v));
    ++size_;
  }
  T pop() noexcept {
    T* p = std::launder(reinterpret_cast<T*>(slots_[head_].bytes));
    T v(std::move(*p));
    p->~T();
    if (++head_ == capacity_) head_ = 0;
    --size_;
    return v;
  }

 private:
  struct slot {
    alignas(T) unsigned char bytes[sizeof(T)];
  };
  std::unique_ptr<slot[]> slots_;
  std::size_t capacity_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};
}  // namespace detail

template <class T>
// A bounded FIFO between tasks of one runtime (see the file description).
class channel {
  static_assert(std::is_nothrow_move_constructible_v<T>, "channel<T> moves items in noexcept code");

 public:
  class [[nodiscard]] send_awaiter : public detail::waiter {
   public:
    send_awaiter(channel& c, T v) noexcept : ch_(&c), value_(std::move(v)) {}
    send_awaiter(send_awaiter&&) noexcept = default;

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      if (!begin(h)) return false;
      if (ch_->closed_) {
        error_ = sync_errc::closed;
        return false;
      }
      if (!ch_->buf_.full()) {  // senders queue only while it is full
        ch_->buf_.push(std::move(value_));
        ch_->balance();
        return false;
      }
      park(ch_->senders_);
      return true;
    }
    result<void> await_resume() noexcept { return finish(); }

   private:
    friend class channel;
    channel* ch_;
    T value_;
  };

  class [[nodiscard]] recv_awaiter : public detail::waiter {
   public:
    explicit recv_awaiter(channel& c) noexcept : ch_(&c) {}
    recv_awaiter(recv_awaiter&&) noexcept = default;
    ~recv_awaiter() {
      if (status_ == status::scheduled && !error_) {
        // Woken with a reservation but destroyed before taking the item:
        // it stays buffered for the next receiver.
        --ch_->reserved_;
        ch_->balance();
      }
    }

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      if (!begin(h)) return false;
      if (ch_->unreserved() != 0) {
        ++ch_->reserved_;  // taken in await_resume, right after
        return false;
      }
      if (ch_->closed_) {
        error_ = sync_errc::closed;
        return false;
      }
      park(ch_->receivers_);
      return true;
    }
    result<T> await_resume() noexcept {
      status_ = status::done;
      if (error_) return fail(error_);
      --ch_->reserved_;
      T v = ch_->buf_.pop();
      ch_->balance();
      return v;
    }

   private:
    friend class channel;
    channel* ch_;
  };

  // capacity >= 1: an unbuffered (rendezvous) channel is not offered.
  explicit channel(std::size_t capacity) : buf_(checked(capacity)) {}
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;
  ~channel() {
    COIL_ASSERT(senders_.empty() && receivers_.empty(), "coil::channel destroyed while tasks wait on it");
    COIL_ASSERT(reserved_ == 0, "coil::channel destroyed while a woken receiver has yet to take its item");
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
    if (closed_) return fail(sync_errc::closed);
    if (buf_.full()) return fail(std::errc::operation_would_block);
    buf_.push(std::move(v));
    balance();
    return {};
  }
  result<void> try_send(const T& v) noexcept(std::is_nothrow_copy_constructible_v<T>) {
    T copy(v);
    return try_send(std::move(copy));
  }

  // An item now, or operation_would_block (sync_errc::closed once closed and drained).
  result<T> try_recv() noexcept {
    if (unreserved() == 0)
      return fail(closed_ ? make_error_code(sync_errc::closed)
                          : std::make_error_code(std::errc::operation_would_block));
    T v = buf_.pop();
    balance();
    return v;
  }

  // Idempotent. Buffered items stay receivable.
  void close() noexcept {
    closed_ = true;
    // Waiting receivers imply nothing unreserved is buffered: they get none.
    while (recv_awaiter* r = receivers_.pop_front()) r->fail_wait(sync_errc::closed);
    while (send_awaiter* s = senders_.pop_front()) s->fail_wait(sync_errc::closed);
  }

  bool is_closed() const noexcept { return closed_; }
  // Buffered items, including those promised to woken receivers.
  std::size_t size() const noexcept { return buf_.size(); }
  std::size_t capacity() const noexcept { return buf_.capacity(); }

 private:
  static std::size_t checked(std::size_t capacity) noexcept {
    COIL_ASSERT(capacity > 0, "coil::channel capacity must be at least 1");
    return capacity;
  }
  std::size_t unreserved() const noexcept { return buf_.size() - reserved_; }

  // Restores the invariants after any change: senders wait only while the
  // buffer is full, receivers only while nothing unreserved is buffered.
  void balance() noexcept {
    while (!buf_.full()) {
      send_awaiter* s = senders_.pop_front();
      if (s == nullptr) break;
      buf_.push(std::move(s->value_));
      s->wake();
    }
    while (unreserved() != 0) {
      recv_awaiter* r = receivers_.pop_front();
      if (r == nullptr) break;
      ++reserved_;
      r->wake();
    }
  }

  detail::ring<T> buf_;
  std::size_t reserved_ = 0;  // buffered items promised to woken receivers
  bool closed_ = false;
  detail::waiter_queue<send_awaiter> senders_;
  detail::waiter_queue<recv_awaiter> receivers_;
};

}  // namespace coil
