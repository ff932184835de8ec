// scale: how coil's cost grows with the amount of work alive at once.
//   timers: N tasks, each armed once on a random deadline within --spread-ms,
//           all armed before the first deadline, then all fired: CPU per
//           timer (arm, fire) and lateness (resumed-at minus deadline).
//   idle:   N idle TCP connections to a coil server (coil-bench idle's code):
//           server RSS per connection as /proc/PID/status shows it.
//   tasks:  N spawned tasks, one after another (spawn, run, join) and all
//           alive at once (parked on one event): ns and bytes per task.
// Every size runs in a fresh process (this program re-executed with --one):
// a process that already freed a million frames reuses their pages, which
// would hide the growth being measured.
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "benches.hpp"
#include "common.hpp"
#include "histogram.hpp"
#include "idle.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/time.hpp"
#include "coil/sync/event.hpp"

namespace coil_bench {
namespace {

struct scale_options {
  std::vector<uint64_t> timers = {10'000, 100'000, 1'000'000};
  std::vector<uint64_t> conns = {1'000, 10'000, 100'000};
  std::vector<uint64_t> tasks = {1'000'000};
  std::string only;  // "", "timers", "idle" or "tasks"
  std::string mode;  // idle: "" (both), "multishot" or "plain"
  uint64_t spread_ms = 0;  // 0: N / 100 ms, at least 10: the same density of deadlines at every size
  bool one = false;  // internal: run the single size given, in this process
};

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// VmRSS, as /proc/self/status reports it (what `ps` and `top` show).
uint64_t vm_rss_bytes() {
  uint64_t kib = 0;
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strncmp(line, "VmRSS:", 6) == 0) {
        kib = std::strtoull(line + 6, nullptr, 10);
        break;
      }
    }
    std::fclose(f);
  }
  return kib * 1024;
}

// Bytes malloc has handed out (arena and mmap'd blocks).
uint64_t heap_bytes() {
  const struct mallinfo2 m = ::mallinfo2();
  return m.uordblks + m.hblkhd;
}

double per(double total, uint64_t n) { return n > 0 ? total / static_cast<double>(n) : 0; }
double per_bytes(uint64_t before, uint64_t after, uint64_t n) {
  return after >= before ? per(static_cast<double>(after - before), n) : 0;
}

std::unique_ptr<coil::runtime> make_runtime() {
  auto rt = coil::runtime::create();
  if (!rt) {
    std::fprintf(stderr, "coil-bench: runtime::create: %s\n", rt.error().message().c_str());
    std::exit(1);
  }
  return std::move(*rt);
}

// ---- timers ------------------------------------------------------------------

struct timer_run {
  uint64_t n = 0;
  uint64_t armed = 0;
  uint64_t fired = 0;
  uint64_t errors = 0;         // failed sleeps, or wakes before the deadline
  uint64_t armed_late = 0;     // deadlines that passed before every timer was armed
  int64_t all_armed_ns = 0;
  coil::event all_armed_ev;
  coil::event all_fired_ev;
  latency_histogram lateness;
};

coil::task<void> one_timer(int64_t deadline, timer_run& r) {
  coil::runtime& rt = *coil::runtime::current();
  if (++r.armed == r.n) r.all_armed_ev.set();  // resumes the main task after this one parks
  auto ok = co_await coil::sleep_until_ns(deadline);
  const int64_t late = rt.now_ns() - deadline;
  if (!ok || late < 0) {
    ++r.errors;
  } else if (deadline < r.all_armed_ns) {
    ++r.armed_late;  // its lateness is the arming's, not the timer's
  } else {
    r.lateness.record(static_cast<uint64_t>(late));
  }
  if (++r.fired == r.n) r.all_fired_ev.set();
}

struct timer_cpu {
  double arm_s = 0;
  double fire_s = 0;
  double wall_s = 0;
};

coil::task<void> timers_main(timer_run& r, uint64_t spread_ms, timer_cpu& cpu) {
  coil::runtime& rt = *coil::runtime::current();
  rng g(42);
  // Arming a timer (a task and a heap insert) takes under 2 us of CPU here:
  // the first deadline lies past the end of arming, with room for a busy CPU.
  const int64_t lead_ns = 100'000'000 + static_cast<int64_t>(r.n) * 4'000;
  const int64_t t0 = rt.now_ns();
  const double c0 = cpu_seconds();
  const uint64_t spread_ns = spread_ms * 1'000'000 + 1;
  for (uint64_t i = 0; i < r.n; ++i) {
    const int64_t deadline = t0 + lead_ns + static_cast<int64_t>(g.below(spread_ns));
    rt.spawn(one_timer(deadline, r)).detach();
  }
  auto armed = co_await r.all_armed_ev.wait();
  (void)armed;
  r.all_armed_ns = rt.now_ns();
  const double c1 = cpu_seconds();
  auto fired = co_await r.all_fired_ev.wait();
  (void)fired;
  cpu.arm_s = c1 - c0;
  cpu.fire_s = cpu_seconds() - c1;
  cpu.wall_s = static_cast<double>(rt.now_ns() - t0) * 1e-9;
}

