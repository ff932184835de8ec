// tour: the showcase. Runs every benchmark with its baselines back to back
// (~30 s by default), then prints one comparison table and a JSON summary.
// Each coil run is followed directly by its baselines, so they see the same
// machine state (page cache, CPU frequency, neighbours' load).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "benches.hpp"
#include "common.hpp"

namespace coil_bench {
namespace {

constexpr double default_step_seconds = 4.0;  // six timed steps: ~25 s, plus preparing the file
constexpr int step_count = 6;

// snprintf rather than string concatenation: g++ 12 at -O3 reports a false
// -Wrestrict on `"literal" + std::string` chains.
std::string step_label(int step, const char* what) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "[%d/%d] %s", step, step_count, what);
  return buf;
}

std::string ratio_text(double num, double den, const char* versus) {
  if (den <= 0) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2fx %s", num / den, versus);
  return buf;
}

void table_row(const char* bench, const char* impl, double rate, const char* unit, const std::string& detail,
               const std::string& ratio) {
  const std::string r = human(rate) + " " + unit;
  std::printf("  %-20s %-6s %16s  %-28s %s\n", bench, impl, r.c_str(), detail.c_str(), ratio.c_str());
}

std::string per_op(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ns/op", rate > 0 ? 1e9 / rate : 0.0);
  return buf;
}

void stats_line(bool wanted, const char* bench, const std::optional<coil::runtime_stats>& s) {
  if (wanted && s) std::printf("%s\n", stats_json(bench, "coil", *s).str().c_str());
}

}  // namespace

