#pragma once
// Running tasks concurrently within one task.
//   when_all(a, b, ...)  -> tuple of every result, after all finished.
//                           a, b: tasks or single operations (recv, send_all...).
//   when_any(a, b, ...)  -> when_any_result (a variant) holding the first
//                           finisher's result; the others are cancelled and
//                           awaited before returning, so nothing they own
//                           outlives the call. .cancelled: the caller was
//                           cancelled before any child finished.
//   try_when_all(a, b)   -> result<tuple of values>: the first error cancels
//                           the others, waits for them, and is returned.
//   with_timeout(x, d)   -> x's result, or std::errc::timed_out.
// when_all, when_any and try_when_all also take a std::vector<task<T>>
// (results in a vector; when_any gives the winner's index).
// A task<void> contributes std::monostate (a tuple or variant cannot hold
// void). Children share the caller's cancellation: stopping the caller stops
// them.
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "coil/core/result.hpp"
#include "coil/core/transfer.hpp"
#include "coil/rt/stop.hpp"
#include "coil/rt/task.hpp"
#include "coil/rt/time.hpp"

namespace coil {
namespace detail {

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

// What try_when_all takes: a child whose value says success or an error.
template <class R>
inline constexpr bool fallible_v = is_result_v<R> || std::is_same_v<R, transfer_result>;

// One child's bookkeeping: its stop source, and what its end means.
struct when_slot {
  when_state* state = nullptr;
  std::size_t index = 0;
  // try_when_all: did the child fail (its result holds an error)?
  bool (*failed)(promise_base&) noexcept = nullptr;
  stop_source source;
};

// What decides the race: when_all waits for everyone, when_any for the first
// finisher, try_when_all for the first failure.
enum class when_mode : uint8_t { all, any, first_error };

struct when_state : stop_callback {
  std::size_t remaining = 0;
  std::size_t winner = ~std::size_t{0};
  when_mode mode = when_mode::all;
  bool parent_stopped = false;
  bool won_after_stop = false;  // the winner finished after the caller's stop request
  std::coroutine_handle<> parent;
  when_slot* slots = nullptr;
  std::size_t count = 0;

  void stop_all_except(std::size_t keep) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
      if (i != keep) slots[i].source.request_stop();
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
    const bool decides = s.mode == when_mode::any || (s.mode == when_mode::first_error && slot->failed(p));
    if (decides && s.winner == ~std::size_t{0}) {
      s.winner = slot->index;
      s.won_after_stop = s.parent_stopped;
      s.stop_all_except(slot->index);
    }
    if (--s.remaining == 0) return s.parent;
    return std::noop_coroutine();
  }

  // Starts every child (the caller's await_suspend); false if they all
  // finished at once, so the caller goes on without suspending.
  template <class P, class StartAll>
  bool launch(std::coroutine_handle<P> p, StartAll start_all) noexcept {
    parent = p;
    remaining = count + 1;  // +1: no child may resume the parent while we start them
    if (stop_source* ps = stop_of(p)) {
      fn = &when_state::on_parent_stop;
      ps->add(*this);
    }
    start_all();
    return --remaining != 0;
  }

  template <class T>
  void start_child(task<T>& t, std::size_t i) noexcept {
    COIL_ASSERT(t.valid() && !t.handle().promise().started, "when_all/when_any given an empty or started task");
    auto& p = t.handle().promise();
    p.started = true;
    when_slot& slot = slots[i];
    slot.state = this;
    slot.index = i;
    if constexpr (fallible_v<T>) slot.failed = &child_failed<T>;
    p.stop = &slot.source;
    p.done_ctx = &slot;
    p.on_done = &when_state::child_done;
    t.handle().resume();
  }

  template <class T>
  static bool child_failed(promise_base& p) noexcept {
    return !*static_cast<promise<T>&>(p).value;
  }
};

template <class... Ts>
struct when_awaiter {
  static constexpr std::size_t n = sizeof...(Ts);
  std::tuple<task<Ts>...> tasks;
  when_slot slots[n];
  when_state state;

  explicit when_awaiter(when_mode mode, task<Ts>... ts) : tasks(std::move(ts)...) {
    state.mode = mode;
    state.slots = slots;
    state.count = n;
  }

  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> parent) noexcept {
    return state.launch(parent, [this] {
      [this]<std::size_t... I>(std::index_sequence<I...>) {
        (state.start_child(std::get<I>(tasks), I), ...);
      }(std::index_sequence_for<Ts...>{});
    });
  }
  void await_resume() noexcept { static_cast<stop_callback&>(state).unlink(); }
};

// The same over a runtime-sized range: one allocation for every child's slot.
template <class T>
struct when_range_awaiter {
  std::vector<task<T>> tasks;
  std::unique_ptr<when_slot[]> slots;
  when_state state;

  when_range_awaiter(when_mode mode, std::vector<task<T>> ts)
      : tasks(std::move(ts)), slots(std::make_unique<when_slot[]>(tasks.size())) {
    state.mode = mode;
    state.slots = slots.get();
    state.count = tasks.size();
  }

