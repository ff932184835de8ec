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
#include <chrono>
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
#include "coil/rt/await_arg.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/task.hpp"
#include "coil/rt/waiter.hpp"

namespace coil {

// How cores::run lays out its runtimes.
struct cores_options {
  std::vector<int> cpus;         // one runtime per listed CPU; empty: every CPU in sched_getaffinity
  bool pin = true;               // pin each thread to its CPU
  // SIGINT/SIGTERM stop every core cleanly (read through a signalfd by the
  // thread that called cores::run); another one during the stop exits the
  // process at once with status 128 + signal number.
  bool handle_signals = false;
  // After every main has returned (or stop()), each core's remaining tasks
  // are cancelled and get this long to finish before they are destroyed.
  std::chrono::nanoseconds stop_grace = std::chrono::seconds(5);
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

// One cross-core call; lives in the caller's frame. The target moves fn
// into the task it runs, so a caller torn down mid-call never waits for that
// task: it posts an abandon note, and the target (which alone touches the
// call once it has it) unhooks its task, which then drops its answer. The
// caller waits only for that note to be read, and for an answer already
// posted. Every core keeps reading posts until the group is gone.
template <class Fn>
class remote_call {
 public:
  using value_type = fn_value_t<Fn>;
  using out_type = submit_result_t<value_type>;

  remote_call(runtime* target, Fn fn) noexcept : target_(target), fn_(std::move(fn)) {}
  remote_call(const remote_call&) = delete;
  remote_call& operator=(const remote_call&) = delete;
  ~remote_call() {
    if (!posted_ || delivered_.load(std::memory_order_relaxed)) return;
    // Destroyed mid-call (its task was torn down).
    abandoned_ = true;
    abandon_.run = &on_abandon;
    abandon_.owner = this;
    target_->post(abandon_);  // after go_: the target reads them in order
    home_->wait_remote_until([this] {
      return acked_.load(std::memory_order_acquire) && (unhooked_ || delivered_.load(std::memory_order_acquire));
    });
  }

  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    // A closing core (runtime_closed) sends nothing new away.
    admission a = admit(h);
    home_ = a.rt;
    if (home_ != nullptr && !home_->remote_enabled()) a.why = refusal::no_runtime;
    if (target_ == nullptr || !a.ok()) {
      out_.emplace(fail(target_ == nullptr ? std::make_error_code(std::errc::invalid_argument) : error_of(a.why)));
      return false;
    }
    resume_.handle = h;
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
  // The target's task holds the call through this (a coroutine parameter,
  // so it exists from the task's creation to its frame's end): answering,
  // or being destroyed unanswered (runtime_closed), ends it. Target thread.
  class link {
   public:
    explicit link(remote_call* c) noexcept : c_(c) {}
    link(link&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {
      if (c_ != nullptr) c_->callee_ = this;
    }
    ~link() {
      if (c_ != nullptr) answer(fail(errc::runtime_closed));
    }
    void answer(out_type v) noexcept {
      remote_call* c = std::exchange(c_, nullptr);
      if (c == nullptr) return;  // the caller is gone
      c->callee_ = nullptr;
      c->out_.emplace(std::move(v));
      c->home_->post(c->back_);
    }

   private:
    friend class remote_call;
    remote_call* c_;
  };

  static task<void> run_on_target(link to, Fn fn) {
    if constexpr (std::is_void_v<value_type>) {
      co_await fn();
      to.answer(out_type{});
    } else {
      auto v = co_await fn();
      to.answer(out_type(std::move(v)));
    }
  }
  static void on_target(remote_node& n) noexcept {
    remote_call& c = *static_cast<owned_node<remote_call>&>(n).owner;
    if (!c.target_->accepting()) {
      c.out_.emplace(fail(errc::runtime_closed));
      c.home_->post(c.back_);
      return;
    }
    c.target_->spawn(run_on_target(link(&c), std::move(c.fn_))).detach();
  }
  static void on_abandon(remote_node& n) noexcept {
    remote_call& c = *static_cast<owned_node<remote_call>&>(n).owner;
    if (c.callee_ != nullptr) {
      c.callee_->c_ = nullptr;
      c.callee_ = nullptr;
      c.unhooked_ = true;
    }
    c.acked_.store(true, std::memory_order_release);  // the last touch of c here
  }
  static void on_home(remote_node& n) noexcept {
    remote_call& c = *static_cast<owned_node<remote_call>&>(n).owner;
    const bool abandoned = c.abandoned_;
    runtime* home = c.home_;
    c.delivered_.store(true, std::memory_order_release);
    if (!abandoned) home->resume_posted(c.resume_);
  }

