#pragma once
// Multishot operations as streams of results: one submission, many results.
//   auto incoming = listener.incoming();         // multishot accept
//   while (auto conn = co_await incoming.next()) { ... }
//   auto rx = conn.recv_multishot(ring);         // recv into provided buffers
//   auto buf = co_await rx.next();               // rx_buffer; empty: end of stream
//
// The kernel keeps the operation armed and posts a result whenever there is
// one; results wait in the stream (accepted descriptors in a small queue,
// received buffers linked through their buffer_ring) until next() takes them.
// A result without IORING_CQE_F_MORE (CQ pressure, ENOBUFS) re-arms the
// operation: a healthy stream never ends by itself. Errors are delivered once
// by next(); the following next() arms again (EMFILE from accept is
// backpressure: free descriptors and call next()).
//
// Accept streams stop accepting (cancel the multishot) once 64 connections
// wait unclaimed; later connections queue in the kernel's backlog until next()
// drains the stream. (One io_uring arm takes the whole backlog at once, so a
// burst can exceed 64; the listen backlog bounds it.) Recv streams hold no buffer while idle; when every
// buffer of the ring is held by the user, the stream waits for a release.
//
// Lifetime: a stream belongs to its socket (closing the socket cancels it and
// next() then fails with operation_canceled); destroying the stream cancels
// the operation and waits for the kernel to finish with it. Streams cannot
// move (their address is the kernel's user_data); the socket must not move
// while a stream on it exists.
#include <coroutine>
#include <cstddef>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "coil/core/assert.hpp"
#include "coil/io/buffer_ring.hpp"
#include "coil/io/ops.hpp"
#include "coil/net/socket.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/stop.hpp"

namespace coil::net {

// A received buffer, lent by a buffer_ring until destroyed (or reset()).
// Empty (size 0, no ring) at the end of the stream.
class rx_buffer {
 public:
  rx_buffer() noexcept = default;
  rx_buffer(buffer_ring* ring, uint16_t bid, uint32_t len) noexcept : ring_(ring), bid_(bid), len_(len) {}
  rx_buffer(rx_buffer&& o) noexcept
      : ring_(std::exchange(o.ring_, nullptr)), bid_(o.bid_), len_(std::exchange(o.len_, 0)) {}
  rx_buffer& operator=(rx_buffer&& o) noexcept {
    if (this != &o) {
      reset();
      ring_ = std::exchange(o.ring_, nullptr);
      bid_ = o.bid_;
      len_ = std::exchange(o.len_, 0);
    }
    return *this;
  }
  ~rx_buffer() { reset(); }

  std::span<const std::byte> bytes() const noexcept { return {data(), len_}; }
  const std::byte* data() const noexcept { return ring_ ? ring_->data(bid_) : nullptr; }
  size_t size() const noexcept { return len_; }
  bool empty() const noexcept { return len_ == 0; }
  // Gives the buffer back to its ring now.
  void reset() noexcept {
    if (ring_ != nullptr) std::exchange(ring_, nullptr)->release(bid_);
    len_ = 0;
  }

 private:
  buffer_ring* ring_ = nullptr;
  uint16_t bid_ = 0;
  uint32_t len_ = 0;
};

namespace detail {

// The machinery both streams share: the armed completion, re-arming, the
// consumer waiting in next(), and closing. Derived provides:
//   void on_result(int32_t res, uint32_t flags, bool more) noexcept;
//   bool deliverable() const noexcept;  // next() can return now
//   Out take() noexcept;                // what next() returns
//   void drop_queue() noexcept;         // closing: free what waits
template <class Derived, class Op>
class multishot_stream : coil::completion, pending_op {
 public:
  multishot_stream(const multishot_stream&) = delete;
  multishot_stream& operator=(const multishot_stream&) = delete;

  // True while the kernel holds the armed operation.
  bool armed() const noexcept { return armed_; }
  bool closed() const noexcept { return closed_; }

  class [[nodiscard]] next_awaiter : stop_callback {
   public:
    explicit next_awaiter(Derived& s) noexcept : s_(s) {}
    next_awaiter(const next_awaiter&) = delete;
    next_awaiter& operator=(const next_awaiter&) = delete;
    ~next_awaiter() {
      if (s_.waiting_ == this) s_.waiting_ = nullptr;
    }

