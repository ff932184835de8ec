#pragma once
// The per-thread runtime: one driver (io_uring or epoll, chosen when the
// runtime is created, with a Linux AIO backend for O_DIRECT files made on
// first use), a ready queue, a timer heap.
// Loop turn: run ready tasks -> fire expired timers -> flush -> reap -> park
// until the nearest deadline. A runtime belongs to the thread that created it.
#include <time.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "coil/core/duration.hpp"
#include "coil/core/intrusive_list.hpp"
#include "coil/core/result.hpp"
#include "coil/io/driver.hpp"
#include "coil/io/op_completion.hpp"
#include "coil/rt/task.hpp"

namespace coil {

// How runtime::create sets a runtime up.
struct runtime_options {
  // Which driver to run on; automatic picks io_uring when usable, else epoll
  // (COIL_DRIVER=uring|epoll overrides automatic).
  driver_kind driver = driver_kind::automatic;
  bool strict_driver = false;  // automatic, but an unusable io_uring is an error
  uring_options uring{};
  epoll_options epoll{};
  // The Linux AIO backend of direct_file's dio_engine::aio (created by the
  // first such request; capacity and submit batching).
  aio_options aio{};
  // Lets other threads post work to this runtime (runtime::post). Keeps a
  // wake-up read armed in the driver, so block_on cannot detect deadlocks.
  bool remote = false;
  clockid_t clock = CLOCK_MONOTONIC;  // CLOCK_BOOTTIME: timers count suspend time
  // Fault injection for tests (io/fault.hpp; else COIL_FAULTS=seed:spec).
  fault_options faults{};
};

// Counters since the runtime was created (runtime::stats()).
struct runtime_stats {
  driver_stats io;
  uint64_t loop_turns = 0;
  uint64_t parks = 0;
  uint64_t tasks_spawned = 0;
  uint64_t timers_fired = 0;
  uint64_t remote_runs = 0;   // posted items run
  uint64_t wakeups = 0;       // eventfd writes received
};

class runtime;

namespace detail {
// The calling thread's runtime (runtime::current()). constinit: no dynamic
// initialisation, so reads need no TLS wrapper call.
extern constinit thread_local runtime* current_runtime;

// A completion whose owner is a suspended coroutine.
struct rt_completion : completion {
  std::coroutine_handle<> waiter;
};

// Work posted to a runtime from another thread. Lives with the poster (a
// coroutine frame, usually); run() is called on the target runtime's thread.
struct remote_node {
  remote_node* next = nullptr;
  void (*run)(remote_node&) noexcept = nullptr;
};

struct timer_node : ready_node {
  static constexpr std::size_t not_armed = ~std::size_t{0};
  int64_t deadline_ns = 0;
  std::size_t heap_index = not_armed;
};

template <class T>
class spawn_state;
}  // namespace detail

template <class T>
class join_handle;

// One thread's event loop (see the file description): create() it on the
// thread that will run it, then block_on() and spawn() tasks.
class runtime {
 public:
  // Creates a runtime owned by the calling thread. A thread owns at most one.
  static result<std::unique_ptr<runtime>> create(const runtime_options& opts = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  // The runtime owned by the calling thread, or nullptr. In a child forked
  // without exec this is nullptr: the child may create its own runtime but
  // must not touch the parent's (its copy shares the parent's ring memory).
  static runtime* current() noexcept { return detail::current_runtime; }

  // Runs t to completion on this thread, driving everything else meanwhile.
  // If t waits for something that can never happen (no I/O, timer or ready
  // task left), and T is a result type, returns errc::deadlock; otherwise aborts.
  template <class T>
  T block_on(task<T> t);
  // The same for any awaitable (an operation, send_all(...)), run as a task:
  //   auto n = rt->block_on(sock.recv(buf));
  template <class A>
    requires(!detail::is_task_v<std::remove_cvref_t<A>> && requires(A a) { a.await_resume(); })
  detail::await_result_t<A> block_on(A a) {
    return block_on(detail::as_task(std::move(a)));
  }

  // Starts t on this runtime; it runs concurrently with the caller. Dropping
  // the handle detaches the task.
  template <class T>
  join_handle<T> spawn(task<T> t);

  // Now, in the runtime's clock (monotonic or boot time), in nanoseconds.
  int64_t now_ns() const noexcept;
  // The clock timers use (runtime_options::clock).
  clockid_t clock() const noexcept { return clock_; }

  // The driver this runtime runs on: its kind, statistics, registered files and buffers.
  coil::driver& driver() noexcept { return *driver_; }
  // Loop and driver counters.
  runtime_stats stats() const noexcept;

  // --- diagnostics (owner thread) ---------------------------------------------
  // Describes the operations the driver holds (waiting for room, with the
  // kernel, on a worker), oldest first, into out; returns how many there are
  // (more than out.size() when out is short). No allocation.
  std::size_t pending_ops(std::span<pending_op_info> out) noexcept;
  // Prints them, one per line (opcode, fd, age, task name), with a header
  // line. Owner thread only: from a signal, wake the owner (signalfd, a
  // posted task) and call it there; the driver's lists are not thread-safe.
  void dump_in_flight(std::FILE* out) noexcept;
  // coarse_clock_ms() read at most once per loop turn, at the first call:
  // operations stamp themselves with it for listings. Turns that stamp
  // nothing (an eager send, a multishot result) read no clock.
  uint32_t stamp_ms() const noexcept {
    if (stamp_stale_) [[unlikely]] {
      stamp_ms_ = coarse_clock_ms();
      stamp_stale_ = false;
    }
    return stamp_ms_;
  }
  // False once destruction began: new operations fail with runtime_closed.
  bool accepting() const noexcept { return !closing_; }
  // No other task is ready and the driver has nothing queued: an eager op
  // tried now saves the ring round trip instead of joining a batch.
  bool eager_turn() const noexcept { return quiet_turn() && driver_->eager_allowed(); }

  // --- inline reads (uring_options::inline_reads) ------------------------------
  // Whether a positional read of fd may be tried with preadv2(RWF_NOWAIT)
  // now: on, budget left this turn, a quiet turn with nothing waiting for
  // the ring (a read that would join a batch costs less through the ring
  // than as its own system call: docs/performance.md), fd not known to miss
  // or to be O_DIRECT.
  bool inline_read_may(int fd) noexcept {
    if (inline_budget_ == 0) return false;  // also 0 when inline reads are off
    if (!quiet_turn() || !driver_->ring_idle()) return false;
    inline_read_slot& s = inline_slots_[static_cast<unsigned>(fd) % inline_slot_count];
    if (s.fd != fd) [[unlikely]] return inline_read_adopt(s, fd);
    if (s.skip != 0) [[unlikely]] {
      if (s.skip != inline_never) --s.skip;
      return false;
    }
    return true;
  }
  // r: the try's result. True if it finished the read (data, end of file,
  // or an error the ring would give the same); false: use the ring.
  bool inline_read_done(int fd, int32_t r) noexcept {
    if (r >= 0 || r == -EBADF || r == -EISDIR || r == -EFAULT) [[likely]] {
      inline_slots_[static_cast<unsigned>(fd) % inline_slot_count].misses = 0;
      --inline_budget_;
      driver_->count_inline_read();
      return true;
    }
    inline_read_missed(fd, r);
    return false;
  }
  // A descriptor is being closed: its number may come back as another file.
  void forget_inline_read(int fd) noexcept {
    inline_read_slot& s = inline_slots_[static_cast<unsigned>(fd) % inline_slot_count];
    if (s.fd == fd) s = inline_read_slot{};
  }

  // --- used by awaiters ------------------------------------------------------
  // For awaiters: resumes n's coroutine on a later loop turn.
  void schedule(detail::ready_node& n) noexcept { ready_.push_back(n); }
  // For timer awaiters: arms and disarms t.
  void add_timer(detail::timer_node& t) noexcept;
  void remove_timer(detail::timer_node& t) noexcept;
  // Blocks until c completes (cancelling it): for frames destroyed mid-operation.
  void cancel_and_wait(completion& c) noexcept { driver_->cancel_and_wait(c, reaped_); }
  // Internal: links a spawned task so that teardown finds it.
  void track_spawned(list_hook& h) noexcept;
  // True on the thread that created this runtime.
  bool on_owner_thread() const noexcept { return std::this_thread::get_id() == owner_; }

  // --- embedding in another event loop -------------------------------------------
  // An fd that is readable when poll_once() has work to do: I/O completions,
  // an expired timer (armed on it), a cross-thread post. Created on first use
  // and owned by the runtime. Drive the runtime with spawn() + poll_once().
  result<int> embed_fd() noexcept;
  // One nonblocking loop turn: resumes what is ready, fires expired timers,
  // submits and reaps I/O. Returns how long the caller may wait on embed_fd()
  // before calling again: 0 (more is ready now), else the nanoseconds until
  // the next timer, or -1 (only an fd event can bring work);
  // poll_timeout_ms() converts it for poll(2).
  int64_t poll_once() noexcept;

  // --- cross-thread -----------------------------------------------------------
  // Thread-safe (needs runtime_options::remote): queues n to run on this
  // runtime's thread in a later loop turn, waking it if it is parked. No
  // system call when the runtime is awake.
  void post(detail::remote_node& n) noexcept;
  // True once post() may be used (runtime_options::remote or enable_remote()).
  bool remote_enabled() const noexcept { return wake_fd_ >= 0; }
  // Owner thread: turns remote posting on for a runtime created without
  // runtime_options::remote (spawn_blocking, xchannel do this on first use).
  // Idempotent; from then on block_on cannot detect deadlocks.
  result<void> enable_remote() noexcept;
  // Owner thread, outside the loop's normal flow (a destructor waiting for a
  // cross-core answer): runs posted items until flag is set. Coroutines those
  // items wake are scheduled, not resumed inside the destructor.
  void wait_remote(const std::atomic<bool>& flag) noexcept {
    wait_remote_until([&flag] { return flag.load(std::memory_order_acquire); });
  }
  template <class Done>
  void wait_remote_until(Done done) noexcept {
    const bool outer = !std::exchange(in_wait_remote_, true);
    while (!done()) {
      if (!run_remote()) remote_pause();
    }
    if (outer) in_wait_remote_ = false;
  }
  // For posted items: resumes n's coroutine now, or on a later turn when the
  // item runs inside wait_remote (user code never runs in a destructor).
  void resume_posted(detail::ready_node& n) noexcept {
    if (in_wait_remote_) [[unlikely]] {
      schedule(n);
    } else {
      n.handle.resume();
    }
  }
  // Owner thread: requests cancellation of the block_on task and every
  // spawned task (their pending operations complete with operation_canceled).
  void cancel_all() noexcept;

  // Graceful shutdown (owner thread, outside block_on): stops taking new
  // operations (they fail with runtime_closed), cancels every task (pending
  // operations complete with operation_canceled) and runs the loop until
  // every spawned task has finished, at most `grace`. Tasks still running
  // then are destroyed, which cancels and awaits their I/O, and the call
  // returns timed_out. Either way nothing of theirs is left with the kernel.
  // The runtime accepts no work afterwards; destroy it. A grace beyond 292
  // years waits for the tasks however long they take; zero or negative
  // waits for none.
  result<void> shutdown(duration_ns grace) noexcept;

 private:
  runtime() = default;
  // Returns false on deadlock.
  bool run_until(const bool& done);
  // The part of a loop turn every loop shares (block_on, shutdown,
  // poll_once): resume what completed or was woken, fire expired timers,
  // run posts from other threads. True when more is ready at once.
  bool turn();
  // How long a park may last: until the nearest timer, at most limit_ns
  // (-1: no limit; the result -1: no timer either).
  int64_t park_timeout(int64_t limit_ns) const noexcept;
  // Blocks in the driver until I/O, a post or timeout_ns (-1: none); reaps.
  result<void> park(int64_t timeout_ns) noexcept;
  // Inline reads: what the runtime remembers of a descriptor (the slot of
  // fd % inline_slot_count).
  static constexpr uint16_t inline_never = 0xffff;  // skip: never try (O_DIRECT, no RWF_NOWAIT)
  static constexpr unsigned inline_slot_count = 64;
  static constexpr uint8_t inline_max_misses = 4;   // misses in a row before a pause
  static constexpr uint16_t inline_pause = 256;     // reads sent to the ring before the next try
  struct inline_read_slot {
    int fd = -1;
    uint16_t skip = 0;   // reads still to send to the ring (inline_never: all)
    uint8_t misses = 0;  // EAGAIN answers in a row
  };
  bool inline_read_adopt(inline_read_slot& s, int fd) noexcept;
  // No other task is ready or still to be resumed this turn.
  bool quiet_turn() const noexcept {
    return !walk_more_ && ready_.empty() && turn_ready_.empty() && turn_done_.empty() && reaped_.empty();
  }
  void inline_read_missed(int fd, int32_t r) noexcept;
  void run_ready();
  // Resumes c's owner from the CQ walk (uring_driver::direct_fn).
  static void resume_reaped(completion& c, void* self, bool more) noexcept;
  // A completion run_ready would take: the wake read re-armed, or c's owner resumed.
  void resume_completion(completion& c) noexcept;
  bool run_remote() noexcept;
  static void remote_pause() noexcept;  // wait_remote's poll interval
  void arm_wake() noexcept;
  void fire_timers();
  void destroy_spawned();
  void timer_swap(std::size_t a, std::size_t b) noexcept;
  void timer_sift_up(std::size_t i) noexcept;
  void timer_sift_down(std::size_t i) noexcept;

  std::unique_ptr<coil::driver> driver_;
  intrusive_list<detail::ready_node> ready_;
  intrusive_list<completion> reaped_;
  // What run_ready has still to resume this turn (members, not locals, so
  // eager_turn() can see them).
  intrusive_list<completion> turn_done_;
  intrusive_list<detail::ready_node> turn_ready_;
  std::vector<detail::timer_node*> timers_;  // binary min-heap by deadline
  intrusive_list<list_hook> spawned_;        // live spawned tasks
  stop_source* root_stop_ = nullptr;  // the running block_on's
  std::thread::id owner_;
  clockid_t clock_ = CLOCK_MONOTONIC;
  bool running_ = false;
  bool closing_ = false;
  bool in_wait_remote_ = false;
  mutable uint32_t stamp_ms_ = 0;
  mutable bool stamp_stale_ = true;
  // A park's CQ walk has more completions to resume: not an eager turn.
  bool walk_more_ = false;
  // now_ns() as fire_timers read it this turn (-1: not read, or stale),
  // reused by the park that ends the turn.
  int64_t turn_now_ns_ = -1;
  uint32_t inline_budget_ = 0;       // inline reads left this turn
  uint32_t inline_budget_turn_ = 0;  // uring_options::inline_read_budget, 0 when off
  inline_read_slot inline_slots_[inline_slot_count];
  runtime_stats stats_;

  // Remote posts: an intrusive lock-free stack (reversed to FIFO on drain).
  std::atomic<detail::remote_node*> remote_head_{nullptr};
  // Posts still touching this runtime after their node became visible: the
  // node may already have run and let the owner destroy the runtime.
  std::atomic<uint32_t> posters_{0};
  std::atomic<bool> parked_{false};       // owner is (about to be) blocked in the driver
  std::atomic<bool> wake_pending_{false};  // an eventfd write is on its way
  int wake_fd_ = -1;
  int embed_epfd_ = -1;
  int embed_timerfd_ = -1;
  int embed_iofd_ = -1;  // io_uring's notify eventfd (owned by the driver)
  int64_t embed_armed_ns_ = -1;  // deadline the timerfd is set to
  uint64_t wake_buf_ = 0;
  std::unique_ptr<op_completion<ops::read>> wake_read_;
};

namespace detail {

// Frame-resident state of a spawned task, living in its promise's done_ctx.
struct spawn_link : list_hook {
  ready_node start;  // start.handle is the task's frame
  stop_source stop;
  bool detached = false;
  void* handle_owner = nullptr;               // join_handle pointing at this task
  void (*orphan)(void* owner) noexcept = nullptr;  // tells it the frame is gone

