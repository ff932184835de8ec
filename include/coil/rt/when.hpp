#pragma once
// Running tasks concurrently within one task.
//   when_all(a, b, ...)  -> tuple of every result, after all finished.
//                           a, b: tasks or single operations (recv, send_all...).
//   when_any(a, b, ...)  -> when_any_result (a variant) holding the first
//                           finisher's result; the others are cancelled and
//                           awaited before returning, so nothing they own
//                           outlives the call. .cancelled: the caller was
//                           cancelled before any child finished.
//   with_timeout(x, d)   -> x's result, or std::errc::timed_out.
// A task<void> contributes std::monostate (a tuple or variant cannot hold
// void). Children share the caller's cancellation: stopping the caller stops
// them.
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "coil/core/result.hpp"
#include "coil/rt/stop.hpp"
#include "coil/rt/task.hpp"
#include "coil/rt/time.hpp"

namespace coil {
namespace detail {

template <class A>
using await_result_t = decltype(std::declval<A>().await_resume());

template <class A>
task<await_result_t<A>> as_task(A a) {
  co_return co_await std::move(a);
}

template <class X>
inline constexpr bool is_task_v = false;
template <class T>
inline constexpr bool is_task_v<task<T>> = true;

// when_* take tasks; a single operation (socket.recv(...), send_all(...))
// becomes one here.
template <class T>
task<T> to_task(task<T>&& t) noexcept {
  return std::move(t);
}
template <class A>
  requires(!is_task_v<A>)
task<await_result_t<A>> to_task(A&& a) {
  return as_task(std::move(a));
}

template <class T>
struct non_void {
  using type = T;
};
template <>
struct non_void<void> {
  using type = std::monostate;
};
template <class T>
using non_void_t = typename non_void<T>::type;

template <class T>
non_void_t<T> take_non_void(task<T>& t) noexcept {
  if constexpr (std::is_void_v<T>) {
    return {};
  } else {
    return t.handle().promise().take();
  }
}

struct when_state;

struct when_slot {
  when_state* state;
  std::size_t index;
};

struct when_state : stop_callback {
  std::size_t remaining = 0;
  std::size_t winner = ~std::size_t{0};
  bool cancel_others = false;  // when_any
  bool parent_stopped = false;
  bool won_after_stop = false;  // the winner finished after the caller's stop request
  std::coroutine_handle<> parent;
  stop_source* sources = nullptr;
  std::size_t count = 0;

  void stop_all_except(std::size_t keep) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
      if (i != keep) sources[i].request_stop();
    }
  }
  static void on_parent_stop(stop_callback& cb) noexcept {
    auto& s = static_cast<when_state&>(cb);
    s.parent_stopped = true;
    s.stop_all_except(~std::size_t{0});
  }
  static std::coroutine_handle<> child_done(promise_base& p) noexcept {
    auto* slot = static_cast<when_slot*>(p.done_ctx);
    when_state& s = *slot->state;
    if (s.winner == ~std::size_t{0}) {
      s.winner = slot->index;
      s.won_after_stop = s.parent_stopped;
      if (s.cancel_others) s.stop_all_except(slot->index);
    }
    if (--s.remaining == 0) return s.parent;
    return std::noop_coroutine();
  }
};

template <class... Ts>
struct when_awaiter {
  static constexpr std::size_t n = sizeof...(Ts);
  std::tuple<task<Ts>...> tasks;
  stop_source sources[n];
  when_slot slots[n];
  when_state state;

  explicit when_awaiter(bool any, task<Ts>... ts) : tasks(std::move(ts)...) {
    state.cancel_others = any;
    state.sources = sources;
    state.count = n;
  }

  bool await_ready() const noexcept { return false; }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> parent) noexcept {
    state.parent = parent;
    state.remaining = n + 1;  // +1: no child may resume the parent while we start them
    if (stop_source* ps = stop_of(parent)) {
      state.fn = &when_state::on_parent_stop;
      ps->add(state);
    }
    start(std::index_sequence_for<Ts...>{});
    return --state.remaining != 0;
  }
  void await_resume() const noexcept {}

  template <std::size_t... I>
  void start(std::index_sequence<I...>) noexcept {
    (start_one<I>(), ...);
  }

  template <std::size_t I>
  void start_one() noexcept {
    auto& t = std::get<I>(tasks);
    COIL_ASSERT(t.valid() && !t.handle().promise().started, "when_all/when_any given an empty or started task");
    auto& p = t.handle().promise();
    p.started = true;
    p.stop = &sources[I];
    slots[I] = when_slot{&state, I};
    p.done_ctx = &slots[I];
    p.on_done = &when_state::child_done;
    t.handle().resume();
  }
};

}  // namespace detail

