#pragma once
// Linked operations: a fixed chain of ops that run in order, each starting
// once the one before it finished, awaited as one. The result is a tuple
// with each op's result.
//   auto [w, s] = co_await coil::link(f.write_at(data, 0), f.fdatasync());
//   auto [n, t] = co_await coil::link(sock.recv(buf), coil::link_timeout(2s));
// On io_uring the chain goes to the kernel as one IOSQE_IO_LINK chain: its
// SQEs are submitted together, in one system call, and the kernel starts
// each op when the previous one completes. On epoll the ops run in the same
// order, one at a time.
//
// link (soft): an op that fails cancels the rest, which give
// operation_canceled (io_uring also counts a short read or write as a
// failure; epoll only errors). hard_link: every op runs whatever the
// previous ones gave.
//
// link_timeout(d) after an op cancels that op if it has not finished within
// d; the op then gives timed_out (and the ops after it, in a soft chain,
// operation_canceled). The timeout's own result is timed_out when it fired,
// success otherwise. On io_uring this is IORING_OP_LINK_TIMEOUT: no timer
// in user space and no separate cancel (with_timeout keeps its timer: the
// kernel's timeout costs more CPU when the op finishes in time).
//
// Arguments: op structs (coil::ops::write{...}) or the operations files and
// sockets return (f.write_at(...), s.recv(...)), which are taken apart for
// their op. A chain is not among a socket's pending operations: let it
// finish (or cancel it) before closing the socket or file it uses.
// Cancelling the awaiting task cancels every op still pending; destroying
// it mid-chain cancels and waits for each, so the kernel never touches the
// frame's memory afterwards. No heap allocation.
#include <unistd.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/duration.hpp"
#include "coil/core/result.hpp"
#include "coil/io/completion.hpp"
#include "coil/io/epoll_driver.hpp"
#include "coil/io/op_completion.hpp"
#include "coil/io/ops.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/stop.hpp"

namespace coil {

// Times the op before it in a chain (see the file description).
inline ops::link_timeout link_timeout(duration_ns d) noexcept { return ops::link_timeout{d.ns}; }

namespace detail {

template <class Op>
inline constexpr bool is_link_timeout_v = std::is_same_v<Op, ops::link_timeout>;

// What a chain's members share. Each member's final result reaches
// member_done (its op_vtable::on_cqe); the awaiting coroutine is scheduled
// when every member has one.
struct link_state : link_chain {
  runtime* rt = nullptr;  // set once the chain was handed to the driver
  ready_node waiter;
  uint32_t timeouts = 0;    // bit i: member i is a link_timeout
  uint8_t finished = 0;     // members with their final result
  uint8_t step = 0;         // epoll: the first member of the step running
  uint8_t next = 0;         // epoll: the first member not yet pushed
  bool in_kernel = false;   // io_uring: the chain went to the ring whole
  bool cancelling = false;  // what has not finished is being cancelled
  bool destroying = false;  // the awaiter is going away: nothing new starts, nobody resumes

  bool is_timeout(unsigned i) const noexcept { return (timeouts >> i) & 1u; }
  // Hands the chain to rt's driver.
  void start() noexcept;
  void member_done(completion& c) noexcept;
  // Cancels every member still pending (stop requests, destruction).
  void cancel_pending() noexcept;

 private:
  void start_step() noexcept;  // epoll: the next op, with its timeout
  void end_step() noexcept;    // epoll: the step's members all finished
  void recancel() noexcept;
};

// One op of a chain: a completion the chain's hook hears about.
template <class Op>
struct link_member : std::conditional_t<is_link_timeout_v<Op>, deadline_completion, completion> {
  Op op;
  link_state* chain = nullptr;
  explicit link_member(Op o) noexcept : op(o) {}
  static Op& op_ref(completion& c) noexcept { return static_cast<link_member&>(c).op; }
  static void on_cqe(completion& c) noexcept { static_cast<link_member&>(c).chain->member_done(c); }
  static link_chain* chain_of(completion& c) noexcept { return static_cast<link_member&>(c).chain; }
};

template <class Op>
struct link_vtable {
  static constexpr op_vtable make() noexcept {
    op_vtable v = op_vtable_for<Op, link_member<Op>>::value;
    v.on_cqe = &link_member<Op>::on_cqe;
    v.chain_of = &link_member<Op>::chain_of;
    return v;
  }
  static constexpr op_vtable value = make();
};

// The op inside what link() was given: an op struct, or an awaiter with op().
template <class X>
auto link_op_of(X& x) noexcept {
  if constexpr (requires { x.op(); }) {
    using Op = std::remove_cvref_t<decltype(x.op())>;
    static_assert(!ops::consumes_fd_op<Op>,
                  "link: pass a close as ops::close{fd}; an unawaited close operation closes its fd itself");
    return x.op();
  } else {
    static_assert(ops::operation<X>, "link takes op structs (coil::ops::...) or single operations (f.write_at(...))");
    return x;
  }
}
template <class X>
using link_op_t = decltype(link_op_of(std::declval<X&>()));

template <class Op>
constexpr bool linkable() noexcept {
  static_assert(checked_operation<Op>());
  static_assert(!ops::multishot_op<Op>, "link: a multishot op has no single result to chain on");
  static_assert(!ops::reports_flags_op<Op>, "link: the result would drop the op's CQE flags (a provided buffer)");
  static_assert(!ops::aio_capable_op<Op>, "link: O_DIRECT dio ops may run on Linux AIO, which has no links");
  static_assert(!std::is_same_v<Op, ops::send_zc>, "link: send_zc gives two results (use send)");
  return true;
}

}  // namespace detail

// Awaitable chain of ops (see the file description); made by link and hard_link.
template <class... Ops>
class [[nodiscard]] link_awaiter : stop_callback {
  static constexpr std::size_t count = sizeof...(Ops);
  static_assert(count >= 1 && count <= 16, "a link chain has 1 to 16 ops");
  static_assert((detail::linkable<Ops>() && ...));

