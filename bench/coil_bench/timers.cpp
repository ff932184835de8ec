// timers: many tasks, each sleeping a random 1-10 ms over and over. Measures
// how many timers the runtime fires per second and how late they fire
// (resumed-at minus deadline), which includes waiting behind the other
// tasks resumed in the same loop turn: the lateness a task really sees.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "benches.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/time.hpp"

namespace coil_bench {
namespace {

// Log-linear histogram of nanosecond values: 32 linear buckets per power of
// two, so any percentile is within ~3% without keeping every sample.
class latency_histogram {
 public:
  void record(uint64_t ns) noexcept {
    ++counts_[index_of(ns)];
    ++total_;
    max_ = std::max(max_, ns);
  }
  // The smallest bucket bound with at least q of the samples at or below it.
  uint64_t quantile(double q) const noexcept {
    if (total_ == 0) return 0;
    const auto want = static_cast<uint64_t>(q * static_cast<double>(total_));
    uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > want) return std::min(upper_bound_of(i), max_);
    }
    return max_;
  }
  uint64_t max() const noexcept { return max_; }

 private:
  static constexpr unsigned sub_bits = 5;
  static constexpr uint64_t sub = uint64_t{1} << sub_bits;
  static std::size_t index_of(uint64_t v) noexcept {
    if (v < sub) return static_cast<std::size_t>(v);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
    const unsigned shift = msb - sub_bits;
    return static_cast<std::size_t>((shift + 1) * sub + ((v >> shift) & (sub - 1)));
  }
  static uint64_t upper_bound_of(std::size_t i) noexcept {
    if (i < sub) return i;
    const unsigned shift = static_cast<unsigned>(i / sub) - 1;
    return ((sub + i % sub + 1) << shift) - 1;
  }
  std::array<uint64_t, (64 - sub_bits + 1) * sub> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

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
  const double mean_ms = static_cast<double>(cfg.min_ms + cfg.max_ms) / 2;
  out.ideal_per_s = static_cast<double>(cfg.tasks) / (mean_ms * 1e-3);
  out.late_p50_us = static_cast<double>(s->lateness.quantile(0.50)) * 1e-3;
  out.late_p99_us = static_cast<double>(s->lateness.quantile(0.99)) * 1e-3;
  out.late_max_us = static_cast<double>(s->lateness.max()) * 1e-3;
  out.stats = (*rt)->stats();
  return out;
}

}  // namespace coil_bench