// What when_any gives: a variant holding the first finisher's result (use
// it as one: index(), std::get, std::visit), and whether the caller was
// cancelled before any child finished. Then every child was stopped, and
// the winner is only whichever noticed first: its result is typically
// operation_canceled, and its index says nothing about which child would
// have won (a timer child "winning" is not a timeout).
template <class... Ts>
struct when_any_result : std::variant<Ts...> {
  using std::variant<Ts...>::variant;
  bool cancelled = false;
};

template <class... Ts>
// Runs every task concurrently; a tuple of their results once all finished.
task<std::tuple<detail::non_void_t<Ts>...>> when_all(task<Ts>... ts) {
  static_assert(sizeof...(Ts) > 0, "when_all needs at least one task");
  detail::when_awaiter<Ts...> aw(false, std::move(ts)...);
  co_await aw;
  static_cast<stop_callback&>(aw.state).unlink();
  co_return std::apply([](auto&... t) { return std::tuple<detail::non_void_t<Ts>...>(detail::take_non_void(t)...); },
                       aw.tasks);
}

// The same over operations as well as tasks (each operation runs as a task).
template <class... Xs>
  requires(sizeof...(Xs) > 0 && !(detail::is_task_v<Xs> && ...))
auto when_all(Xs... xs) {
  return when_all(detail::to_task(std::move(xs))...);
}

template <class... Ts>
// Runs every task concurrently; the first finisher's result, after the
// others were cancelled and awaited (see when_any_result).
task<when_any_result<detail::non_void_t<Ts>...>> when_any(task<Ts>... ts) {
  static_assert(sizeof...(Ts) > 0, "when_any needs at least one task");
  detail::when_awaiter<Ts...> aw(true, std::move(ts)...);
  co_await aw;
  static_cast<stop_callback&>(aw.state).unlink();
  const std::size_t w = aw.state.winner;
  std::optional<when_any_result<detail::non_void_t<Ts>...>> out;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((w == I ? (out.emplace(std::in_place_index<I>, detail::take_non_void(std::get<I>(aw.tasks))), 0) : 0), ...);
  }
  (std::index_sequence_for<Ts...>{});
  out->cancelled = aw.state.won_after_stop;
  co_return std::move(*out);
}

// The same over operations as well as tasks.
template <class... Xs>
  requires(sizeof...(Xs) > 0 && !(detail::is_task_v<Xs> && ...))
auto when_any(Xs... xs) {
  return when_any(detail::to_task(std::move(xs))...);
}

namespace detail {
inline task<result<void>> sleep_task(int64_t ns) {
  co_return co_await sleep_awaiter(ns, sleep_awaiter::kind::relative);
}
}  // namespace detail

// t must produce a result<X>; gives std::errc::timed_out if d passes first.
// d saturates like sleep_for's: beyond 292 years it never passes.
template <class T>
task<T> with_timeout(task<T> t, duration_ns d) {
  auto r = co_await when_any(std::move(t), detail::sleep_task(d.ns));
  if (r.index() == 0) co_return std::get<0>(std::move(r));
  // The timer "won" only because the caller was cancelled: not a timeout.
  if (r.cancelled) co_return fail(std::errc::operation_canceled);
  if (!std::get<1>(r)) co_return fail(std::get<1>(r).error());  // the caller was cancelled
  co_return fail(std::errc::timed_out);
}

// Same for a single awaitable operation (e.g. file.read_at(...)). A timer
// and a cancel, not an io_uring link timeout: the kernel's costs more CPU per
// op that finishes in time (docs/performance.md, "with_timeout").
template <class A>
  requires requires(A a) { a.await_resume(); }
task<detail::await_result_t<A>> with_timeout(A a, duration_ns d) {
  return with_timeout(detail::as_task(std::move(a)), d);
}

}  // namespace coil