  bool await_ready() const noexcept { return tasks.empty(); }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> parent) noexcept {
    return state.launch(parent, [this] {
      for (std::size_t i = 0; i < tasks.size(); ++i) state.start_child(tasks[i], i);
    });
  }
  void await_resume() noexcept { static_cast<stop_callback&>(state).unlink(); }
};

// try_when_all's value for a child giving result<X>: X, or std::monostate
// for result<void>; for a transfer_result (send_all, recv_exact): the bytes.
template <class R>
struct ok_value {
  using type = non_void_t<typename R::value_type>;
};
template <>
struct ok_value<transfer_result> {
  using type = std::size_t;
};
template <class R>
using ok_value_t = typename ok_value<R>::type;

template <class R>
ok_value_t<R> take_ok(R&& r) noexcept {
  if constexpr (std::is_same_v<R, transfer_result>) {
    return r.bytes_done();
  } else if constexpr (std::is_void_v<typename R::value_type>) {
    return {};
  } else {
    return std::move(*r);
  }
}

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
  detail::when_awaiter<Ts...> aw(detail::when_mode::all, std::move(ts)...);
  co_await aw;
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
  detail::when_awaiter<Ts...> aw(detail::when_mode::any, std::move(ts)...);
  co_await aw;
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

// Runs every task in ts concurrently; their results in ts's order once all
// finished. An empty ts gives an empty vector at once.
template <class T>
task<std::vector<detail::non_void_t<T>>> when_all(std::vector<task<T>> ts) {
  detail::when_range_awaiter<T> aw(detail::when_mode::all, std::move(ts));
  co_await aw;
  std::vector<detail::non_void_t<T>> out;
  out.reserve(aw.tasks.size());
  for (auto& t : aw.tasks) out.push_back(detail::take_non_void(t));
  co_return out;
}

// What when_any over a vector gives: the first finisher's index in the
// vector and its result; .cancelled as in when_any_result.
template <class T>
struct when_any_pick {
  std::size_t index = 0;
  T value;
  bool cancelled = false;
};

// Runs every task in ts concurrently; the first finisher's index and
// result, after the others were cancelled and awaited. An empty ts has no
// winner: invalid_argument.
template <class T>
task<result<when_any_pick<detail::non_void_t<T>>>> when_any(std::vector<task<T>> ts) {
  if (ts.empty()) co_return fail(std::errc::invalid_argument);
  detail::when_range_awaiter<T> aw(detail::when_mode::any, std::move(ts));
  co_await aw;
  const std::size_t w = aw.state.winner;
  co_return when_any_pick<detail::non_void_t<T>>{w, detail::take_non_void(aw.tasks[w]), aw.state.won_after_stop};
}

// Fail-fast join (tokio's try_join!): runs every task concurrently, each
// giving a result<>. The first error stops the others (their operations
// complete with operation_canceled), waits for them, and is returned;
// otherwise a tuple of the values, a result<void> child contributing
// std::monostate so positions stay put (a transfer_result child, such as
// send_all: its byte count). Cancelling the caller cancels all
// and gives operation_canceled.
template <class... Rs>
task<result<std::tuple<detail::ok_value_t<Rs>...>>> try_when_all(task<Rs>... ts) {
  static_assert(sizeof...(Rs) > 0, "try_when_all needs at least one task");
  static_assert((detail::fallible_v<Rs> && ...), "try_when_all takes tasks giving coil::result<...> (or transfer_result)");
  detail::when_awaiter<Rs...> aw(detail::when_mode::first_error, std::move(ts)...);
  co_await aw;
  if (aw.state.winner != ~std::size_t{0}) {
    std::error_code ec;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((aw.state.winner == I ? (ec = std::get<I>(aw.tasks).handle().promise().value->error(), 0) : 0), ...);
    }(std::index_sequence_for<Rs...>{});
    co_return fail(ec);
  }
  co_return std::apply(
      [](auto&... t) {
        return std::tuple<detail::ok_value_t<Rs>...>(detail::take_ok(t.handle().promise().take())...);
      },
      aw.tasks);
}

// The same over operations as well as tasks.
template <class... Xs>
  requires(sizeof...(Xs) > 0 && !(detail::is_task_v<Xs> && ...))
auto try_when_all(Xs... xs) {
  return try_when_all(detail::to_task(std::move(xs))...);
}

// Fail-fast join over a vector: the values in ts's order, or the first
// error (see above). An empty ts succeeds with an empty vector.
template <class R>
task<result<std::vector<detail::ok_value_t<R>>>> try_when_all(std::vector<task<R>> ts) {
  static_assert(detail::fallible_v<R>, "try_when_all takes tasks giving coil::result<...> (or transfer_result)");
  detail::when_range_awaiter<R> aw(detail::when_mode::first_error, std::move(ts));
  co_await aw;
  if (aw.state.winner != ~std::size_t{0}) co_return fail(aw.tasks[aw.state.winner].handle().promise().value->error());
  std::vector<detail::ok_value_t<R>> out;
  out.reserve(aw.tasks.size());
  for (auto& t : aw.tasks) out.push_back(detail::take_ok(t.handle().promise().take()));
  co_return out;
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