  // Links come from the frame allocator: spawning stays off the global heap.
  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }
};

template <class T>
struct spawned_frame {
  static std::coroutine_handle<> on_done(promise_base& p) noexcept {
    auto* link = static_cast<spawn_link*>(p.done_ctx);
    link->unlink();
    std::coroutine_handle<> next = p.continuation;
    if (link->detached) {
      auto h = std::coroutine_handle<promise<T>>::from_promise(static_cast<promise<T>&>(p));
      delete link;
      h.destroy();
      return std::noop_coroutine();
    }
    return next ? next : std::noop_coroutine();
  }
};

}  // namespace detail

// A spawned task: co_await it for the task's value, cancel() it, or detach()
// it. Dropping the handle detaches the task.
template <class T>
class [[nodiscard]] join_handle {
 public:
  using handle_type = std::coroutine_handle<detail::promise<T>>;
  join_handle() noexcept = default;
  explicit join_handle(handle_type h) noexcept : h_(h) { adopt(); }
  join_handle(join_handle&& o) noexcept : h_(std::exchange(o.h_, {})) { adopt(); }
  join_handle& operator=(join_handle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
      adopt();
    }
    return *this;
  }
  join_handle(const join_handle&) = delete;
  join_handle& operator=(const join_handle&) = delete;
  ~join_handle() { reset(); }

