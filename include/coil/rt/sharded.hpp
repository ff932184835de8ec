#pragma once
// sharded<T>: one T per core (Seastar's sharded), each made, used and
// destroyed on its own core, so T needs no locks.
//
//   coil::sharded<cache> caches;                        // before cores::run
//   cores::run(opts, [&](unsigned core) -> task<result<void>> {
//     if (core != 0) co_return {};                      // the cores serve calls
//     if (auto r = co_await caches.start(1024); !r) co_return r;  // cache(1024) on each core
//     auto v = co_await caches.invoke_on(2, [](cache& c, std::string k) { return c.get(k); }, key);
//     co_await caches.invoke_on_all([](cache& c) -> task<void> { co_await c.serve(); });
//     co_return co_await caches.stop();                 // before the cores end
//   });
//
// Lifecycle: start() from one task (on any core) constructs T(args...) on
// every core and completes when all exist; invoke_on / invoke_on_all /
// local() are valid from then until stop(). stop() calls T::stop() (when T
// has one returning a task) on every core, waits for the calls still running
// there, and destroys each T on its own core. Call it before the cores end
// (before the starting core's main returns); a call made after stop()
// began, or before start(), gives runtime_closed, never a crash. A T that
// stop() could not reach is destroyed by ~sharded, on its thread.
//
// On a plain runtime (no cores::run) there is one core: cores::count() is
// 1 there, so the same code serves a `--cores 1` path without cores::run.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "coil/core/error.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/await_arg.hpp"
#include "coil/rt/cores.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/shield.hpp"
#include "coil/rt/task.hpp"
#include "coil/rt/when.hpp"
#include "coil/sync/event.hpp"

namespace coil {
namespace detail {

// What fn(args...) gives once awaited: a task's value, or the plain value.
template <class R>
struct awaited_value {
  using type = R;
};
template <class V>
struct awaited_value<task<V>> {
  using type = V;
};

}  // namespace detail

template <class T>
// One T per core (see the file description).
class sharded {
 public:
  // What invoke_on(core, fn, args...) gives: fn(T&, args...)'s value (fn may
  // return a task), wrapped in result<> unless it is one.
  template <class Fn, class... Args>
  using invoke_result_t = detail::submit_result_t<
      typename detail::awaited_value<std::invoke_result_t<Fn&, T&, Args&...>>::type>;

  sharded() noexcept = default;
  sharded(const sharded&) = delete;
  sharded& operator=(const sharded&) = delete;
  ~sharded() = default;  // shards stop() did not reach go with shards_

  // Constructs T(args...) on every core (args copied to each). Inside
  // cores::run or on a plain runtime; no_runtime elsewhere, invalid_argument
  // if started before. Cancelling the caller does not interrupt it.
  template <class... Args>
  task<result<void>> start(Args... args) {
    const unsigned n = cores::count();
    if (n == 0) co_return fail(errc::no_runtime);
    state expected = state::idle;  // one start wins, even from two cores at once
    if (!state_.compare_exchange_strong(expected, state::starting, std::memory_order_acq_rel)) {
      co_return fail(std::errc::invalid_argument);
    }
    shards_ = std::make_unique<shard[]>(n);
    count_ = n;
    state_.store(state::running, std::memory_order_release);
    std::vector<task<result<void>>> calls;
    calls.reserve(n);
    for (unsigned c = 0; c < n; ++c) calls.push_back(on_core(c, &construct_here<Args...>, this, args...));
    auto all = co_await shield(when_all(std::move(calls)));
    co_return first_error(all);
  }

  // Ends every core's T on its own core (see the file description): first
  // error in core order. Does nothing if never started or already stopped.
  // Cancelling the caller does not interrupt it.
  task<result<void>> stop() {
    state expected = state::running;
    if (!state_.compare_exchange_strong(expected, state::stopping, std::memory_order_acq_rel)) co_return result<void>{};
    std::vector<task<result<void>>> calls;
    calls.reserve(count_);
    for (unsigned c = 0; c < count_; ++c) calls.push_back(on_core(c, &destroy_here, this));
    auto all = co_await shield(when_all(std::move(calls)));
    auto r = first_error(all);
    state_.store(state::stopped, std::memory_order_release);
    co_return r;
  }

  // Runs fn(T&, args...) on `core` with that core's T, and awaits the
  // result here (see invoke_result_t). fn may return a task. Pass state as
  // args (the lambda captures nothing; rt/await_arg.hpp). Fails with
  // runtime_closed before start() or once stop() began, invalid_argument for
  // a bad core, and as cores::submit_to does. Cancelling the caller does not
  // interrupt fn; stop() waits for it.
  template <class Fn, class... Args>
  auto invoke_on(unsigned core, Fn&& fn, Args&&... args) {
    static_assert(detail::await_arg_ok<Fn&&> && (detail::await_arg_ok<Args&&> && ...), COIL_AWAIT_ARG_MESSAGE);
    return invoke_impl<detail::taken_t<Fn>, detail::taken_t<Args>...>(
        core, detail::take_arg(std::forward<Fn>(fn)), detail::take_arg(std::forward<Args>(args))...);
  }

  // Runs fn(T&, args...) on every core at once (fn and args copied to each)
  // and waits for all: the first error in core order, values dropped.
  template <class Fn, class... Args>
  auto invoke_on_all(Fn&& fn, Args&&... args) {
    static_assert(detail::await_arg_ok<Fn&&> && (detail::await_arg_ok<Args&&> && ...), COIL_AWAIT_ARG_MESSAGE);
    return invoke_all_impl<detail::taken_t<Fn>, detail::taken_t<Args>...>(
        detail::take_arg(std::forward<Fn>(fn)), detail::take_arg(std::forward<Args>(args))...);
  }

