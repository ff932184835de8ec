#pragma once
// The base of every coil socket: an owned descriptor, the operations in
// flight on it, options and addresses.
//
// fd lifetime: a socket knows every operation awaiting on it. Closing it
// (co_await s.close(), or the destructor) first cancels those operations and
// waits until the kernel has finished with each of them; only then is the
// descriptor closed. So a number the kernel hands out again can never be
// targeted by an old operation, and no byte of a new connection reaches an
// old reader. The cancelled operations resume with operation_canceled.
//
// Sockets stay in blocking mode (io_uring waits by itself; a readiness driver
// passes MSG_DONTWAIT per call); only listeners are O_NONBLOCK, see
// io/ops/net.hpp. A socket must outlive the operations started on it and must
// not be moved while any is pending (asserted).
#include <sys/epoll.h>
#include <sys/socket.h>

#include <coroutine>
#include <cstddef>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/intrusive_list.hpp"
#include "coil/core/result.hpp"
#include "coil/core/unique_fd.hpp"
#include "coil/io/ops.hpp"
#include "coil/net/address.hpp"
#include "coil/rt/op.hpp"
#include "coil/rt/runtime.hpp"

namespace coil::net {

namespace detail {
// An operation suspended on a socket, linked into the socket's pending list.
struct pending_op : list_hook {
  void (*abort)(pending_op&) noexcept = nullptr;
  bool writes = false;  // a send or connect: an eager send must not overtake it
};
using pending_list = intrusive_list<pending_op>;
// A send or connect is pending: an eager send now would overtake it.
inline bool writes_pending(pending_list& l) noexcept {
  bool found = false;
  l.for_each([&](pending_op& p) { found = found || p.writes; });
  return found;
}
}  // namespace detail

// Awaitable socket operation: coil's op_awaiter plus membership in the
// socket's pending list, so that closing the socket can cancel it.
template <class Op, class Out = decltype(Op::complete(0))>
class [[nodiscard]] socket_op : detail::pending_op {
 public:
  socket_op(Op op, detail::pending_list* owner) noexcept : owner_(owner) {
    inner_.emplace(op);
    writes = (Op::poll_events & EPOLLOUT) != 0;
  }
  // Movable before it is awaited (with_timeout takes it by value).
  socket_op(socket_op&& o) noexcept : owner_(o.owner_) {
    COIL_ASSERT(!o.linked() && o.inner_, "moving a socket operation that was already awaited");
    inner_.emplace(std::move(*o.inner_));
  }
  socket_op& operator=(socket_op&&) = delete;
  ~socket_op() = default;  // inner_ cancels and waits if still in flight

  bool await_ready() const noexcept { return false; }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    if constexpr (ops::eager_op<Op>) {
      if (try_eager(coil::detail::stop_of(h))) return false;
    }
    if (!inner_->await_suspend(h)) return false;
    waiter_.handle = h;
    rt_ = runtime::current();
    abort = &abort_thunk;
    owner_->push_back(*this);
    return true;
  }

  Out await_resume() noexcept {
    list_hook::unlink();
    if (!inner_) return Out(fail(std::errc::operation_canceled));
    return inner_->await_resume();
  }

  // The eager path alone (see op_awaiter::try_eager): true if one
  // non-blocking call finished the op; await_resume gives its result.
  bool try_eager(stop_source* stop) noexcept {
    static_assert(ops::eager_op<Op>);
    return inner_->try_eager(stop, [this] { return !detail::writes_pending(*owner_); });
  }

  // The blocking form (coil::block): see op_awaiter::perform_blocking.
  Out perform_blocking() noexcept
    requires requires(op_awaiter<Op, Out>& a) { a.perform_blocking(); }
  {
    return inner_->perform_blocking();
  }

  // The op as the driver ran it (recv_from reads the sender's length here).
  Op& op() noexcept { return inner_->op(); }
  bool aborted() const noexcept { return !inner_; }

 private:
  // The socket is closing: finish the operation now (cancel and wait, done by
  // op_awaiter's destructor; a late accepted fd is closed there) and resume
  // the waiter with operation_canceled on the next turn.
  static void abort_thunk(detail::pending_op& p) noexcept {
    auto& self = static_cast<socket_op&>(p);
    self.list_hook::unlink();
    self.inner_.reset();
    self.rt_->schedule(self.waiter_);
  }

  std::optional<op_awaiter<Op, Out>> inner_;
  detail::pending_list* owner_;
  runtime* rt_ = nullptr;
  coil::detail::ready_node waiter_;
};