  // False once moved from, detached or joined.
  bool valid() const noexcept { return static_cast<bool>(h_); }
  // True when the task has finished and its value waits to be taken.
  bool done() const noexcept { return h_ && h_.promise().finished; }
  // Requests cancellation: the task's pending operations complete with
  // operation_canceled and new ones fail immediately.
  void cancel() noexcept {
    if (h_) link()->stop.request_stop();
  }
  // Names the task for in-flight listings (see coil::set_task_name).
  void set_task_name(const char* name) noexcept {
    if (h_) link()->stop.set_name(name);
  }
  // Lets the task run on; its frame is freed when it finishes.
  void detach() noexcept {
    if (!h_) return;
    if (h_.promise().finished) {
      reset();
      return;
    }
    link()->detached = true;
    link()->handle_owner = nullptr;
    h_ = {};
  }

  bool await_ready() const noexcept {
    COIL_ASSERT(h_, "joining an empty join_handle (moved from, detached, or its runtime is gone)");
    return h_.promise().finished;
  }
  void await_suspend(std::coroutine_handle<> joiner) noexcept {
    COIL_ASSERT(!h_.promise().continuation, "a spawned task joined twice");
    h_.promise().continuation = joiner;
  }
  T await_resume() noexcept {
    COIL_ASSERT(h_, "join_handle lost its task while joining (runtime destroyed)");
    if constexpr (std::is_void_v<T>) {
      reset();
    } else {
      T v = h_.promise().take();
      reset();
      return v;
    }
  }