  // This core's T, on a core of the group that started it, between start()
  // and stop() (reached through start's caller or invoke_on; asserts else).
  T& local() noexcept {
    T* t = here();
    COIL_ASSERT(t != nullptr, "sharded::local() outside start()..stop() or off the starting group's cores");
    return *t;
  }

  // The number of shards (cores::count() when started; 0 before).
  unsigned size() const noexcept {
    const state st = state_.load(std::memory_order_acquire);
    return st == state::idle || st == state::starting ? 0 : count_;
  }

 private:
  enum class state : uint8_t { idle, starting, running, stopping, stopped };

  // One core's T and the calls using it; touched only on that core.
  struct alignas(64) shard {
    std::unique_ptr<T> object;
    unsigned users = 0;
    bool closing = false;
    event idle;
  };

  // Leaves a shard when a call ends; the last one out lets stop() go on.
  class user {
   public:
    explicit user(shard& s) noexcept : s_(&s) { ++s.users; }
    user(const user&) = delete;
    user& operator=(const user&) = delete;
    ~user() {
      if (--s_->users == 0 && s_->closing) s_->idle.set();
    }

   private:
    shard* s_;
  };

  shard* here_shard() noexcept {
    const state st = state_.load(std::memory_order_acquire);
    if (st == state::idle || st == state::starting || cores::current() >= count_) return nullptr;
    return &shards_[cores::current()];
  }
  T* here() noexcept {
    shard* s = here_shard();
    return s != nullptr && !s->closing ? s->object.get() : nullptr;
  }

  template <class R>
  static result<void> first_error(const std::vector<R>& rs) noexcept {
    for (const auto& r : rs) {
      if (!r) return fail(r.error());
    }
    return {};
  }

  // Runs f(a...) (a task) on `core`: through cores::submit_to in a group,
  // as a task spawned on this runtime (one core) otherwise.
  template <class F, class... A>
  static auto on_core(unsigned core, F f, A... a)
      -> task<detail::submit_result_t<typename std::invoke_result_t<F&, A&...>::value_type>> {
    using value = typename std::invoke_result_t<F&, A&...>::value_type;
    if (detail::current_group() != nullptr) {
      auto call = cores::submit_to(core, f, coil::moved(a)...);
      co_return co_await std::move(call);
    }
    runtime* rt = runtime::current();
    if (rt == nullptr) co_return fail(errc::no_runtime);
    if (core != 0) co_return fail(std::errc::invalid_argument);
    if (!rt->accepting()) co_return fail(errc::runtime_closed);
    auto h = rt->spawn(std::invoke(f, std::move(a)...));
    if constexpr (std::is_void_v<value>) {
      co_await h;
      co_return result<void>{};
    } else {
      co_return co_await h;
    }
  }

  template <class Fn, class... Args>
  task<result<void>> invoke_all_impl(Fn fn, Args... args) {
    using out = invoke_result_t<Fn, Args...>;
    if (state_.load(std::memory_order_acquire) != state::running) co_return fail(errc::runtime_closed);
    std::vector<task<out>> calls;
    calls.reserve(count_);
    for (unsigned c = 0; c < count_; ++c) calls.push_back(invoke_impl<Fn, Args...>(c, fn, args...));
    auto all = co_await when_all(std::move(calls));
    co_return first_error(all);
  }

  template <class Fn, class... Args>
  task<invoke_result_t<Fn, Args...>> invoke_impl(unsigned core, Fn fn, Args... args) {
    if (state_.load(std::memory_order_acquire) != state::running) co_return fail(errc::runtime_closed);
    if (core >= count_) co_return fail(std::errc::invalid_argument);
    // Made before the co_await: no temporaries in its operand (rt/await_arg.hpp).
    auto call = on_core(core, &call_here<Fn, Args...>, this, std::move(fn), std::move(args)...);
    co_return co_await std::move(call);
  }

  // On the target core: fn with this core's T, which stays alive meanwhile.
  template <class Fn, class... Args>
  static task<invoke_result_t<Fn, Args...>> call_here(sharded* self, Fn fn, Args... args) {
    using r_type = std::invoke_result_t<Fn&, T&, Args&...>;
    T* t = self->here();
    if (t == nullptr) co_return fail(errc::runtime_closed);
    user in(*self->here_shard());
    if constexpr (detail::is_task_v<r_type>) {
      if constexpr (std::is_void_v<typename r_type::value_type>) {
        co_await std::invoke(fn, *t, args...);
        co_return result<void>{};
      } else {
        co_return co_await std::invoke(fn, *t, args...);
      }
    } else if constexpr (std::is_void_v<r_type>) {
      std::invoke(fn, *t, args...);
      co_return result<void>{};
    } else {
      co_return std::invoke(fn, *t, args...);
    }
  }

  template <class... Args>
  static task<result<void>> construct_here(sharded* self, Args... args) {
    self->shards_[cores::current()].object = std::make_unique<T>(std::move(args)...);
    co_return result<void>{};
  }

  static task<result<void>> destroy_here(sharded* self) { co_return co_await shield(destroy_body(self)); }
  static task<result<void>> destroy_body(sharded* self) {
    shard& s = self->shards_[cores::current()];
    if (!s.object) co_return result<void>{};
    s.closing = true;  // new calls here fail with runtime_closed
    if constexpr (requires(T& t) { requires detail::is_task_v<decltype(t.stop())>; }) {
      co_await s.object->stop();
    }
    while (s.users > 0) {
      s.idle.reset();
      (void)co_await s.idle.wait();
    }
    s.object.reset();
    co_return result<void>{};
  }

  std::atomic<state> state_{state::idle};
  unsigned count_ = 0;
  std::unique_ptr<shard[]> shards_;
};

}  // namespace coil
