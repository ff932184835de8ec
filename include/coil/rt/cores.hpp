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
#include "coil/sync/waiter.hpp"

namespace coil {

// How cores::run lays out its runtimes.
struct cores_options {
  std::vector<int> cpus;         // one runtime per listed CPU; empty: every CPU in sched_getaffinity
  bool pin = true;               // pin each thread to its CPU
  bool handle_signals = false;   // SIGINT/SIGTERM stop every core cleanly (via signalfd)
  runtime_options runtime{};     // per-core options (remote posting is always on)
  // spawn_on: messages in flight per (source, target) core pair; a sender
  // beyond it waits for the target to take one.
  unsigned spawn_slots = 128;
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

// ---- spawn_on ------------------------------------------------------------------
// Each (source, target) pair owns a fixed pool of slots, made on first use.
// A slot carries one callable to the target (inline when it fits, else in
// one heap box); the target moves it into a new task's frame and hands the
// slot back through a lock-free stack. A source out of slots parks its
// senders and arms `waiting`; the target's next hand-back then posts one
// notify node to the source (Dekker: push-then-load vs store-then-load).
struct spawn_pair;

struct spawn_slot : remote_node {
  static constexpr std::size_t inline_bytes = 64;
  spawn_pair* pair = nullptr;
  spawn_slot* next_free = nullptr;
  alignas(std::max_align_t) unsigned char storage[inline_bytes];
};

class spawn_wait;

struct spawn_pair {
  spawn_pair(core_group& g, unsigned source, unsigned target, unsigned slots);
  // Source thread.
  spawn_slot* take() noexcept;
  void serve() noexcept;      // grants free slots to parked senders, FIFO
  void give(spawn_slot& s) noexcept { s.next_free = free; free = &s; }
  void quiesce() noexcept;    // before the source runtime goes: no notify in flight
  // Target thread.
  void hand_back(spawn_slot& s) noexcept;

  core_group* group;
  runtime* source_rt;
  runtime* target_rt;
  unsigned target;
  std::unique_ptr<spawn_slot[]> slots;
  // Source thread only.
  spawn_slot* free = nullptr;
  waiter_queue<spawn_wait> waiters;
  bool armed = false;    // a notify is due (waiting set, or the node posted)
  bool closing = false;  // the source is going away: never arm again
  // Shared.
  std::atomic<spawn_slot*> returned{nullptr};
  std::atomic<bool> waiting{false};
  std::atomic<bool> notified{false};
  owned_node<spawn_pair> notify;
};

// The calling core's pair toward `target`, made on first use (nullptr
// outside cores::run or for a bad index).
spawn_pair* pair_to(unsigned target) noexcept;
// Target side: is the group still taking new work (not stopping, not done)?
bool group_accepting(core_group& g) noexcept;

class spawn_wait : public waiter {
 public:
  spawn_wait() noexcept = default;
  spawn_wait(spawn_wait&& o) noexcept : waiter(std::move(o)) {}
  ~spawn_wait() {
    // Granted a slot but destroyed before using it: the next sender gets it.
    if (status_ == status::scheduled && granted_ != nullptr) {
      pair_->give(*granted_);
      pair_->serve();
    }
  }

 protected:
  friend struct spawn_pair;
  spawn_pair* pair_ = nullptr;
  spawn_slot* granted_ = nullptr;
};

template <class Fn>
class [[nodiscard]] spawn_on_awaiter : public spawn_wait {
 public:
  spawn_on_awaiter(unsigned core, Fn fn) noexcept : core_(core), fn_(std::move(fn)) {}
  spawn_on_awaiter(spawn_on_awaiter&&) noexcept = default;

  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    if (!begin(h)) return false;
    pair_ = pair_to(core_);
    if (pair_ == nullptr) {
      error_ = runtime::current() != nullptr && current_group() != nullptr
                   ? std::make_error_code(std::errc::invalid_argument)
                   : make_error_code(errc::no_runtime);
      return false;
    }
    if (!group_accepting(*pair_->group)) {
      error_ = errc::runtime_closed;
      return false;
    }
    if (pair_->waiters.empty()) {
      granted_ = pair_->take();
      if (granted_ != nullptr) return false;
    }
    park(pair_->waiters);
    pair_->serve();  // arms the notify
    return true;
  }
  result<void> await_resume() noexcept {
    status_ = status::done;
    if (error_) return fail(error_);
    send(*std::exchange(granted_, nullptr));
    return {};
  }

 private:
  static task<void> run(Fn fn) { (void)co_await fn(); }
  static Fn* stored(spawn_slot& s) noexcept {
    if constexpr (fits()) {
      return std::launder(reinterpret_cast<Fn*>(s.storage));
    } else {
      return *std::launder(reinterpret_cast<Fn**>(s.storage));
    }
  }
  static constexpr bool fits() noexcept {
    return sizeof(Fn) <= spawn_slot::inline_bytes && alignof(Fn) <= alignof(std::max_align_t);
  }
  static void destroy(spawn_slot& s) noexcept {
    if constexpr (fits()) {
      stored(s)->~Fn();
    } else {
      delete stored(s);
    }
  }
  static void launch(remote_node& n) noexcept {
    auto& s = static_cast<spawn_slot&>(n);
    runtime* rt = runtime::current();
    if (rt->accepting() && group_accepting(*s.pair->group)) rt->spawn(run(std::move(*stored(s)))).detach();
    destroy(s);
    s.pair->hand_back(s);
  }
  void send(spawn_slot& s) noexcept {
    if constexpr (fits()) {
      ::new (static_cast<void*>(s.storage)) Fn(std::move(fn_));
    } else {
      ::new (static_cast<void*>(s.storage)) Fn*(new Fn(std::move(fn_)));
    }
    s.run = &launch;
    s.pair->target_rt->post(s);
  }

  unsigned core_;
  Fn fn_;
};

}  // namespace detail

// Thread-per-core: the launcher and cross-core calls (see the file description).
class cores {
 public:
  // Each core's main task, given the core's index.
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

  // Fire-and-forget: runs fn() (returning a task) on `core`; its value is
  // dropped. `co_await spawn_on(...)` gives result<void> once the message is
  // on its way: at most cores_options::spawn_slots per (this core, target)
  // are in flight, beyond that the caller waits (FIFO) for the target to
  // take one. Fails with runtime_closed once the group stops or winds down,
  // operation_canceled if the caller is cancelled while waiting, and
  // invalid_argument for a bad core. No allocation per message unless fn is
  // larger than 64 bytes. Like a detached task, work not yet started when
  // every core's main has returned is dropped.
  template <class Fn>
  static detail::spawn_on_awaiter<Fn> spawn_on(unsigned core, Fn fn) noexcept {
    return detail::spawn_on_awaiter<Fn>(core, std::move(fn));
  }
};

}  // namespace coil