 private:
  void adopt() noexcept {
    if (!h_) return;
    link()->handle_owner = this;
    link()->orphan = [](void* owner) noexcept { static_cast<join_handle*>(owner)->h_ = {}; };
  }
  detail::spawn_link* link() const noexcept { return static_cast<detail::spawn_link*>(h_.promise().done_ctx); }
  void reset() noexcept {
    if (!h_) return;
    if (h_.promise().finished) {
      delete link();
      h_.destroy();
    } else {
      link()->detached = true;
      link()->handle_owner = nullptr;
      h_.promise().continuation = {};
    }
    h_ = {};
  }
  handle_type h_;
};

template <class T>
join_handle<T> runtime::spawn(task<T> t) {
  COIL_ASSERT(on_owner_thread(), "runtime::spawn called from a thread that does not own the runtime");
  COIL_ASSERT(t.valid(), "spawning an empty task");
  auto h = t.release();
  auto& p = h.promise();
  COIL_ASSERT(!p.started, "spawning a task that already started");
  p.started = true;
  auto* link = new detail::spawn_link();
  p.done_ctx = link;
  p.on_done = &detail::spawned_frame<T>::on_done;
  p.stop = &link->stop;
  link->start.handle = h;
  track_spawned(*link);
  ++stats_.tasks_spawned;
  schedule(link->start);
  return join_handle<T>(h);
}

