// coil-bench: coil against raw liburing and plain syscalls, in one process so
// ratios come from one run on one machine state. Human-readable lines first;
// the last stdout line of every command is one JSON object, for scripts.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "benches.hpp"
#include "common.hpp"
#include "copy.hpp"
#include "echo.hpp"
#include "idle.hpp"

namespace coil_bench {
namespace {

void print_stats_line(const char* bench, const std::optional<coil::runtime_stats>& s, bool wanted) {
  if (wanted && s) std::printf("%s\n", stats_json(bench, "coil", *s).str().c_str());
}

int cmd_nop(const options& opts) {
  const bool raw = opts.baseline == "uring";
  if (!opts.baseline.empty() && !raw) {
    std::fprintf(stderr, "coil-bench: nop supports --baseline uring only\n");
    return 2;
  }
  const char* impl = raw ? "uring" : "coil";
  nop_result r;
  {
    progress prog(std::string("nop ") + impl, opts.seconds);
    // --tasks is the number of NOPs in flight: tasks for coil, the batch size
    // for raw liburing.
    r = raw ? run_nop_uring(opts.tasks, opts.seconds, &prog) : run_nop_coil(opts.tasks, opts.seconds, &prog);
  }
  if (!r.failure.empty()) {
    std::fprintf(stderr, "coil-bench: nop %s: %s\n", impl, r.failure.c_str());
    return 1;
  }
  std::printf("nop %s: %llu %s, %.2f s: %s ops/s (%.1f ns/op; %.1f ns/op of CPU time), errors %llu\n", impl,
              static_cast<unsigned long long>(opts.tasks), raw ? "per batch" : "tasks", r.seconds,
              human(r.ops_per_s()).c_str(), 1e9 / r.ops_per_s(), 1e9 / r.ops_per_cpu_s(),
              static_cast<unsigned long long>(r.errors));
  print_stats_line("nop", r.stats, opts.stats);
  json_object j;
  j.add("bench", "nop").add("impl", impl).add("ops_per_s", r.ops_per_s()).add("tasks", opts.tasks);
  j.add("ops_per_cpu_s", r.ops_per_cpu_s()).add("seconds", r.seconds).add("cpu_seconds", r.cpu_seconds);
  j.add("errors", r.errors);
  std::printf("%s\n", j.str().c_str());
  return r.errors == 0 ? 0 : 1;
}

int cmd_timeout(const options& opts) {
  if (!opts.baseline.empty() && opts.baseline != "link") {
    std::fprintf(stderr, "coil-bench: timeout supports --baseline link only\n");
    return 2;
  }
  if (!opts.mode.empty() && opts.mode != "expire" && opts.mode != "complete") {
    std::fprintf(stderr, "coil-bench: timeout --mode is expire or complete\n");
    return 2;
  }
  timeout_config cfg;
  cfg.tasks = opts.tasks == 128 ? 16 : opts.tasks;  // 128 is the shared default
  cfg.seconds = opts.seconds;
  cfg.expire = opts.mode != "complete";
  cfg.link_form = opts.baseline == "link";
  const char* form = cfg.link_form ? "link" : "with_timeout";
  const char* mode = cfg.expire ? "expire" : "complete";
  timeout_result r;
  {
    progress prog(std::string("timeout ") + mode + " " + form, opts.seconds);
    r = run_timeout_coil(cfg, &prog);
  }
  const double ops = static_cast<double>(r.ops == 0 ? 1 : r.ops);
  const double enters = r.stats ? static_cast<double>(r.stats->io.enter_calls) / ops : 0;
  const double timers = r.stats ? static_cast<double>(r.stats->timers_fired) / ops : 0;
  const double cancels = r.stats ? static_cast<double>(r.stats->io.cancels) / ops : 0;
  std::printf(
      "timeout %s, %s: %llu tasks, %.2f s: %s ops/s (%.1f ns/op of CPU time); per op: %.3f enters, "
      "%.3f timers fired, %.3f cancels; errors %llu\n",
      mode, form, static_cast<unsigned long long>(cfg.tasks), r.seconds, human(r.ops_per_s()).c_str(),
      r.cpu_seconds * 1e9 / ops, enters, timers, cancels, static_cast<unsigned long long>(r.errors));
  print_stats_line("timeout", r.stats, opts.stats);
  json_object j;
  j.add("bench", "timeout").add("impl", "coil").add("mode", mode).add("form", form).add("tasks", cfg.tasks);
  j.add("ops_per_s", r.ops_per_s()).add("enters_per_op", enters).add("timers_per_op", timers);
  j.add("cancels_per_op", cancels).add("seconds", r.seconds).add("cpu_seconds", r.cpu_seconds).add("errors", r.errors);
  std::printf("%s\n", j.str().c_str());
  return r.errors == 0 ? 0 : 1;
}

int cmd_randread(const options& opts) {
  const std::string impl = opts.baseline.empty() ? "coil" : opts.baseline;
  if (impl != "coil" && impl != "uring" && impl != "pread" && impl != "asio-uring") {
    std::fprintf(stderr, "coil-bench: randread supports --baseline uring|pread|asio-uring\n");
    return 2;
  }
  randread_config cfg;
  const bool own_file = opts.file.empty();
  cfg.path = own_file ? default_data_path() : opts.file;
  cfg.bs = opts.bs;
  cfg.qd = opts.qd;
  cfg.seconds = opts.seconds;
  cfg.direct = opts.direct;
  cfg.driver = opts.driver;
  if (opts.submit_batch) cfg.submit_batch = static_cast<unsigned>(*opts.submit_batch);
  if (opts.device_batch) cfg.device_submit_batch = static_cast<unsigned>(*opts.device_batch);
  cfg.inline_reads = opts.inline_reads;
  if (cfg.driver == "aio" && !cfg.direct) {
    std::fprintf(stderr, "coil-bench: --driver aio needs --direct (Linux AIO is asynchronous only for O_DIRECT)\n");
    return 2;
  }
  if (cfg.direct && cfg.bs % 512 != 0) {
    std::fprintf(stderr, "coil-bench: --direct needs --bs to be a multiple of the block size (512 or 4096)\n");
    return 2;
  }
  // Our default file may be replaced to fit --size; a file the user named is
  // never overwritten.
  auto size = ensure_data_file(cfg.path, opts.size_bytes, own_file);
  if (!size) return 1;
  cfg.file_size = *size;
  if (cfg.file_size < cfg.bs) {
    std::fprintf(stderr, "coil-bench: %s is smaller than one block (%llu bytes)\n", cfg.path.c_str(),
                 static_cast<unsigned long long>(cfg.bs));
    return 2;
  }
  if (!cfg.direct) {
    std::fprintf(stderr, "  warming the page cache (reading %s once)\n", cfg.path.c_str());
    if (!warm_page_cache(cfg.path)) {
      // A file that cannot be read would be measured as a run of errors.
      std::fprintf(stderr, "coil-bench: cannot read %s: %s\n", cfg.path.c_str(), std::strerror(errno));
      return 1;
    }
  }
  randread_result r;
  {
    progress prog("randread " + impl, opts.seconds);
    if (impl == "uring") {
      r = run_randread_uring(cfg, &prog);
    } else if (impl == "pread") {
      r = run_randread_pread(cfg, &prog);
    } else if (impl == "asio-uring") {
      r = run_randread_peer(cfg, impl);
    } else {
      r = run_randread_coil(cfg, &prog);
    }
  }
  if (!r.failure.empty()) {
    std::fprintf(stderr, "coil-bench: randread %s: %s\n", impl.c_str(), r.failure.c_str());
    return 1;
  }
  std::printf(
      "randread %s: %s, bs %llu, qd %llu%s, %s: %.2f s: %s IOPS (%.0f MiB/s; %.0f ns of CPU time per read), "
      "errors %llu\n",
      impl.c_str(), cfg.path.c_str(), static_cast<unsigned long long>(cfg.bs),
      static_cast<unsigned long long>(impl == "pread" ? 1 : cfg.qd), impl == "pread" ? " (1 thread)" : "",
      cfg.direct ? "O_DIRECT" : "buffered", r.seconds, human(r.iops()).c_str(),
      r.iops() * static_cast<double>(cfg.bs) / (1 << 20), 1e9 / r.iops_per_cpu_s(),
      static_cast<unsigned long long>(r.errors));
  print_stats_line("randread", r.stats, opts.stats);
  json_object j;
  j.add("bench", "randread").add("impl", impl).add("iops", r.iops()).add("errors", r.errors);
  if (impl == "coil" && !cfg.driver.empty()) j.add("driver", cfg.driver);
  if (cfg.submit_batch) j.add("submit_batch", uint64_t{*cfg.submit_batch});
  if (cfg.device_submit_batch) j.add("device_submit_batch", uint64_t{*cfg.device_submit_batch});
  if (cfg.inline_reads) j.add("inline_reads", uint64_t{*cfg.inline_reads ? 1u : 0u});
  j.add("bs", cfg.bs).add("qd", impl == "pread" ? uint64_t{1} : cfg.qd).add("direct", cfg.direct);
  j.add("iops_per_cpu_s", r.iops_per_cpu_s()).add("seconds", r.seconds).add("cpu_seconds", r.cpu_seconds);
  std::printf("%s\n", j.str().c_str());
  return r.errors == 0 ? 0 : 1;
}

int cmd_timers(const options& opts) {
  const std::string impl = opts.baseline.empty() ? "coil" : opts.baseline;
  if (impl != "coil" && impl != "asio") {
    std::fprintf(stderr, "coil-bench: timers supports --baseline asio\n");
    return 2;
  }
  timers_config cfg;
  cfg.tasks = opts.timer_tasks;
  cfg.min_ms = opts.timer_min_ms;
  cfg.max_ms = opts.timer_max_ms;
  cfg.seconds = opts.seconds;
  timers_result r;
  {
    progress prog("timers " + impl, opts.seconds);
    r = impl == "coil" ? run_timers_coil(cfg, &prog) : run_timers_peer(cfg, impl);
  }
  if (!r.failure.empty()) {
    std::fprintf(stderr, "coil-bench: timers %s: %s\n", impl.c_str(), r.failure.c_str());
    return 1;
  }
  const double fired = static_cast<double>(r.fired);
  std::printf(
      "timers %s: %llu tasks sleeping %llu-%llu ms, %.2f s: %s fired/s (%.0f%% of the ideal %s/s; %.0f ns of CPU time "
      "each), late p50 %.1f us, p99 %.1f us, max %.1f us, errors %llu\n",
      impl.c_str(), static_cast<unsigned long long>(cfg.tasks), static_cast<unsigned long long>(cfg.min_ms),
      static_cast<unsigned long long>(cfg.max_ms), r.seconds, human(r.fired_per_s()).c_str(),
      100 * r.fired_per_s() / r.ideal_per_s, human(r.ideal_per_s).c_str(), fired > 0 ? r.cpu_seconds * 1e9 / fired : 0,
      r.late_p50_us, r.late_p99_us, r.late_max_us, static_cast<unsigned long long>(r.errors));
  print_stats_line("timers", r.stats, opts.stats);
  json_object j;
  j.add("bench", "timers").add("impl", impl).add("fired_per_s", r.fired_per_s());
  j.add("ideal_per_s", r.ideal_per_s).add("late_p50_us", r.late_p50_us).add("late_p99_us", r.late_p99_us);
  j.add("late_max_us", r.late_max_us).add("tasks", cfg.tasks).add("errors", r.errors);
  j.add("cpu_ns_per_fired", fired > 0 ? r.cpu_seconds * 1e9 / fired : 0);
  std::printf("%s\n", j.str().c_str());
  return r.errors == 0 ? 0 : 1;
}

// A distribution-free 95% confidence interval for the median: the order
// statistics at ranks n/2 -+ 0.98 sqrt(n) (normal approximation of the
// binomial; meaningful from about 10 samples).
std::pair<double, double> median_ci95(std::vector<double> v) {
  if (v.empty()) return {0, 0};
  std::sort(v.begin(), v.end());
  const double n = static_cast<double>(v.size());
  const double half = 0.98 * std::sqrt(n);
  const auto lo = static_cast<std::size_t>(std::max(0.0, std::floor(n / 2 - half)));
  const auto hi = static_cast<std::size_t>(std::min(n - 1, std::ceil(n / 2 + half) - 1));
  return {v[lo], v[hi]};
}

// Server CPU per trip moves by +-30% between runs on a shared VM (one
// connection means a sleep and a wake per trip): the servers alternate, and
// the medians of per-round ratios cancel drift that a coil run and a
// baseline run made minutes apart would not.
int cmd_echo_rounds(const options& opts, const std::string& coil_impl) {
  // coil's server first, then the baselines; multishot adds the same design
  // written by hand on raw liburing (the floor for any io_uring server).
  std::vector<std::string> impls = {coil_impl, "uring", "epoll"};
  if (coil_impl == "coil-multishot") impls.push_back("uring-multishot");
  const size_t floor_k = impls.size() - 1;  // uring-multishot, when present
  if (opts.peers) impls.insert(impls.end(), {"asio", "asio-uring", "libuv"});
  const size_t n_impl = impls.size();
  echo_config base;
  base.conns = opts.conns;
  base.msg = opts.msg;
  base.seconds = opts.seconds;
  const echo_rounds_result rr = run_echo_rounds(impls, base, opts.rounds, "echo");
  if (!rr.failure.empty()) {
    std::fprintf(stderr, "coil-bench: echo %s\n", rr.failure.c_str());
    return 1;
  }
  const auto& us = rr.us;
  const auto& user_us = rr.user_us;
  std::vector<std::vector<double>> ratio(n_impl);
  for (size_t k = 1; k < n_impl; ++k) ratio[k] = rr.ratios(0, k);
  // the hand-written multishot server against epoll
  const std::vector<double> floor_vs_epoll =
      impls[floor_k] == "uring-multishot" ? rr.ratios(floor_k, 2) : std::vector<double>{};
  auto label = [](const std::string& impl) {
    if (impl == "uring") return std::string("raw liburing");
    if (impl == "epoll") return std::string("raw epoll");
    if (impl == "uring-multishot") return std::string("raw liburing multishot");
    if (impl == "asio") return std::string("Asio (epoll)");
    if (impl == "asio-uring") return std::string("Asio (io_uring)");
    return impl;
  };
  std::printf("echo, %llu conns, %llu-byte messages, %llu rounds of %.1f s: median server CPU per trip (user):",
              static_cast<unsigned long long>(opts.conns), static_cast<unsigned long long>(opts.msg),
              static_cast<unsigned long long>(opts.rounds), opts.seconds);
  for (size_t k = 0; k < n_impl; ++k) {
    std::printf("%s %s %.2f us (%.2f)", k ? "," : "", label(impls[k]).c_str(), median(us[k]), median(user_us[k]));
  }
  std::printf("\n  median paired ratio [95%% confidence interval]:");
  for (size_t k = 1; k < n_impl; ++k) {
    const auto ci = median_ci95(ratio[k]);
    std::printf("%s %s/%s %.3f [%.3f..%.3f]", k > 1 ? "," : "", coil_impl.c_str(), impls[k].c_str(), median(ratio[k]),
                ci.first, ci.second);
  }
  if (!floor_vs_epoll.empty()) {
    const auto ci = median_ci95(floor_vs_epoll);
    std::printf(", uring-multishot/epoll %.3f [%.3f..%.3f]", median(floor_vs_epoll), ci.first, ci.second);
  }
  std::printf("\n");
  const bool counted = std::all_of(rr.pooled.begin(), rr.pooled.end(), [](const echo_result& r) { return r.kernel.has_value(); });
  if (counted) {
    std::printf("  server syscalls (context switches) per trip, all rounds:");
    for (size_t k = 0; k < n_impl; ++k) {
      const echo_result& p = rr.pooled[k];
      std::printf("%s %s %.3f (%.3f)", k ? "," : "", label(impls[k]).c_str(), p.per_trip(p.kernel->syscalls),
                  p.per_trip(p.kernel->switches));
    }
    std::printf("\n");
  }
  json_object j;
  j.add("bench", "echo").add("impl", "paired").add("coil", coil_impl).add("conns", opts.conns).add("msg", opts.msg);
  j.add("rounds", opts.rounds).add("seconds", opts.seconds);
  j.add("coil_us_per_trip", median(us[0])).add("coil_user_us_per_trip", median(user_us[0]));
  for (size_t k = 1; k < n_impl; ++k) {
    std::string key = impls[k];
    for (char& c : key) c = c == '-' ? '_' : c;
    const auto ci = median_ci95(ratio[k]);
    const std::string vs = "coil_vs_" + key;
    j.add((key + "_us_per_trip").c_str(), median(us[k])).add((key + "_user_us_per_trip").c_str(), median(user_us[k]));
    j.add(vs.c_str(), median(ratio[k]));
    j.add((vs + "_ci95_lo").c_str(), ci.first).add((vs + "_ci95_hi").c_str(), ci.second);
  }
  if (counted) {
    for (size_t k = 0; k < n_impl; ++k) {
      std::string key = k == 0 ? std::string("coil") : impls[k];
      for (char& c : key) c = c == '-' ? '_' : c;
      const echo_result& p = rr.pooled[k];
      j.add((key + "_syscalls_per_trip").c_str(), p.per_trip(p.kernel->syscalls));
      j.add((key + "_switches_per_trip").c_str(), p.per_trip(p.kernel->switches));
    }
  }
  if (!floor_vs_epoll.empty()) j.add("uring_multishot_vs_epoll", median(floor_vs_epoll));
  std::printf("%s\n", j.str().c_str());
  return 0;
}

int cmd_echo(const options& opts) {
  if (opts.rounds > 0 && !opts.baseline.empty()) {
    std::fprintf(stderr, "coil-bench: echo --rounds runs both baselines itself (no --baseline)\n");
    return 2;
  }
  if (!opts.baseline.empty() && opts.baseline != "uring" && opts.baseline != "epoll" &&
      opts.baseline != "uring-multishot" && !is_echo_peer(opts.baseline)) {
    std::fprintf(stderr, "coil-bench: echo supports --baseline uring|epoll|uring-multishot|asio|asio-uring|libuv\n");
    return 2;
  }
  if (opts.peers && opts.rounds == 0) {
    std::fprintf(stderr, "coil-bench: echo --peers goes with --rounds (one peer alone: --baseline asio|...)\n");
    return 2;
  }
  if (!opts.mode.empty() && (opts.mode != "multishot" || !opts.baseline.empty())) {
    std::fprintf(stderr, "coil-bench: echo supports --mode multishot (coil's server only)\n");
    return 2;
  }
  echo_config cfg;
  cfg.impl = !opts.baseline.empty() ? opts.baseline : opts.mode == "multishot" ? "coil-multishot" : "coil";
  if (opts.rounds > 0) return cmd_echo_rounds(opts, cfg.impl);
  cfg.conns = opts.conns;
  cfg.msg = opts.msg;
  cfg.seconds = opts.seconds;
  echo_result r;
  {
    progress prog("echo " + cfg.impl, opts.seconds);
    r = run_echo(cfg);
  }
  if (!r.failure.empty()) {
    std::fprintf(stderr, "coil-bench: echo %s: %s\n", cfg.impl.c_str(), r.failure.c_str());
    return 1;
  }
  std::printf("echo %s: %llu conns, %llu-byte messages, %.2f s: %s round trips/s, %.2f us of server CPU per trip, "
              "errors %llu\n",
              cfg.impl.c_str(), static_cast<unsigned long long>(cfg.conns), static_cast<unsigned long long>(cfg.msg),
              r.seconds, human(r.trips_per_s()).c_str(), r.server_cpu_us_per_trip(),
              static_cast<unsigned long long>(r.errors));
  print_stats_line("echo", r.stats, opts.stats);
  json_object j;
  j.add("bench", "echo").add("impl", cfg.impl).add("trips_per_s", r.trips_per_s());
  j.add("server_cpu_us_per_trip", r.server_cpu_us_per_trip()).add("server_user_us_per_trip", r.server_user_us_per_trip());
  if (r.kernel) {
    j.add("server_syscalls_per_trip", r.per_trip(r.kernel->syscalls));
    j.add("server_switches_per_trip", r.per_trip(r.kernel->switches));
  }
  j.add("conns", cfg.conns).add("msg", cfg.msg);
  j.add("seconds", r.seconds).add("server_cpu_seconds", r.server_cpu_seconds).add("errors", r.errors);
  std::printf("%s\n", j.str().c_str());
  return r.errors == 0 ? 0 : 1;
}

int cmd_idle(const options& opts) {
  if (!opts.mode.empty() && opts.mode != "plain" && opts.mode != "multishot") {
    std::fprintf(stderr, "coil-bench: idle supports --mode plain|multishot\n");
    return 2;
  }
  idle_config cfg;
  cfg.conns = opts.conns_given ? opts.conns : 10'000;
  cfg.multishot = opts.mode != "plain";
  const idle_result r = run_idle(cfg);
  if (!r.failure.empty()) {
    std::fprintf(stderr, "coil-bench: idle: %s\n", r.failure.c_str());
    return 1;
  }
  const char* mode = cfg.multishot ? "multishot" : "plain";
  std::printf(
      "idle %s: %llu connections waiting for data: server RSS %.1f -> %.1f MiB, %.0f bytes per connection; "
      "whole process (from %.1f MiB, before the runtime): %.0f bytes per connection\n",
      mode, static_cast<unsigned long long>(r.conns), static_cast<double>(r.rss_before) / (1 << 20),
      static_cast<double>(r.rss_after) / (1 << 20), r.rss_bytes_per_conn, static_cast<double>(r.rss_start) / (1 << 20),
      r.process_bytes_per_conn);
  json_object j;
  j.add("bench", "idle").add("mode", mode).add("conns", r.conns).add("rss_bytes_per_conn", r.rss_bytes_per_conn);
  j.add("process_rss_bytes_per_conn", r.process_bytes_per_conn);
  j.add("rss_start", r.rss_start).add("rss_before", r.rss_before).add("rss_after", r.rss_after);
  if (!cfg.multishot) j.add("recv_buffer", cfg.plain_buffer);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

// Buffered copy and splice alternate, rounds times each; medians and their ratio.
int cmd_copy(const options& opts) {
  const uint64_t buffer = opts.bs == 4096 ? 64 * 1024 : opts.bs;
  const uint64_t rounds = opts.rounds > 0 ? opts.rounds : 3;
  std::vector<double> plain, spliced;
  for (uint64_t i = 0; i < rounds; ++i) {
    for (bool splice : {false, true}) {
      const copy_result r = run_copy(splice, buffer, opts.seconds);
      if (!r.failure.empty()) {
        std::fprintf(stderr, "coil-bench: copy %s: %s\n", splice ? "splice" : "buffer", r.failure.c_str());
        return 1;
      }
      std::printf("copy %-6s round %llu: %.0f MB/s\n", splice ? "splice" : "buffer",
                  static_cast<unsigned long long>(i + 1), r.mb_per_s());
      (splice ? spliced : plain).push_back(r.mb_per_s());
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double p = median(plain), s = median(spliced);
  std::printf("copy, %llu-byte buffer, median of %llu rounds: buffer %.0f MB/s, splice %.0f MB/s, splice/buffer %.2f\n",
              static_cast<unsigned long long>(buffer), static_cast<unsigned long long>(rounds), p, s, p > 0 ? s / p : 0);
  json_object j;
  j.add("bench", "copy").add("buffer", buffer).add("rounds", rounds).add("buffer_mb_per_s", p);
  j.add("splice_mb_per_s", s).add("splice_ratio", p > 0 ? s / p : 0.0);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace
}  // namespace coil_bench

int main(int argc, char** argv) {
  using namespace coil_bench;
  if (argc >= 2 && std::strcmp(argv[1], "scatter") == 0) return cmd_scatter(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "scale") == 0) return cmd_scale(argc, argv);
#ifdef COIL_BENCH_TLS
  if (argc >= 2 && std::strcmp(argv[1], "tls") == 0) return cmd_tls(argc, argv);
#endif
  options opts;
  if (!parse_args(argc, argv, opts)) return 2;
  if (opts.cpu >= 0 && !pin_to_cpu(opts.cpu)) {
    std::fprintf(stderr, "coil-bench: cannot pin to CPU %d: %s\n", opts.cpu, std::strerror(errno));
    return 1;
  }
  // Line-buffered stdout: the JSON line must be complete when a pipe reads it.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (opts.command == "nop") return cmd_nop(opts);
  if (opts.command == "randread") return cmd_randread(opts);
  if (opts.command == "timers") return cmd_timers(opts);
  if (opts.command == "timeout") return cmd_timeout(opts);
  if (opts.command == "echo") return cmd_echo(opts);
  if (opts.command == "idle") return cmd_idle(opts);
  if (opts.command == "xcore") return cmd_xcore(opts);
  if (opts.command == "tour") return run_tour(opts);
  if (opts.command == "copy") return cmd_copy(opts);
  std::fprintf(stderr, "coil-bench: unknown command '%s'\n", opts.command.c_str());
  print_usage(stderr);
  return 2;
}
