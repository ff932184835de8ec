#pragma once
// spawn_blocking(fn): runs a blocking callable (getaddrinfo, a CPU-heavy
// hash) on a process-wide pool of threads and awaits its value here.
//
//   auto h = co_await coil::spawn_blocking([&] { return sha256(big); });  // result<digest>
//
// The pool starts on first use and grows on demand up to a bound
// (blocking_pool_threads(), default 16, COIL_BLOCKING_THREADS overrides);
// beyond that, jobs queue. A blocked pool thread never holds up any core's
// loop. The answer comes back by runtime::post, so the caller's runtime gets
// remote posting switched on at first use (runtime::enable_remote).
//
// Cancellation: a caller cancelled before its job finished resumes at once
// with operation_canceled; the job (which cannot be interrupted) still runs,
// or is skipped if it has not started, and its value is dropped. Job state is
// one heap block per call, owned by whichever side finishes last, so no
// pointer into a frame outlives it: a frame can go while the job runs on.
//
// State goes in as arguments (copied or moved to the job), so the lambda
// needs no captures; see rt/await_arg.hpp for why that matters on g++ 12:
//   auto h = co_await coil::spawn_blocking([](std::string p) { return hash_file(p); }, path);
#include <atomic>
#include <coroutine>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "coil/core/error.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/await_arg.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/stop.hpp"
#include "coil/rt/task.hpp"

namespace coil {

// The pool's thread bound. Settable before the pool's first use only
// (returns false afterwards).
bool set_blocking_pool_threads(unsigned n) noexcept;
unsigned blocking_pool_threads() noexcept;

namespace detail {

// One job; the pool's queue links them.
struct blocking_job {
  blocking_job* next = nullptr;
  void (*work)(blocking_job&) noexcept = nullptr;  // on a pool thread
};
// Thread-safe; the pool runs j.work(j) once, on one of its threads.
void blocking_submit(blocking_job& j) noexcept;

template <class T>
using blocking_result_t = std::conditional_t<is_result_v<T>, T, result<T>>;

template <class Fn>
class blocking_call {
 public:
  using value_type = std::invoke_result_t<Fn&>;
  using out_type = blocking_result_t<value_type>;

  explicit blocking_call(Fn fn) noexcept : fn_(std::move(fn)) {}

  // Who owns the state from here on is decided by one CAS on phase: the pool
  // thread (done) or the caller giving up (abandoned).
  enum phase : int { waiting = 0, abandoned = 1, done = 2 };

  struct state : blocking_job, remote_node, stop_callback {
    explicit state(Fn f) noexcept : fn(std::move(f)) {}
    Fn fn;
    std::optional<out_type> out;
    runtime* home = nullptr;
    std::coroutine_handle<> waiter;
    std::atomic<int> phase{waiting};
    std::atomic<bool> delivered{false};  // the answer's post has run at home
    blocking_call* owner = nullptr;
  };

  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    const admission a = admit<when_closing::proceed>(h);
    if (!a.ok()) return finish_now(error_of(a.why));
    runtime* rt = a.rt;
    stop_source* stop = a.stop;
    if (auto r = rt->enable_remote(); !r) return finish_now(r.error());
    s_ = new state(std::move(fn_));
    s_->home = rt;
    s_->waiter = h;
    s_->owner = this;
    resume_node_.handle = h;
    s_->work = &work;
    s_->run = &on_home;
    if (stop != nullptr) {
      s_->stop_callback::fn = &on_stop;
      stop->add(*s_);
    }
    blocking_submit(*s_);
    return true;
  }
  out_type await_resume() noexcept {
    if (early_) return std::move(*early_);
    state* s = std::exchange(s_, nullptr);
    out_type v = std::move(*s->out);
    delete s;
    return v;
  }

  ~blocking_call() {
    if (s_ == nullptr) return;
    // Frame destroyed while suspended.
    static_cast<stop_callback&>(*s_).unlink();
    int expect = waiting;
    if (s_->phase.compare_exchange_strong(expect, abandoned, std::memory_order_acq_rel)) return;
    // The answer is being posted here: wait for it before freeing.
    s_->waiter = {};
    s_->home->wait_remote(s_->delivered);
    delete s_;
  }

 private:
  bool finish_now(std::error_code ec) noexcept {
    early_.emplace(fail(ec));
    return false;
  }
  static void work(blocking_job& j) noexcept {
    state& s = static_cast<state&>(j);
    int expect = waiting;
    if (s.phase.load(std::memory_order_acquire) == waiting) {
      if constexpr (std::is_void_v<value_type>) {
        s.fn();
        s.out.emplace();
      } else {
        s.out.emplace(s.fn());
      }
    }
    if (!s.phase.compare_exchange_strong(expect, done, std::memory_order_acq_rel)) {
      delete &s;  // the caller gave up: nobody reads the answer
      return;
    }
    s.home->post(s);
  }
  static void on_home(remote_node& n) noexcept {
    state& s = static_cast<state&>(n);
    static_cast<stop_callback&>(s).unlink();
    std::coroutine_handle<> w = s.waiter;
    blocking_call* c = s.owner;
    runtime* home = s.home;
    s.delivered.store(true, std::memory_order_release);
    if (w) home->resume_posted(c->resume_node_);
  }
  static void on_stop(stop_callback& cb) noexcept {
    state& s = static_cast<state&>(cb);
    blocking_call* c = s.owner;
    runtime* home = s.home;
    int expect = waiting;
    if (!s.phase.compare_exchange_strong(expect, abandoned, std::memory_order_acq_rel)) return;  // answer wins
    // From here the job owns s. Stop callbacks must not resume inline.
    c->s_ = nullptr;
    c->early_.emplace(fail(std::make_error_code(std::errc::operation_canceled)));
    home->schedule(c->resume_node_);
  }

  Fn fn_;
  state* s_ = nullptr;
  std::optional<out_type> early_;
  ready_node resume_node_;
};

template <class Fn>
task<blocking_result_t<std::invoke_result_t<Fn&>>> run_blocking(Fn fn) {
  blocking_call<Fn> call(std::move(fn));
  co_return co_await call;
}
}  // namespace detail

// Runs fn(args...) on the blocking pool; the value (wrapped in result<>
// unless it already is one) comes back to this task's runtime.
template <class Fn, class... Args>
auto spawn_blocking(Fn&& fn, Args&&... args) {
  static_assert(detail::await_arg_ok<Fn&&> && (detail::await_arg_ok<Args&&> && ...), COIL_AWAIT_ARG_MESSAGE);
  return detail::run_blocking(detail::bind_call(std::forward<Fn>(fn), std::forward<Args>(args)...));
}

}  // namespace coil