  owned_node<remote_call> go_;       // runs on the target core
  owned_node<remote_call> abandon_;  // runs on the target core
  owned_node<remote_call> back_;     // runs on the caller's core
  runtime* home_ = nullptr;
  runtime* target_;
  Fn fn_;
  std::optional<out_type> out_;
  ready_node resume_;       // the caller
  link* callee_ = nullptr;  // target thread: the task running fn
  bool unhooked_ = false;   // target thread, published by acked_
  std::atomic<bool> acked_{false};
  std::atomic<bool> delivered_{false};
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

  // This thread's core index and the number of cores. Inside cores::run:
  // the group's. On a thread with a plain runtime (no cores::run): 0 and 1,
  // so per-core code (sharded<T>) also runs single-core. Elsewhere: 0 and 0.
  static unsigned current() noexcept;
  static unsigned count() noexcept;

  // Thread-safe, inside cores::run: cancels every core's tasks (main and
  // spawned); their pending operations complete with operation_canceled.
  static void stop() noexcept;

  // Runs fn(args...) (fn returns task<T>) on `core` and awaits the result
  // here, as result<T> (T itself when it is a result). fn and args are
  // moved to the target, which creates the task there; pass state as args
  // so the lambda needs no captures (rt/await_arg.hpp):
  //   auto v = co_await cores::submit_to(owner, [](std::string k) -> task<int> {...}, key);
  // Fails with runtime_closed once the target or this core is stopping,
  // operation_canceled if the caller is already cancelled, invalid_argument
  // for a bad core. Cancelling the caller mid-call does not interrupt fn.
  template <class Fn, class... Args>
  static auto submit_to(unsigned core, Fn&& fn, Args&&... args) {
    static_assert(detail::await_arg_ok<Fn&&> && (detail::await_arg_ok<Args&&> && ...), COIL_AWAIT_ARG_MESSAGE);
    return submit_call(core, detail::bind_call(std::forward<Fn>(fn), std::forward<Args>(args)...));
  }

  // Fire-and-forget: runs fn(args...) (returning a task) on `core`; its value is
  // dropped. `co_await spawn_on(...)` gives result<void> once the message is
  // on its way: at most cores_options::spawn_slots per (this core, target)
  // are in flight, beyond that the caller waits (FIFO) for the target to
  // take one. Fails with runtime_closed once the group stops or winds down,
  // operation_canceled if the caller is cancelled while waiting, and
  // invalid_argument for a bad core. No allocation per message unless fn is
  // larger than 64 bytes. Like a detached task, work not yet started when
  // every core's main has returned is dropped.
  template <class Fn, class... Args>
  static auto spawn_on(unsigned core, Fn&& fn, Args&&... args) noexcept {
    static_assert(detail::await_arg_ok<Fn&&> && (detail::await_arg_ok<Args&&> && ...), COIL_AWAIT_ARG_MESSAGE);
    using bound = detail::bound_t<Fn&&, Args&&...>;
    return detail::spawn_on_awaiter<bound>(core, detail::bind_call(std::forward<Fn>(fn), std::forward<Args>(args)...));
  }

 private:
  template <class Fn>
  static task<detail::submit_result_t<detail::fn_value_t<Fn>>> submit_call(unsigned core, Fn fn) {
    detail::core_group* g = detail::current_group();
    runtime* target = nullptr;
    if (g != nullptr && core < detail::group_size(*g)) target = detail::group_runtime(*g, core);
    detail::remote_call<Fn> call(target, std::move(fn));
    co_return co_await call;
  }
};

}  // namespace coil
