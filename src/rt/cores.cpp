#include "coil/rt/cores.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "coil/fs/file.hpp"

namespace coil {
namespace detail {

class core_group {
 public:
  struct slot {
    runtime* rt = nullptr;
    owned_node<slot> stop_node;
    std::atomic<bool> stop_posted{false};
    owned_node<slot> done_node;
    bool all_done = false;  // owner thread only
    std::coroutine_handle<> done_waiter;
  };

  core_group(unsigned n, unsigned spawn_slots) : slots(n), pairs(std::size_t{n} * n), spawn_slots(spawn_slots) {
    for (auto& s : slots) {
      s = std::make_unique<slot>();
      s->stop_node.owner = s.get();
      s->stop_node.run = [](remote_node& n) noexcept {
        static_cast<owned_node<slot>&>(n).owner->rt->cancel_all();
      };
      s->done_node.owner = s.get();
      s->done_node.run = [](remote_node& n) noexcept {
        slot& s = *static_cast<owned_node<slot>&>(n).owner;
        s.all_done = true;
        if (s.done_waiter) std::exchange(s.done_waiter, {}).resume();
      };
    }
  }

  // Blocks until every core reached this point (n arrivals per phase).
  void barrier() {
    std::unique_lock lock(mu_);
    const unsigned phase = phase_;
    if (++arrived_ == slots.size()) {
      arrived_ = 0;
      ++phase_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return phase_ != phase; });
  }

  void record(std::error_code ec) {
    // After stop(), cancellation is the expected way for a task to end.
    if (stop_requested_.load() && ec == std::errc::operation_canceled) return;
    std::lock_guard lock(mu_);
    if (!first_error_) first_error_ = ec;
  }
  std::error_code first_error() {
    std::lock_guard lock(mu_);
    return first_error_;
  }

  void stop_all() noexcept {
    stop_requested_.store(true);
    for (auto& s : slots) {
      if (s->rt != nullptr && !s->stop_posted.exchange(true)) s->rt->post(s->stop_node);
    }
  }

  void fail_fast() noexcept {
    for (auto& s : slots) {
      if (s->rt != nullptr && !s->stop_posted.exchange(true)) s->rt->post(s->stop_node);
    }
  }

  // Called by each core when its main task is done; the last one tells all.
  void main_finished() noexcept {
    if (mains_done_.fetch_add(1) + 1 != slots.size()) return;
    for (auto& s : slots) s->rt->post(s->done_node);
  }

  bool accepting() const noexcept { return !stop_requested_.load(std::memory_order_relaxed) && !all_mains_done(); }
  bool all_mains_done() const noexcept { return mains_done_.load(std::memory_order_relaxed) == slots.size(); }

