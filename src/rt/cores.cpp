#include "coil/rt/cores.hpp"

#include <pthread.h>
#include <sched.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "coil/core/unique_fd.hpp"
#include "coil/rt/signal.hpp"

namespace coil {
namespace detail {

class core_group {
 public:
  struct slot {
    runtime* rt = nullptr;
    owned_node<slot> stop_node;
    std::atomic<bool> stop_posted{false};
    // Phase barriers that keep the loop serving posts while it waits: the
    // last core to reach phase k posts phase_node[k] to every core.
    owned_node<slot> phase_node[2];
    bool phase_reached[2] = {false, false};  // owner thread only
    std::coroutine_handle<> phase_waiter;
  };

  core_group(unsigned n, unsigned spawn_slots) : slots(n), pairs(std::size_t{n} * n), spawn_slots(spawn_slots) {
    for (auto& s : slots) {
      s = std::make_unique<slot>();
      s->stop_node.owner = s.get();
      s->stop_node.run = [](remote_node& n) noexcept {
        static_cast<owned_node<slot>&>(n).owner->rt->cancel_all();
      };
      for (int k = 0; k < 2; ++k) {
        s->phase_node[k].owner = s.get();
        s->phase_node[k].run = k == 0 ? &on_phase<0> : &on_phase<1>;
      }
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
  // For the launching thread: blocks until every core passed its first
  // barrier (the runtimes exist, or failed), so stop_all sees them.
  void wait_started() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return phase_ != 0; });
  }
  // Each core thread when it is about to end; the last one signals fd.
  void exited(int fd) noexcept {
    if (exited_.fetch_add(1) + 1 != slots.size() || fd < 0) return;
    const uint64_t one = 1;
    (void)!::write(fd, &one, sizeof one);
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

  // Phase 0: this core's main task is done. Phase 1: this core has shut its
  // runtime down (no task of its own left). The last core to arrive tells all.
  void arrive(int phase) noexcept {
    if (arrived_at_[phase].fetch_add(1) + 1 != slots.size()) return;
    for (auto& s : slots) s->rt->post(s->phase_node[phase]);
  }
  void main_finished() noexcept {
    mains_done_.fetch_add(1);
    arrive(0);
  }

  bool accepting() const noexcept { return !stop_requested_.load(std::memory_order_relaxed) && !all_mains_done(); }
  bool stopping() const noexcept { return !accepting(); }
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
  std::atomic<unsigned> arrived_at_[2] = {0, 0};
  std::atomic<unsigned> exited_{0};
  std::atomic<bool> stop_requested_{false};

  template <int K>
  static void on_phase(remote_node& n) noexcept {
    slot& s = *static_cast<owned_node<slot>&>(n).owner;
    s.phase_reached[K] = true;
    if (s.phase_waiter) std::exchange(s.phase_waiter, {}).resume();
  }
};

namespace {
thread_local core_group* tl_group = nullptr;
thread_local unsigned tl_core = 0;

struct wait_phase {
  core_group::slot& s;
  int phase;
  bool await_ready() const noexcept { return s.phase_reached[phase]; }
  void await_suspend(std::coroutine_handle<> h) noexcept { s.phase_waiter = h; }
  void await_resume() const noexcept {}
};

// Runs this core's loop (serving the others' posts) until every core has
// reached `phase`.
task<void> until_all_reach(core_group::slot& s, int phase) { co_await wait_phase{s, phase}; }

// The teardown, on every core (docs/guide/multicore.md, "Stopping"):
//  1. main returns; the core keeps running its tasks and serving calls
//     until every core's main has returned;
//  2. shutdown(stop_grace): new operations fail with runtime_closed, every
//     task is cancelled and runs to its end, tasks past the grace are
//     destroyed (their I/O cancelled and awaited); meanwhile the core still
//     answers other cores' calls (runtime_closed), so a caller torn down
//     elsewhere gets its answer; then it waits, still serving, until every
//     core is done with this step;
//  3. no task is left anywhere: the runtimes go.
// cores::count() and current() keep their values until the runtime is gone.
void run_core(core_group& g, unsigned index, int cpu, const cores_options& opts, const cores::main_fn& main,
              int exit_fd) {
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
  tl_group = &g;
  tl_core = index;
  if (all_up) {
    runtime& r = **rt;
    core_group::slot& self = *g.slots[index];
    auto res = r.block_on(main(index));
    if (!res) {
      g.record(res.error());
      g.fail_fast();  // the first failure stops the others
    }
    g.main_finished();
    r.block_on(until_all_reach(self, 0));
    (void)r.shutdown(opts.stop_grace);
    g.arrive(1);
    r.block_on(until_all_reach(self, 1));
  }
  g.barrier();  // no core goes away while another may still post to it
  if (rt) {
    // No spawn_on notify may be headed here once this runtime is gone.
    const std::size_t n = g.slots.size();
    for (std::size_t t = 0; t < n; ++t) {
      if (auto& p = g.pairs[index * n + t]) p->quiesce();
    }
    rt->reset();
  }
  tl_group = nullptr;
  tl_core = 0;
  g.exited(exit_fd);
}

// The launching thread, while the cores run: the first SIGINT/SIGTERM stops
// them gracefully; one arriving while a stop is under way ends the process
// at once (a task that ignores cancellation must not make it unkillable).
void watch_signals(core_group& g, signal_set& sigs, int exit_fd) {
  g.wait_started();
  pollfd fds[2] = {{sigs.fd(), POLLIN, 0}, {exit_fd, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    auto info = sigs.try_take();
    if (!info || !*info) continue;
    const int sig = (*info)->signo;
    if (g.stopping()) {
      std::fprintf(stderr, "coil: %s during a graceful stop: exiting now\n", sigabbrev_np(sig));
      ::_exit(128 + sig);
    }
    g.stop_all();
  }
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

  if (opts.spawn_slots == 0) return fail(std::errc::invalid_argument);

  // Signals: blocked in every core thread (they inherit the mask), read
  // through the set's signalfd by this thread, which has nothing else to do.
  std::optional<signal_set> sigs;
  unique_fd exit_fd;
  if (opts.handle_signals) {
    auto set = signal_set::create({SIGINT, SIGTERM});
    if (!set) return fail(set.error());
    sigs.emplace(std::move(*set));
    exit_fd = unique_fd(::eventfd(0, EFD_CLOEXEC));
    if (!exit_fd) return fail(errno_code(errno));
  }

  detail::core_group group(static_cast<unsigned>(cpus.size()), opts.spawn_slots);
  std::vector<std::thread> threads;
  threads.reserve(cpus.size());
  for (unsigned i = 0; i < cpus.size(); ++i) {
    threads.emplace_back(detail::run_core, std::ref(group), i, cpus[i], std::cref(opts), std::cref(main),
                         exit_fd.get());
  }
  if (sigs) detail::watch_signals(group, *sigs, exit_fd.get());
  for (auto& t : threads) t.join();
  sigs.reset();  // the mask as it was
  if (auto ec = group.first_error()) return fail(ec);
  return {};
}

unsigned cores::current() noexcept { return detail::tl_core; }

unsigned cores::count() noexcept {
  if (detail::tl_group != nullptr) return detail::group_size(*detail::tl_group);
  return runtime::current() != nullptr ? 1 : 0;  // a plain runtime is one core
}

void cores::stop() noexcept {
  if (detail::tl_group != nullptr) detail::tl_group->stop_all();
}

}  // namespace coil