 public:
  using results = std::tuple<decltype(Ops::complete(0))...>;

  explicit link_awaiter(bool hard, Ops... ops) noexcept : members_(ops...) {
    state_.hard = hard;
    state_.count = static_cast<uint8_t>(count);
    state_.members = ptrs_;
    init(std::index_sequence_for<Ops...>{});
  }
  link_awaiter(link_awaiter&&) = delete;  // members point into it
  link_awaiter& operator=(link_awaiter&&) = delete;

  ~link_awaiter() {
    if (state_.rt != nullptr && state_.finished != count) {
      // The kernel (or a worker) may still hold members: cancel every one
      // and wait for each, so nothing writes into this frame afterwards.
      state_.destroying = true;
      state_.cancel_pending();
      for (completion* c : ptrs_) {
        if (c->state == op_state::queued || c->state == op_state::in_flight) state_.rt->cancel_and_wait(*c);
      }
    }
    if (!consumed_) release(std::index_sequence_for<Ops...>{});
  }

  bool await_ready() const noexcept { return false; }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    const detail::admission a = detail::admit(h);
    if (!a.ok()) {
      early_ = a.why;
      return false;
    }
    state_.rt = a.rt;
    state_.waiter.handle = h;
    state_.start();
    if (a.stop != nullptr) {
      stop_callback::fn = &on_stop;
      a.stop->add(*this);
    }
    return true;
  }

  results await_resume() noexcept {
    static_cast<stop_callback&>(*this).unlink();
    consumed_ = true;
    if (early_ != detail::refusal::none) {
      const std::error_code e = detail::error_of(early_);
      return results(decltype(Ops::complete(0))(fail(e))...);
    }
    // A timed op cancelled by its link timeout timed out.
    for (unsigned i = 1; i < count; ++i) {
      if (state_.is_timeout(i) && ptrs_[i]->res == -ETIME && ptrs_[i - 1]->res == -ECANCELED) {
        ptrs_[i - 1]->res = -ETIMEDOUT;
      }
    }
    return take(std::index_sequence_for<Ops...>{});
  }

 private:
  template <std::size_t... I>
  void init(std::index_sequence<I...>) noexcept {
    (bind_member<I>(), ...);
  }
  template <std::size_t I>
  void bind_member() noexcept {
    using Op = std::tuple_element_t<I, std::tuple<Ops...>>;
    auto& m = std::get<I>(members_);
    detail::bind_op<Op, detail::link_member<Op>>(m, m.op);
    m.ops = &detail::link_vtable<Op>::value;
    m.chain = &state_;
    ptrs_[I] = &m;
    if constexpr (detail::is_link_timeout_v<Op>) {
      static_assert(I != 0, "link_timeout times the op before it: it cannot come first");
      state_.timeouts |= 1u << I;
    }
  }
  template <std::size_t... I>
  results take(std::index_sequence<I...>) noexcept {
    (close_unrun<I>(), ...);
    return results(std::tuple_element_t<I, std::tuple<Ops...>>::complete(ptrs_[I]->res)...);
  }
  // A close that never ran (cancelled, or its chain broke first) still
  // releases the descriptor, as close(2) does on error.
  template <std::size_t I>
  void close_unrun() noexcept {
    using Op = std::tuple_element_t<I, std::tuple<Ops...>>;
    if constexpr (ops::consumes_fd_op<Op>) {
      auto& m = std::get<I>(members_);
      if (m.state == op_state::idle || m.res == -ECANCELED) {
        detail::fd_closing(m.op.fd);
        (void)m.op.perform(false);
      }
    }
  }
  // Results nobody took: a late descriptor is closed, received ones released.
  template <std::size_t... I>
  void release(std::index_sequence<I...>) noexcept {
    (release_one<I>(), ...);
  }
  template <std::size_t I>
  void release_one() noexcept {
    using Op = std::tuple_element_t<I, std::tuple<Ops...>>;
    auto& m = std::get<I>(members_);
    close_unrun<I>();
    if (m.state != op_state::done) return;
    if constexpr (ops::yields_fd_op<Op>) {
      if (m.res >= 0) (void)::close(m.res);
    }
    if constexpr (ops::discards_op<Op>) m.op.discard(m.res);
  }
  static void on_stop(stop_callback& cb) noexcept { static_cast<link_awaiter&>(cb).state_.cancel_pending(); }

  std::tuple<detail::link_member<Ops>...> members_;
  completion* ptrs_[count];
  detail::link_state state_;
  detail::refusal early_ = detail::refusal::none;
  bool consumed_ = false;
};

// A soft chain: an op that fails cancels the ones after it.
template <class... Xs>
link_awaiter<detail::link_op_t<Xs>...> link(Xs&&... xs) noexcept {
  return link_awaiter<detail::link_op_t<Xs>...>(false, detail::link_op_of(xs)...);
}

// A hard chain: every op runs, whatever the ones before it gave.
template <class... Xs>
link_awaiter<detail::link_op_t<Xs>...> hard_link(Xs&&... xs) noexcept {
  return link_awaiter<detail::link_op_t<Xs>...>(true, detail::link_op_of(xs)...);
}

}  // namespace coil