// The baseline: the same count of random deadlines pushed into and popped
// from a binary heap that keeps each deadline beside its pointer (16-byte
// entries, std::priority_queue): the data structure alone, no tasks, no loop.
struct heap_baseline {
  double push_ns = 0;
  double pop_ns = 0;
  uint64_t disorder = 0;  // pops out of deadline order (always 0; keeps the pops observable)
};

heap_baseline run_heap_baseline(uint64_t n, uint64_t spread_ms) {
  using entry = std::pair<int64_t, void*>;
  std::vector<entry> storage;
  storage.reserve(n);
  std::priority_queue<entry, std::vector<entry>, std::greater<>> heap(std::greater<>{}, std::move(storage));
  rng g(42);
  const uint64_t spread_ns = spread_ms * 1'000'000 + 1;
  heap_baseline out;
  const double c0 = cpu_seconds();
  for (uint64_t i = 0; i < n; ++i) heap.emplace(static_cast<int64_t>(g.below(spread_ns)), &heap);
  const double c1 = cpu_seconds();
  int64_t last = 0;
  while (!heap.empty()) {
    out.disorder += heap.top().first < last ? 1 : 0;
    last = heap.top().first;
    heap.pop();
  }
  out.push_ns = per((c1 - c0) * 1e9, n);
  out.pop_ns = per((cpu_seconds() - c1) * 1e9, n);
  return out;
}

int run_timers_one(uint64_t n, uint64_t spread_ms) {
  if (spread_ms == 0) spread_ms = std::max<uint64_t>(10, n / 100);
  auto rt = make_runtime();
  auto r = std::make_unique<timer_run>();
  r->n = n;
  timer_cpu cpu;
  if (n > 0) rt->block_on(timers_main(*r, spread_ms, cpu));
  const double arm_ns = per(cpu.arm_s * 1e9, n), fire_ns = per(cpu.fire_s * 1e9, n);
  const double p50 = static_cast<double>(r->lateness.quantile(0.50)) * 1e-3;
  const double p99 = static_cast<double>(r->lateness.quantile(0.99)) * 1e-3;
  const double max = static_cast<double>(r->lateness.max()) * 1e-3;
  // How often the loop slept: timers fired per wake-up set the fire cost.
  const double parks = per(static_cast<double>(rt->stats().parks), n);
  const heap_baseline base = run_heap_baseline(n, spread_ms);
  std::printf(
      "scale timers: %llu timers over %llu ms: CPU per timer %.0f ns (arm %.0f, fire %.0f), late p50 %.1f us, "
      "p99 %.1f us, max %.1f us; %.3f loop sleeps per timer; armed after their deadline %llu, errors %llu\n",
      static_cast<unsigned long long>(n), static_cast<unsigned long long>(spread_ms), arm_ns + fire_ns, arm_ns,
      fire_ns, p50, p99, max, parks, static_cast<unsigned long long>(r->armed_late),
      static_cast<unsigned long long>(r->errors));
  std::printf("  baseline, a binary heap of (deadline, pointer) pairs: push %.0f ns, pop %.0f ns per timer\n",
              base.push_ns, base.pop_ns);
  json_object j;
  j.add("bench", "scale").add("part", "timers").add("n", n).add("spread_ms", spread_ms);
  j.add("cpu_ns_per_timer", arm_ns + fire_ns).add("arm_cpu_ns", arm_ns).add("fire_cpu_ns", fire_ns);
  j.add("late_p50_us", p50).add("late_p99_us", p99).add("late_max_us", max).add("parks_per_timer", parks);
  j.add("baseline_heap_push_ns", base.push_ns).add("baseline_heap_pop_ns", base.pop_ns);
  j.add("armed_late", r->armed_late).add("fired", r->fired).add("errors", r->errors).add("seconds", cpu.wall_s);
  std::printf("%s\n", j.str().c_str());
  return r->errors == 0 && r->fired == n && base.disorder == 0 ? 0 : 1;
}

