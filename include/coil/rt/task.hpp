#pragma once
// task<T>: a lazy coroutine. Nothing runs until it is awaited, spawned or
// handed to block_on; completion resumes the awaiter by symmetric transfer, so
// chains of tasks use no stack. Frames come from the recycling allocator.
#include <coroutine>
#include <cstdlib>
#if __cpp_exceptions
#include <exception>
#endif
#include <optional>
#include <type_traits>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/intrusive_list.hpp"
#include "coil/rt/frame_alloc.hpp"
#include "coil/rt/stop.hpp"

namespace coil {

template <class T = void>
class task;

namespace detail {

// A coroutine waiting in the runtime's ready queue.
struct ready_node : list_hook {
  std::coroutine_handle<> handle;
};

struct promise_base {
  // Decides where control goes when the task finishes; set by whoever runs the
  // task without awaiting it directly (spawn, when_all, when_any).
  using done_fn = std::coroutine_handle<> (*)(promise_base&) noexcept;

  std::coroutine_handle<> continuation;
  stop_source* stop = nullptr;  // cancellation reaching this task's operations
  done_fn on_done = nullptr;
  void* done_ctx = nullptr;
  bool started = false;
  bool finished = false;

  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      promise_base& p = h.promise();
      p.finished = true;
      if (p.on_done != nullptr) return p.on_done(p);
      if (p.continuation) return p.continuation;
      return std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }

  // coil's I/O path is exception-free, so nothing can catch an exception
  // that leaves a task: it is reported and fatal. Compiled in the user's code,
  // which may use exceptions though coil itself does not.
  [[noreturn]] void unhandled_exception() noexcept {
    const char* name = stop != nullptr ? stop->name() : nullptr;
#if __cpp_exceptions
    try {
      throw;
    } catch (const std::exception& e) {
      exception_escaped(e.what(), name);
    } catch (...) {
    }
#endif
    exception_escaped(nullptr, name);
  }
};

template <class T>
struct promise final : promise_base {
  std::optional<T> value;
  task<T> get_return_object() noexcept;
  // U defaults to T so that `co_return {};` builds a T from braces (an
  // empty result<void>).
  template <class U = T>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value.emplace(std::forward<U>(v));
  }
  T take() noexcept { return std::move(*value); }
};

template <>
struct promise<void> final : promise_base {
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() noexcept {}
};

// Gives the stop source of the task running a leaf awaiter, if it is a coil
// task (foreign coroutine types get none).
template <class P>
stop_source* stop_of(std::coroutine_handle<P> h) noexcept {
  if constexpr (std::is_base_of_v<promise_base, P>) {
    return h.promise().stop;
  } else {
    (void)h;
    return nullptr;
  }
}

}  // namespace detail

// Names the task the caller runs in, for runtime::dump_in_flight():
//   co_await coil::set_task_name("conn 42");
// The name belongs to the spawned task (or block_on's root, or a when_*
// child) and covers every task it awaits. Not copied: the string must outlive
// the task (a literal, or storage in the task's outermost frame). Costs
// nothing unless set; join_handle::set_task_name names a task from outside.
struct set_task_name {
  explicit set_task_name(const char* name) noexcept : name(name) {}
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    if (stop_source* s = detail::stop_of(h)) s->set_name(name);
    return false;  // never suspends
  }
  void await_resume() const noexcept {}
  const char* name;
};

template <class T>
// A lazy coroutine producing T (see the file description). Move-only;
// destroying a task that never started destroys its frame.
class [[nodiscard]] task {
 public:
  using promise_type = detail::promise<T>;
  using value_type = T;
  using handle_type = std::coroutine_handle<promise_type>;

  task() noexcept = default;
  explicit task(handle_type h) noexcept : h_(h) {}
  task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  task& operator=(task&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() { reset(); }

  // False when empty (default-constructed, moved from or released).
  bool valid() const noexcept { return static_cast<bool>(h_); }
  // True once the coroutine has finished.
  bool done() const noexcept { return h_ && h_.promise().finished; }
  // Low-level access for schedulers (runtime, when_*, task_group).
  handle_type handle() const noexcept { return h_; }
  handle_type release() noexcept { return std::exchange(h_, {}); }

  struct awaiter {
    handle_type h;
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
      h.promise().continuation = parent;
      h.promise().stop = detail::stop_of(parent);
      return h;
    }
    T await_resume() noexcept { return h.promise().take(); }
  };

  awaiter operator co_await() && noexcept {
    COIL_ASSERT(h_, "awaiting an empty task (moved from, or released)");
    COIL_ASSERT(!h_.promise().started, "task awaited twice");
    h_.promise().started = true;
    return awaiter{h_};
  }

 private:
  void reset() noexcept {
    if (h_) h_.destroy();
    h_ = {};
  }
  handle_type h_;
};

namespace detail {
template <class T>
task<T> promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}
inline task<void> promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<promise<void>>::from_promise(*this));
}

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

// when_*, block_on and block take tasks; a single operation
// (socket.recv(...), send_all(...)) becomes one here.
template <class T>
task<T> to_task(task<T>&& t) noexcept {
  return std::move(t);
}
template <class A>
  requires(!is_task_v<A>)
task<await_result_t<A>> to_task(A&& a) {
  return as_task(std::move(a));
}

}  // namespace detail

}  // namespace coil