int run_tour(const options& opts) {
  const double secs = opts.seconds_given ? opts.seconds : default_step_seconds;
  const bool own_file = opts.file.empty();
  randread_config rcfg;
  rcfg.path = own_file ? default_data_path() : opts.file;
  rcfg.bs = 4096;
  rcfg.qd = 32;
  rcfg.seconds = secs;

  if (opts.cpu >= 0) {
    std::printf("coil-bench tour: %.1f s per step, pinned to CPU %d\n", secs, opts.cpu);
  } else {
    std::printf("coil-bench tour: %.1f s per step, not pinned (try --cpu 0)\n", secs);
  }
  const uint64_t want_size = opts.size_bytes.value_or(uint64_t{1} << 30);
  auto size = ensure_data_file(rcfg.path, own_file ? std::optional<uint64_t>(want_size) : opts.size_bytes, own_file);
  if (!size || *size < rcfg.bs) {
    std::fprintf(stderr, "coil-bench: tour needs a data file of at least 4 KiB at %s\n", rcfg.path.c_str());
    return 1;
  }
  rcfg.file_size = *size;
  std::printf("data file: %s (%s; set TMPDIR to move it, --size to shrink it)\n", rcfg.path.c_str(),
              human_bytes(rcfg.file_size).c_str());
  std::fprintf(stderr, "  warming the page cache\n");
  if (!warm_page_cache(rcfg.path)) std::fprintf(stderr, "coil-bench: warming the page cache failed\n");

  nop_result nop_coil, nop_uring;
  randread_result rr_coil, rr_uring, rr_pread;
  timers_result tm;
  timers_config tcfg;
  tcfg.tasks = opts.timer_tasks;
  tcfg.min_ms = opts.timer_min_ms;
  tcfg.max_ms = opts.timer_max_ms;
  tcfg.seconds = secs;
  {
    progress p(step_label(1, "nop coil"), secs);
    nop_coil = run_nop_coil(opts.tasks, secs, &p);
  }
  {
    progress p(step_label(2, "nop uring"), secs);
    nop_uring = run_nop_uring(opts.tasks, secs, &p);
  }
  {
    progress p(step_label(3, "randread coil"), secs);
    rr_coil = run_randread_coil(rcfg, &p);
  }
  {
    progress p(step_label(4, "randread uring"), secs);
    rr_uring = run_randread_uring(rcfg, &p);
  }
  {
    progress p(step_label(5, "randread pread"), secs);
    rr_pread = run_randread_pread(rcfg, &p);
  }
  {
    progress p(step_label(6, "timers coil"), secs);
    tm = run_timers_coil(tcfg, &p);
  }
  for (const auto* r : {&rr_coil, &rr_uring, &rr_pread}) {
    if (!r->failure.empty()) std::fprintf(stderr, "coil-bench: randread: %s\n", r->failure.c_str());
  }

  char nop_name[32];
  std::snprintf(nop_name, sizeof nop_name, "nop x%llu", static_cast<unsigned long long>(opts.tasks));
  char timer_name[48];
  std::snprintf(timer_name, sizeof timer_name, "timers %llux%llu-%llums",
                static_cast<unsigned long long>(tcfg.tasks), static_cast<unsigned long long>(tcfg.min_ms),
                static_cast<unsigned long long>(tcfg.max_ms));
  char late[64];
  std::snprintf(late, sizeof late, "late p50 %.0f p99 %.0f us", tm.late_p50_us, tm.late_p99_us);

  std::printf("\n  %-20s %-6s %16s  %-28s %s\n", "benchmark", "impl", "rate", "detail", "coil vs baseline");
  table_row(nop_name, "coil", nop_coil.ops_per_s(), "ops/s", per_op(nop_coil.ops_per_s()),
            ratio_text(nop_coil.ops_per_s(), nop_uring.ops_per_s(), "raw uring (target >= 0.5x)"));
  table_row(nop_name, "uring", nop_uring.ops_per_s(), "ops/s", per_op(nop_uring.ops_per_s()), "");
  table_row("randread 4K qd32", "coil", rr_coil.iops(), "IOPS", per_op(rr_coil.iops()),
            ratio_text(rr_coil.iops(), rr_uring.iops(), "raw uring (target >= 0.9x), ") +
                ratio_text(rr_coil.iops(), rr_pread.iops(), "pread"));
  table_row("randread 4K qd32", "uring", rr_uring.iops(), "IOPS", per_op(rr_uring.iops()), "");
  table_row("randread 4K qd1", "pread", rr_pread.iops(), "IOPS", per_op(rr_pread.iops()), "");
  table_row(timer_name, "coil", tm.fired_per_s(), "fired/s", late,
            ratio_text(tm.fired_per_s(), tm.ideal_per_s, "of the no-lateness rate"));
  std::printf("  (buffered reads from a warm page cache; numbers are noisy when other work shares the CPUs)\n\n");

  stats_line(opts.stats, "nop", nop_coil.stats);
  stats_line(opts.stats, "randread", rr_coil.stats);
  stats_line(opts.stats, "timers", tm.stats);

  const uint64_t errors = nop_coil.errors + nop_uring.errors + rr_coil.errors + rr_uring.errors + rr_pread.errors +
                          tm.errors + (rr_coil.failure.empty() && rr_uring.failure.empty() && rr_pread.failure.empty()
                                           ? 0
                                           : 1);
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  json_object j;
  j.add("bench", "tour").add("seconds_per_step", secs).add("file", rcfg.path).add("file_bytes", rcfg.file_size);
  j.add("nop_coil_ops_per_s", nop_coil.ops_per_s()).add("nop_uring_ops_per_s", nop_uring.ops_per_s());
  j.add("nop_ratio_uring", ratio(nop_coil.ops_per_s(), nop_uring.ops_per_s()));
  j.add("randread_coil_iops", rr_coil.iops()).add("randread_uring_iops", rr_uring.iops());
  j.add("randread_pread_iops", rr_pread.iops());
  j.add("randread_ratio_uring", ratio(rr_coil.iops(), rr_uring.iops()));
  j.add("randread_ratio_pread", ratio(rr_coil.iops(), rr_pread.iops()));
  j.add("timers_fired_per_s", tm.fired_per_s()).add("timers_ideal_per_s", tm.ideal_per_s);
  j.add("timers_late_p50_us", tm.late_p50_us).add("timers_late_p99_us", tm.late_p99_us);
  j.add("errors", errors);
  std::printf("%s\n", j.str().c_str());
  return errors == 0 ? 0 : 1;
}

}  // namespace coil_bench
