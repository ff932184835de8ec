#pragma once
// Thread-per-core: one runtime per CPU, each on its own pinned thread, no
// shared mutable state; cores talk by posting work to each other.
//
//   coil::cores_options opts;                 // default: every allowed CPU
//   auto r = coil::cores::run(opts, [](unsigned core) -> coil::task<coil::result<void>> {
//     auto v = co_await coil::cores::submit_to(0, [] -> coil::task<int> { co_return 42; });
//     ...
//   });
//
// Messages are intrusive nodes living in the awaiting coroutine's frame: a
// cross-core call allocates nothing, and the number of messages in flight is
// bounded by the number of waiting tasks (each waits for its answer), which
// is the backpressure. A parked core is woken by one eventfd write; posting
// to an awake core makes no system call.
#include <signal.h>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "coil/core/assert.hpp"
#include "coil/core/error.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/task.hpp"

namespace coil {

struct cores_options {
  std::vector<int> cpus;         // one runtime per listed CPU; empty: every CPU in sched_getaffinity
  bool pin = true;               // pin each thread to its CPU
  bool handle_signals = false;   // SIGINT/SIGTERM stop every core cleanly (via signalfd)
  runtime_options runtime{};     // per-core options (remote posting is always on)
};

namespace detail {
class core_group;

// What submit_to(core, fn) gives back: fn's result type, wrapped in result<>
// unless it already is one (a closed target answers runtime_closed).
template <class T>
using submit_result_t = std::conditional_t<is_result_v<T>, T, result<T>>;

// A remote node that knows its owner.
template <class Owner>
struct owned_node : remote_node {
  Owner* owner = nullptr;
};

template <class Fn>
using fn_value_t = typename std::invoke_result_t<Fn&>::value_type;

// Accessors for the calling thread's group (nullptr outside cores::run).
core_group* current_group() noexcept;
runtime* group_runtime(core_group& g, unsigned core) noexcept;
unsigned group_size(const core_group& g) noexcept;

// One cross-core call; lives in the caller's frame.
template <class Fn>
class remote_call {
 public:
  using value_type = fn_value_t<Fn>;
  using out_type = submit_result_t<value_type>;

  remote_call(runtime* target, Fn fn) noexcept : target_(target), fn_(std::move(fn)) {}
  remote_call(const remote_call&) = delete;
  remote_call& operator=(const remote_call&) = delete;
  ~remote_call() {
    // Destroyed mid-call (its task was torn down): the answer still arrives
    // into this object, so wait for it first.
    if (posted_ && !answered_.load(std::memory_order_acquire)) {
      abandoned_ = true;
      home_->wait_remote(answered_);
    }
  }

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    home_ = runtime::current();
    if (home_ == nullptr || !home_->remote_enabled() || target_ == nullptr) {
      out_.emplace(fail(target_ == nullptr ? std::make_error_code(std::errc::invalid_argument)
                                           : make_error_code(errc::no_runtime)));
      return false;
    }
    waiter_ = h;
    go_.run = &on_target;
    go_.owner = this;
    back_.run = &on_home;
    back_.owner = this;
    posted_ = true;
    target_->post(go_);
    return true;
  }
  out_type await_resume() noexcept { return std::move(*out_); }

 private:
  static task<void> run_on_target(remote_call* c) {
    if constexpr (std::is_void_v<value_type>) {
      co_await c->fn_();
      c->out_.emplace();
    } else {
      auto v = co_await c->fn_();
      c->out_.emplace(std::move(v));
    }
    c->home_->post(c->back_);
  }
  static void on_target(remote_node& n) noexcept {
    remote_call& c = *static_cast<owned_node<remote_call>&>(n).owner;
    if (!c.target_->accepting()) {
      c.out_.emplace(fail(errc::runtime_closed));
      c.home_->post(c.back_);
      return;
    }
    c.target_->spawn(run_on_target(&c)).detach();
  }
  static void on_home(remote_node& n) noexcept {
    remote_call& c = *static_cast<owned_node<remote_call>&>(n).owner;
    const bool abandoned = c.abandoned_;
    std::coroutine_handle<> w = c.waiter_;
    c.answered_.store(true, std::memory_order_release);
    if (!abandoned) w.resume();
  }

  owned_node<remote_call> go_;    // runs on the target core
  owned_node<remote_call> back_;  // runs on the caller's core
  runtime* home_ = nullptr;
  runtime* target_;
  Fn fn_;
  std::optional<out_type> out_;
  std::coroutine_handle<> waiter_;
  std::atomic<bool> answered_{false};
  bool posted_ = false;
  bool abandoned_ = false;
};

}  // namespace detail

class cores {
 public:
  using main_fn = std::function<task<result<void>>(unsigned core)>;

  // Starts one runtime per CPU, runs main(core) on each and returns when every
  // core's main task has finished: the first error any of them returned (or
  // a runtime that could not start), else success. Every core keeps serving
  // cross-core calls until all mains are done.
  static result<void> run(const cores_options& opts, main_fn main);

  // Inside cores::run: this thread's core index and the number of cores.
  static unsigned current() noexcept;
  static unsigned count() noexcept;

  // Thread-safe, inside cores::run: cancels every core's tasks (main and
  // spawned); their pending operations complete with operation_canceled.
  static void stop() noexcept;

  // Runs fn() (a callable returning task<T>) on `core` and awaits the result
  // here. The callable is moved to the target, which creates the task there.
  template <class Fn>
  static task<detail::submit_result_t<detail::fn_value_t<Fn>>> submit_to(unsigned core, Fn fn) {
    detail::core_group* g = detail::current_group();
    runtime* target = nullptr;
    if (g != nullptr && core < detail::group_size(*g)) target = detail::group_runtime(*g, core);
    detail::remote_call<Fn> call(target, std::move(fn));
    co_return co_await call;
  }
};

}  // namespace coil