    bool await_ready() const noexcept { return s_.deliverable(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      COIL_ASSERT(s_.waiting_ == nullptr, "two tasks waiting on one multishot stream");
      stop_source* stop = coil::detail::stop_of(h);
      if (stop != nullptr && stop->stop_requested()) {
        stopped_ = true;
        return false;
      }
      if (!s_.ensure_armed()) return false;
      node_.handle = h;
      s_.waiting_ = this;
      if (stop != nullptr) {
        stop_callback::fn = &on_stop;
        stop->add(*this);
      }
      return true;
    }
    auto await_resume() noexcept {
      static_cast<stop_callback&>(*this).unlink();
      if (s_.waiting_ == this) s_.waiting_ = nullptr;
      if (stopped_ && !s_.deliverable()) return decltype(s_.take())(fail(std::errc::operation_canceled));
      return s_.take();
    }

   private:
    friend class multishot_stream;
    void wake() noexcept {
      s_.waiting_ = nullptr;
      s_.rt_->schedule(node_);
    }
    static void on_stop(stop_callback& cb) noexcept {
      auto& self = static_cast<next_awaiter&>(cb);
      self.stopped_ = true;
      if (self.s_.waiting_ == &self) self.wake();
    }
    Derived& s_;
    coil::detail::ready_node node_;
    bool stopped_ = false;
  };

  // Waits for the next result (see the file comment).
  next_awaiter next() noexcept { return next_awaiter(static_cast<Derived&>(*this)); }

 protected:
  multishot_stream(Op op, pending_list* owner) noexcept : op_(op) {
    pending_op::abort = &abort_thunk;
    owner->push_back(*this);
  }
  ~multishot_stream() { COIL_ASSERT(!armed_, "multishot stream destroyed while armed (Derived must shut down)"); }

  // Cancels the armed operation and waits until the kernel is done with it.
  void shut() noexcept {
    closing_ = true;
    if (armed_) rt_->cancel_and_wait(*this);
    COIL_ASSERT(!armed_, "multishot operation still armed after draining");
  }
  void end_waiter() noexcept {
    COIL_ASSERT(waiting_ == nullptr, "multishot stream destroyed while a task waits in next()");
  }
  // Arms again after a final result, unless closing.
  void rearm() noexcept {
    if (closing_ || armed_ || rt_ == nullptr || !rt_->accepting()) return;
    arm();
  }
  void request_stop_accepting() noexcept {
    if (armed_) rt_->driver().cancel(*this);
  }
  bool closing() const noexcept { return closing_; }
  Op& op() noexcept { return op_; }

 private:
  template <class, class>
  friend struct coil::detail::op_vtable_for;

  void arm() noexcept {
    coil::detail::bind_op<Op, multishot_stream>(*this, op_);
    state = op_state::idle;
    armed_ = true;
    rt_->driver().push_io(*this);
  }
  // Before suspending in next(): false when next() must return at once (an
  // error is recorded in the stream).
  bool ensure_armed() noexcept {
    if (armed_ || closed_ || static_cast<Derived&>(*this).waits_for_buffers()) return true;
    const coil::detail::admission a = coil::detail::admit();
    if (!a.ok()) {
      static_cast<Derived&>(*this).set_error(coil::detail::error_of(a.why));
      return false;
    }
    runtime* rt = a.rt;
    COIL_ASSERT(rt_ == nullptr || rt_ == rt, "multishot stream used from another runtime");
    rt_ = rt;
    arm();
    return true;
  }
  static Op& op_ref(completion& c) noexcept { return static_cast<multishot_stream&>(c).op_; }
  static void on_cqe(completion& c) noexcept {
    auto& self = static_cast<multishot_stream&>(c);
    const bool more = c.cqe_flags & IORING_CQE_F_MORE;
    if (!more) self.armed_ = false;
    auto& d = static_cast<Derived&>(self);
    d.on_result(c.res, c.cqe_flags, more);
    if (self.waiting_ == nullptr) return;
    if (d.deliverable()) {
      self.waiting_->wake();
    } else if (!d.waits_for_buffers()) {
      self.rearm();  // ended with nothing to give (our own pause): someone waits
    }
  }
  // The socket is closing.
  static void abort_thunk(pending_op& p) noexcept {
    auto& self = static_cast<multishot_stream&>(p);
    self.shut();
    self.closed_ = true;
    auto& d = static_cast<Derived&>(self);
    d.drop_queue();
    if (self.waiting_ != nullptr) self.waiting_->wake();
  }