namespace detail {

// Why new work was refused before reaching the driver, in one byte.
enum class refusal : uint8_t { none, no_runtime, runtime_closed, canceled };

inline std::error_code error_of(refusal r) noexcept {
  switch (r) {
    case refusal::none: break;
    case refusal::no_runtime: return make_error_code(errc::no_runtime);
    case refusal::runtime_closed: return make_error_code(errc::runtime_closed);
    case refusal::canceled: return std::make_error_code(std::errc::operation_canceled);
  }
  return {};
}

// The checks every awaiter starts with before it hands work to the runtime:
// the thread's runtime, and the task's stop source.
struct admission {
  runtime* rt = nullptr;      // set unless why is no_runtime
  stop_source* stop = nullptr;
  refusal why = refusal::none;
  bool ok() const noexcept { return why == refusal::none; }
};

// Closing::proceed is for waits that a closing runtime still serves (timers,
// sync primitives, blocking calls): they end with their owners' tasks.
enum class when_closing : bool { refuse, proceed };

// Work without a task (a packet fragment, a stream's re-arm): runtime only.
// Always inlined: on the op path it is a few loads and compares, and as a
// call it cost 16 instructions per read (docs/performance.md).
template <when_closing Closing = when_closing::refuse>
[[gnu::always_inline]] inline admission admit() noexcept {
  runtime* rt = runtime::current();
  if (rt == nullptr) return {nullptr, nullptr, refusal::no_runtime};
  if constexpr (Closing == when_closing::refuse) {
    if (!rt->accepting()) return {rt, nullptr, refusal::runtime_closed};
  }
  return {rt, nullptr, refusal::none};
}

// A leaf awaiter's: also fails a task whose stop was requested, so a task
// winding down starts nothing new.
template <when_closing Closing = when_closing::refuse, class P>
[[gnu::always_inline]] inline admission admit(std::coroutine_handle<P> h) noexcept {
  admission a = admit<Closing>();
  if (!a.ok()) return a;
  a.stop = stop_of(h);
  if (a.stop != nullptr && a.stop->stop_requested()) a.why = refusal::canceled;
  return a;
}

}  // namespace detail

template <class T>
T runtime::block_on(task<T> t) {
  COIL_ASSERT(on_owner_thread(), "runtime::block_on called from a thread that does not own the runtime");
  COIL_ASSERT(!running_, "runtime::block_on called from inside the runtime (nested block_on)");
  COIL_ASSERT(t.valid(), "block_on of an empty task");
  auto& p = t.handle().promise();
  COIL_ASSERT(!p.started, "block_on of a task that already started");
  p.started = true;
  stop_source root_stop;  // per call: a cancelled block_on does not poison the next
  p.stop = &root_stop;
  root_stop_ = &root_stop;
  detail::ready_node start;
  start.handle = t.handle();
  schedule(start);
  running_ = true;
  const bool ok = run_until(p.finished);
  running_ = false;
  root_stop_ = nullptr;
  if (!ok) {
    if constexpr (requires { T(fail(errc::deadlock)); }) {
      return T(fail(errc::deadlock));
    } else {
      detail::assert_fail("!deadlock", "block_on: the task waits, but no I/O, timer or ready task can wake it",
                          __FILE__, __LINE__);
    }
  }
  return p.take();
}

}  // namespace coil