enum class shutdown_how : int { read = SHUT_RD, write = SHUT_WR, both = SHUT_RDWR };

// The base of every socket: owns the descriptor and the list of operations
// pending on it, which closing cancels first (see the file description).
class socket {
 public:
  socket() noexcept = default;
  explicit socket(unique_fd fd) noexcept : fd_(std::move(fd)) {}
  socket(socket&& o) noexcept : fd_(std::move(o.fd_)), short_means_empty_(o.short_means_empty_) {
    COIL_ASSERT(o.pending_.empty(), "moving a socket while operations on it are pending");
  }
  socket& operator=(socket&& o) noexcept {
    if (this != &o) {
      COIL_ASSERT(o.pending_.empty(), "moving a socket while operations on it are pending");
      abort_pending();
      fd_ = std::move(o.fd_);
      short_means_empty_ = o.short_means_empty_;
    }
    return *this;
  }
  // Cancels and completes pending operations, then closes synchronously.
  ~socket() { abort_pending(); }

  int fd() const noexcept { return fd_.get(); }
  bool is_open() const noexcept { return fd_.valid(); }
  // Number of operations currently suspended on this socket.
  size_t pending() const noexcept { return pending_.size(); }

  // Cancels pending operations (they resume with operation_canceled) and
  // gives up the descriptor.
  unique_fd release() noexcept {
    abort_pending();
    return unique_fd(fd_.release());
  }

  // Cancels pending operations and waits for the kernel to finish them (at
  // the call, so nothing can start on the old number afterwards), then closes
  // on the ring. Later operations on this object fail with EBADF.
  op_awaiter<ops::close> close() noexcept {
    abort_pending();
    return op_awaiter<ops::close>(ops::close{fd_.release()});
  }

  // Generic operations on any socket kind. msg and what it points to must
  // stay valid until awaited.
  socket_op<ops::sendmsg> sendmsg(const msghdr& msg, int flags = 0) noexcept {
    return make(ops::sendmsg{fd(), &msg, flags});
  }
  socket_op<ops::recvmsg> recvmsg(msghdr& msg, int flags = 0) noexcept { return make(ops::recvmsg{fd(), &msg, flags}); }
  socket_op<ops::shutdown> shutdown(shutdown_how how = shutdown_how::write) noexcept {
    return make(ops::shutdown{fd(), static_cast<int>(how)});
  }

  // --- synchronous: these never block --------------------------------------
  result<socket_address> local_address() const noexcept;
  result<socket_address> peer_address() const noexcept;
  result<void> set_option(int level, int name, int value) noexcept;
  result<int> get_option(int level, int name) const noexcept;
  // SO_SNDBUF / SO_RCVBUF (the kernel doubles what it is given).
  result<void> set_send_buffer_size(int bytes) noexcept { return set_option(SOL_SOCKET, SO_SNDBUF, bytes); }
  result<void> set_recv_buffer_size(int bytes) noexcept { return set_option(SOL_SOCKET, SO_RCVBUF, bytes); }
  result<int> send_buffer_size() const noexcept { return get_option(SOL_SOCKET, SO_SNDBUF); }
  result<int> recv_buffer_size() const noexcept { return get_option(SOL_SOCKET, SO_RCVBUF); }
  // SO_ERROR: the pending socket error, cleared by reading it.
  std::error_code take_error() noexcept;

 protected:
  template <class Out = void, class Op>
  socket_op<Op, std::conditional_t<std::is_void_v<Out>, decltype(Op::complete(0)), Out>> make(Op op) noexcept {
    return {op, &pending_};
  }
  // Finishes every pending operation (see socket_op::abort_thunk).
  void abort_pending() noexcept {
    while (detail::pending_op* p = pending_.pop_front()) p->abort(*p);
  }
  static uint32_t clamp(size_t n) noexcept {
    // One transfer is capped at 0x7ffff000 bytes by the kernel anyway.
    return n > 0x7ffff000u ? 0x7ffff000u : static_cast<uint32_t>(n);
  }

  unique_fd fd_;
  // TCP: a short read means an empty receive queue (ops::recv). Here, in
  // fd_'s padding, so that idle connections stay small.
  bool short_means_empty_ = false;
  detail::pending_list pending_;
};

// Creates a close-on-exec socket synchronously (socket(2) never blocks).
result<unique_fd> open_socket(int domain, int type, int protocol = 0) noexcept;

}  // namespace coil::net