// ---- tasks -------------------------------------------------------------------

coil::task<void> empty_task() { co_return; }

struct park_run {
  uint64_t n = 0;
  uint64_t parked = 0;
  uint64_t done = 0;
  uint64_t errors = 0;
  coil::event go;
  coil::event all_parked;
  coil::event all_done;
};

coil::task<void> parked_task(park_run& r) {
  if (++r.parked == r.n) r.all_parked.set();
  auto ok = co_await r.go.wait();
  if (!ok) ++r.errors;
  if (++r.done == r.n) r.all_done.set();
}

struct task_numbers {
  double seq_ns = 0;        // spawn + run + join, one task at a time
  double alive_spawn_ns = 0;  // spawn and park, N at once
  double alive_finish_ns = 0;  // wake, finish and free, N at once
  double rss_per_task = 0;
  double heap_per_task = 0;
};

coil::task<void> tasks_main(park_run& r, task_numbers& out) {
  coil::runtime& rt = *coil::runtime::current();
  // All alive first, on a heap that has never held a frame.
  const uint64_t rss0 = vm_rss_bytes(), heap0 = heap_bytes();
  double c0 = cpu_seconds();
  for (uint64_t i = 0; i < r.n; ++i) rt.spawn(parked_task(r)).detach();
  auto parked = co_await r.all_parked.wait();
  (void)parked;
  double c1 = cpu_seconds();
  out.rss_per_task = per_bytes(rss0, vm_rss_bytes(), r.n);
  out.heap_per_task = per_bytes(heap0, heap_bytes(), r.n);
  r.go.set();
  auto done = co_await r.all_done.wait();
  (void)done;
  const double c2 = cpu_seconds();
  out.alive_spawn_ns = per((c1 - c0) * 1e9, r.n);
  out.alive_finish_ns = per((c2 - c1) * 1e9, r.n);
  c0 = cpu_seconds();
  for (uint64_t i = 0; i < r.n; ++i) {
    auto h = rt.spawn(empty_task());
    co_await h;
  }
  out.seq_ns = per((cpu_seconds() - c0) * 1e9, r.n);
}

int run_tasks_one(uint64_t n) {
  auto rt = make_runtime();
  park_run r;
  r.n = n;
  task_numbers t;
  if (n > 0) rt->block_on(tasks_main(r, t));
  std::printf(
      "scale tasks: %llu tasks: spawn+run+join one at a time %.0f ns each; all alive at once: spawn+park %.0f ns, "
      "wake+finish %.0f ns, %.0f bytes of RSS (%.0f of heap) each; errors %llu\n",
      static_cast<unsigned long long>(n), t.seq_ns, t.alive_spawn_ns, t.alive_finish_ns, t.rss_per_task,
      t.heap_per_task, static_cast<unsigned long long>(r.errors));
  json_object j;
  j.add("bench", "scale").add("part", "tasks").add("n", n).add("seq_ns_per_task", t.seq_ns);
  j.add("alive_spawn_ns_per_task", t.alive_spawn_ns).add("alive_finish_ns_per_task", t.alive_finish_ns);
  j.add("rss_bytes_per_task", t.rss_per_task).add("heap_bytes_per_task", t.heap_per_task);
  j.add("errors", r.errors);
  std::printf("%s\n", j.str().c_str());
  return r.errors == 0 && r.done == n ? 0 : 1;
}

// ---- idle --------------------------------------------------------------------

