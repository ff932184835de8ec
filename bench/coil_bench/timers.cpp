// timers: many tasks, each sleeping a random 1-10 ms over and over. Measures
// how many timers the runtime fires per second and how late they fire
// (resumed-at minus deadline), which includes waiting behind the other
// tasks resumed in the same loop turn: the lateness a task really sees.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "benches.hpp"
#include "histogram.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/time.hpp"

namespace coil_bench {
namespace {

struct timer_shared {
  bool stop = false;
  uint64_t fired = 0;
  uint64_t errors = 0;
  latency_histogram lateness;
};

coil::task<void> sleeper(const timers_config& cfg, uint64_t seed, timer_shared& s) {
  coil::runtime& rt = *coil::runtime::current();
  rng r(seed);
  const uint64_t min_ns = cfg.min_ms * 1'000'000;
  const uint64_t span_ns = (cfg.max_ms - cfg.min_ms) * 1'000'000 + 1;
  while (!s.stop) {
    const int64_t deadline = rt.now_ns() + static_cast<int64_t>(min_ns + r.below(span_ns));
    auto ok = co_await coil::sleep_until_ns(deadline);
    const int64_t late = rt.now_ns() - deadline;
    if (!ok || late < 0) {
      ++s.errors;  // a timer must never fire early
      continue;
    }
    // Sleeps that end after the clock stopped are neither counted nor timed.
    if (s.stop) break;
    s.lateness.record(static_cast<uint64_t>(late));
    ++s.fired;
  }
}

coil::task<void> timers_main(const timers_config& cfg, progress* prog, timer_shared& s, measured& m) {
  coil::runtime& rt = *coil::runtime::current();
  std::vector<coil::join_handle<void>> sleepers;
  sleepers.reserve(cfg.tasks);
  const run_clock clock;
  for (uint64_t i = 0; i < cfg.tasks; ++i) sleepers.push_back(rt.spawn(sleeper(cfg, i + 1, s)));
  co_await stop_after(cfg.seconds, s.stop, prog, s.fired, "timers/s");
  // The clock stops here, not after the drain: the sleeps still pending (up
  // to max_ms) are not counted, so their time must not be either.
  clock.stop(m);
  for (auto& h : sleepers) co_await h;
}

// tasks / mean sleep: the rate with zero lateness.
double ideal_rate(const timers_config& cfg) {
  const double mean_ms = static_cast<double>(cfg.min_ms + cfg.max_ms) / 2;
  return static_cast<double>(cfg.tasks) / (mean_ms * 1e-3);
}

}  // namespace

timers_result run_timers_coil(const timers_config& cfg, progress* prog) {
  timers_result out;
  auto rt = coil::runtime::create();
  if (!rt) {
    std::fprintf(stderr, "coil-bench: runtime::create: %s\n", rt.error().message().c_str());
    std::exit(1);
  }
  // The histogram is 15 KiB of counters: keep it off the stack.
  auto s = std::make_unique<timer_shared>();
  (*rt)->block_on(timers_main(cfg, prog, *s, out));
  out.fired = s->fired;
  out.errors = s->errors;
  out.ideal_per_s = ideal_rate(cfg);
  out.late_p50_us = static_cast<double>(s->lateness.quantile(0.50)) * 1e-3;
  out.late_p99_us = static_cast<double>(s->lateness.quantile(0.99)) * 1e-3;
  out.late_max_us = static_cast<double>(s->lateness.max()) * 1e-3;
  out.stats = (*rt)->stats();
  return out;
}

timers_result run_timers_peer(const timers_config& cfg, const std::string& impl) {
  timers_result out;
  std::string text;
  out.failure = run_peer(impl, {"timers", std::to_string(cfg.tasks), std::to_string(cfg.min_ms),
                                std::to_string(cfg.max_ms), std::to_string(cfg.seconds)},
                         text);
  if (!out.failure.empty()) return out;
  unsigned long long fired = 0, errors = 0, p50 = 0, p99 = 0, max = 0;
  if (std::sscanf(text.c_str(), "%llu %llu %lf %lf %llu %llu %llu", &fired, &errors, &out.seconds, &out.cpu_seconds,
                  &p50, &p99, &max) != 7) {
    out.failure = "coil-peer-" + impl + " printed no result: " + text;
    return out;
  }
  out.fired = fired;
  out.errors = errors;
  out.ideal_per_s = ideal_rate(cfg);
  out.late_p50_us = static_cast<double>(p50) * 1e-3;
  out.late_p99_us = static_cast<double>(p99) * 1e-3;
  out.late_max_us = static_cast<double>(max) * 1e-3;
  return out;
}

}  // namespace coil_bench