  Op op_;
  runtime* rt_ = nullptr;
  next_awaiter* waiting_ = nullptr;
  bool armed_ = false;
  bool closing_ = false;  // draining: results are kept, nothing re-arms
  bool closed_ = false;   // the socket closed under the stream
};

}  // namespace detail

// Accepted connections from a multishot accept (basic_listener::incoming).
template <class Stream>
class accept_stream : public detail::multishot_stream<accept_stream<Stream>, ops::accept_multishot> {
  using base = detail::multishot_stream<accept_stream<Stream>, ops::accept_multishot>;

 public:
  // Connections accepted and not yet claimed before accepting pauses.
  static constexpr size_t high_water = 64;

  accept_stream(int listen_fd, int flags, detail::pending_list* owner) noexcept
      : base(ops::accept_multishot{listen_fd, flags}, owner) {}
  ~accept_stream() {
    this->end_waiter();
    this->shut();
    drop_queue();
  }
  // Accepted connections waiting for next().
  size_t queued() const noexcept { return fds_.size() - head_; }

 private:
  friend base;
  void on_result(int32_t res, uint32_t, bool more) noexcept {
    if (res >= 0) {
      if (fds_.capacity() == 0) fds_.reserve(high_water);
      fds_.push_back(res);
      if (queued() >= high_water) {
        this->request_stop_accepting();  // resumes when next() finds the queue empty
      } else if (!more) {
        this->rearm();
      }
    } else if (res != -ECANCELED) {
      error_ = kernel_error(res);
    }
  }
  bool deliverable() const noexcept { return queued() != 0 || error_ || this->closed(); }
  bool waits_for_buffers() const noexcept { return false; }
  void set_error(std::error_code e) noexcept { error_ = e; }
  result<Stream> take() noexcept {
    if (queued() != 0) {
      const int fd = fds_[head_++];
      if (head_ == fds_.size()) {
        fds_.clear();
        head_ = 0;
      }
      return Stream(unique_fd(fd));
    }
    if (error_) return fail(std::exchange(error_, {}));
    return fail(std::errc::operation_canceled);
  }
  void drop_queue() noexcept {
    for (size_t i = head_; i < fds_.size(); ++i) unique_fd close_it(fds_[i]);
    fds_.clear();
    head_ = 0;
  }

  std::vector<int> fds_;
  size_t head_ = 0;
  std::error_code error_;
};

// Received data from a multishot recv into a buffer_ring
// (stream_socket::recv_multishot).
class recv_stream : public detail::multishot_stream<recv_stream, ops::recv_multishot>, buffer_ring::starved_hook {
  using base = detail::multishot_stream<recv_stream, ops::recv_multishot>;

 public:
  recv_stream(int fd, buffer_ring& ring, int flags, bool short_means_empty, detail::pending_list* owner) noexcept
      : base(ops::recv_multishot{fd, short_means_empty, &ring, flags}, owner), ring_(ring) {
    buffer_ring::starved_hook::on_available = &rearm_starved;
    ring_.attach();
  }
  ~recv_stream() {
    end_waiter();
    shut();
    buffer_ring::starved_hook::unlink();
    drop_queue();
    ring_.detach();
  }
  // Waiting for a buffer of the ring to be released.
  bool starved() const noexcept { return buffer_ring::starved_hook::linked(); }

 private:
  friend base;
  void on_result(int32_t res, uint32_t flags, bool more) noexcept;
  bool deliverable() const noexcept { return head_ != buffer_ring::none || eof_ || error_ || closed(); }
  bool waits_for_buffers() const noexcept { return starved(); }
  void set_error(std::error_code e) noexcept { error_ = e; }
  result<rx_buffer> take() noexcept;
  void drop_queue() noexcept;
  static void rearm_starved(buffer_ring::starved_hook& h) noexcept;

  buffer_ring& ring_;
  uint16_t head_ = buffer_ring::none;  // received buffers, linked through the ring
  uint16_t tail_ = buffer_ring::none;
  bool eof_ = false;
  std::error_code error_;
};

}  // namespace coil::net