int run_idle_one(uint64_t n, bool multishot) {
  idle_config cfg;
  cfg.conns = n;
  cfg.multishot = multishot;
  const idle_result r = run_idle(cfg);
  const char* mode = multishot ? "multishot" : "plain";
  if (!r.failure.empty()) {
    std::string why = r.failure;
    if (r.fd_limit) {
      // Each connection is a descriptor in the server (and one in the client).
      rlimit lim{};
      ::getrlimit(RLIMIT_NOFILE, &lim);
      why += ": the hard limit is " + std::to_string(lim.rlim_max) +
             " and raising it needs CAP_SYS_RESOURCE; at most " +
             std::to_string(lim.rlim_max > 256 ? lim.rlim_max - 256 : 0) + " connections fit here";
    }
    std::printf("scale idle %s: %llu connections: not measured: %s\n", mode, static_cast<unsigned long long>(n),
                why.c_str());
    json_object j;
    j.add("bench", "scale").add("part", "idle").add("mode", mode).add("n", n).add("failure", why);
    std::printf("%s\n", j.str().c_str());
    return r.fd_limit ? 0 : 1;  // a limit of this machine, stated, is not a failure of coil
  }
  std::printf(
      "scale idle %s: %llu connections: server VmRSS %.1f -> %.1f MiB: %.0f bytes per connection (%.0f counting "
      "the runtime's start-up)\n",
      mode, static_cast<unsigned long long>(n), static_cast<double>(r.rss_before) / (1 << 20),
      static_cast<double>(r.rss_after) / (1 << 20), r.rss_bytes_per_conn, r.process_bytes_per_conn);
  json_object j;
  j.add("bench", "scale").add("part", "idle").add("mode", mode).add("n", n);
  j.add("rss_bytes_per_conn", r.rss_bytes_per_conn).add("process_rss_bytes_per_conn", r.process_bytes_per_conn);
  j.add("rss_before", r.rss_before).add("rss_after", r.rss_after);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

// ---- driver ------------------------------------------------------------------

bool parse_list(const char* text, std::vector<uint64_t>& out) {
  out.clear();
  std::string s(text);
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = s.find(',', at);
    const std::string item = s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    uint64_t v = 0;
    if (!parse_u64(item.c_str(), v, 0, uint64_t{1} << 32)) return false;
    out.push_back(v);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return !out.empty();
}

bool parse_scale(int argc, char** argv, scale_options& o) {
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    bool ok = v != nullptr;
    if (a == "--one") {
      o.one = true;
      continue;
    }
    if (a == "--timers") {
      ok = ok && parse_list(v, o.timers);
    } else if (a == "--conns") {
      ok = ok && parse_list(v, o.conns);
    } else if (a == "--tasks") {
      ok = ok && parse_list(v, o.tasks);
    } else if (a == "--spread-ms") {
      ok = ok && parse_u64(v, o.spread_ms, 0, 3'600'000);
    } else if (a == "--only") {
      o.only = ok ? v : "";
      ok = ok && (o.only == "timers" || o.only == "idle" || o.only == "tasks");
    } else if (a == "--mode") {
      o.mode = ok ? v : "";
      ok = ok && (o.mode == "multishot" || o.mode == "plain");
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr,
                   "coil-bench scale [--only timers|idle|tasks] [--timers N,N..] [--conns N,N..] [--tasks N,N..] "
                   "[--spread-ms MS] [--mode multishot|plain]\n  bad or missing value at '%s'\n",
                   a.c_str());
      return false;
    }
    ++i;
  }
  return true;
}

// This program again, for one part at one size; its output goes straight to ours.
int run_child(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& s : copy) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  pid_t pid = -1;
  const int r = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ);
  if (r != 0) {
    std::fprintf(stderr, "coil-bench: scale: spawn: %s\n", std::strerror(r));
    return 1;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace

int cmd_scale(int argc, char** argv) {
  scale_options o;
  if (!parse_scale(argc, argv, o)) return 2;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const bool multishot = o.mode != "plain";
  if (o.one) {
    if (o.only == "timers" && o.timers.size() == 1) return run_timers_one(o.timers[0], o.spread_ms);
    if (o.only == "tasks" && o.tasks.size() == 1) return run_tasks_one(o.tasks[0]);
    if (o.only == "idle" && o.conns.size() == 1) return run_idle_one(o.conns[0], multishot);
    std::fprintf(stderr, "coil-bench: scale --one needs --only and one size\n");
    return 2;
  }
  int failed = 0;
  const std::string spread = std::to_string(o.spread_ms);
  if (o.only.empty() || o.only == "timers") {
    for (uint64_t n : o.timers) {
      failed |= run_child({"coil-bench", "scale", "--one", "--only", "timers", "--timers", std::to_string(n),
                           "--spread-ms", spread});
    }
  }
  if (o.only.empty() || o.only == "tasks") {
    for (uint64_t n : o.tasks) {
      failed |= run_child({"coil-bench", "scale", "--one", "--only", "tasks", "--tasks", std::to_string(n)});
    }
  }
  if (o.only.empty() || o.only == "idle") {
    std::vector<std::string> modes;
    if (o.mode.empty() || o.mode == "multishot") modes.emplace_back("multishot");
    if (o.mode.empty() || o.mode == "plain") modes.emplace_back("plain");
    for (const auto& m : modes) {
      for (uint64_t n : o.conns) {
        failed |= run_child({"coil-bench", "scale", "--one", "--only", "idle", "--conns", std::to_string(n), "--mode", m});
      }
    }
  }
  return failed != 0 ? 1 : 0;
}

}  // namespace coil_bench