  std::vector<std::unique_ptr<slot>> slots;
  // spawn_on pairs, [source * n + target], each made and reached by its source thread.
  std::vector<std::unique_ptr<spawn_pair>> pairs;
  const unsigned spawn_slots;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  unsigned arrived_ = 0;
  unsigned phase_ = 0;
  std::error_code first_error_;
  std::atomic<unsigned> mains_done_{0};
  std::atomic<bool> stop_requested_{false};
};

namespace {
thread_local core_group* tl_group = nullptr;
thread_local unsigned tl_core = 0;

struct wait_all_done {
  core_group::slot& s;
  bool await_ready() const noexcept { return s.all_done; }
  void await_suspend(std::coroutine_handle<> h) noexcept { s.done_waiter = h; }
  void await_resume() const noexcept {}
};

task<void> idle_until_all_done(core_group::slot& s) { co_await wait_all_done{s}; }

// Core 0 turns SIGINT/SIGTERM (blocked in every core thread) into stop().
task<void> watch_signals(int sigfd) {
  file f{unique_fd(sigfd)};
  signalfd_siginfo info;
  auto r = co_await f.read(std::as_writable_bytes(std::span(&info, 1)));
  if (r && *r == sizeof info) cores::stop();
}

void run_core(core_group& g, unsigned index, int cpu, const cores_options& opts,
              const cores::main_fn& main, int sigfd) {
  if (opts.pin && cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  }
  runtime_options ro = opts.runtime;
  ro.remote = true;
  auto rt = runtime::create(ro);
  if (rt) {
    g.slots[index]->rt = rt->get();
  } else {
    g.record(rt.error());
  }
  g.barrier();  // every runtime exists (or failed) before any task runs
  bool all_up = true;
  for (auto& s : g.slots) all_up = all_up && s->rt != nullptr;
  if (all_up) {
    tl_group = &g;
    tl_core = index;
    runtime& r = **rt;
    if (index == 0 && sigfd >= 0) r.spawn(watch_signals(sigfd)).detach();
    auto res = r.block_on(main(index));
    if (!res) {
      g.record(res.error());
      g.fail_fast();  // the first failure stops the others
    }
    g.main_finished();
    r.block_on(idle_until_all_done(*g.slots[index]));  // keep serving calls
  } else if (index == 0 && sigfd >= 0) {
    ::close(sigfd);
  }
  g.barrier();  // no core goes away while another may still post to it
  if (rt) {
    // No spawn_on notify may be headed here once this runtime is gone.
    const std::size_t n = g.slots.size();
    for (std::size_t t = 0; t < n; ++t) {
      if (auto& p = g.pairs[index * n + t]) p->quiesce();
    }
  }
  tl_group = nullptr;
  if (rt) rt->reset();
}

}  // namespace

core_group* current_group() noexcept { return tl_group; }

// ---- spawn_on pairs -------------------------------------------------------------

spawn_pair::spawn_pair(core_group& g, unsigned source, unsigned target_core, unsigned n)
    : group(&g),
      source_rt(g.slots[source]->rt),
      target_rt(g.slots[target_core]->rt),
      target(target_core),
      slots(std::make_unique<spawn_slot[]>(n)) {
  for (unsigned i = n; i-- > 0;) {
    slots[i].pair = this;
    give(slots[i]);
  }
  notify.owner = this;
  notify.run = [](remote_node& nd) noexcept {
    spawn_pair& p = *static_cast<owned_node<spawn_pair>&>(nd).owner;
    p.armed = false;
    p.notified.store(true, std::memory_order_release);
    p.serve();
  };
}

spawn_slot* spawn_pair::take() noexcept {
  if (free == nullptr && returned.load(std::memory_order_relaxed) != nullptr) {
    free = returned.exchange(nullptr, std::memory_order_acquire);
  }
  spawn_slot* s = free;
  if (s != nullptr) free = s->next_free;
  return s;
}

void spawn_pair::serve() noexcept {
  for (;;) {
    while (!waiters.empty()) {
      spawn_slot* s = take();
      if (s == nullptr) break;
      spawn_wait* w = waiters.pop_front();
      w->granted_ = s;
      w->wake();
    }
    if (waiters.empty() || armed || closing) return;
    // Out of slots with senders parked: have the target's next hand-back
    // tell us. The store-then-load pairs with hand_back's push-then-load.
    armed = true;
    notified.store(false, std::memory_order_relaxed);
    waiting.store(true, std::memory_order_seq_cst);
    if (returned.load(std::memory_order_seq_cst) == nullptr) return;
    if (!waiting.exchange(false, std::memory_order_acq_rel)) return;  // its notify is coming
    armed = false;  // slots came back meanwhile: go again
  }
}

void spawn_pair::hand_back(spawn_slot& s) noexcept {
  s.next_free = returned.load(std::memory_order_relaxed);
  while (!returned.compare_exchange_weak(s.next_free, &s, std::memory_order_seq_cst, std::memory_order_relaxed)) {
  }
  if (waiting.load(std::memory_order_seq_cst) && waiting.exchange(false, std::memory_order_acq_rel)) {
    source_rt->post(notify);
  }
}

void spawn_pair::quiesce() noexcept {
  closing = true;
  if (!armed) return;
  if (waiting.exchange(false, std::memory_order_acq_rel)) {
    armed = false;
    return;
  }
  source_rt->wait_remote(notified);  // the target's notify is on its way
}

spawn_pair* pair_to(unsigned target) noexcept {
  core_group* g = tl_group;
  if (g == nullptr || target >= g->slots.size()) return nullptr;
  auto& p = g->pairs[tl_core * g->slots.size() + target];
  if (!p) p = std::make_unique<spawn_pair>(*g, tl_core, target, g->spawn_slots);
  return p.get();
}

bool group_accepting(core_group& g) noexcept { return g.accepting(); }
runtime* group_runtime(core_group& g, unsigned core) noexcept { return g.slots[core]->rt; }
unsigned group_size(const core_group& g) noexcept { return static_cast<unsigned>(g.slots.size()); }

}  // namespace detail

result<void> cores::run(const cores_options& opts, main_fn main) {
  std::vector<int> cpus = opts.cpus;
  if (cpus.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return fail(errno_code(errno));
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
  if (cpus.empty() || !main) return fail(std::errc::invalid_argument);

  // Signals: blocked in every core thread (they inherit the mask), read
  // through a signalfd on core 0.
  sigset_t old_mask;
  int sigfd = -1;
  if (opts.handle_signals) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, &old_mask);
    sigfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    if (sigfd < 0) {
      const int e = errno;
      pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
      return fail(errno_code(e));
    }
  }

  if (opts.spawn_slots == 0) return fail(std::errc::invalid_argument);
  detail::core_group group(static_cast<unsigned>(cpus.size()), opts.spawn_slots);
  std::vector<std::thread> threads;
  threads.reserve(cpus.size());
  for (unsigned i = 0; i < cpus.size(); ++i) {
    threads.emplace_back(detail::run_core, std::ref(group), i, cpus[i], std::cref(opts), std::cref(main),
                         i == 0 ? sigfd : -1);
  }
  for (auto& t : threads) t.join();
  if (opts.handle_signals) pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (auto ec = group.first_error()) return fail(ec);
  return {};
}

unsigned cores::current() noexcept { return detail::tl_core; }

unsigned cores::count() noexcept { return detail::tl_group ? detail::group_size(*detail::tl_group) : 0; }

void cores::stop() noexcept {
  if (detail::tl_group != nullptr) detail::tl_group->stop_all();
}

}  // namespace coil
