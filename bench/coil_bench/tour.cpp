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
#include "echo.hpp"
#include "idle.hpp"
#include "raw_ring.hpp"

namespace coil_bench {
namespace {

constexpr double default_step_seconds = 4.0;  // thirteen timed steps: ~60 s, plus preparing the file
constexpr int step_count = 13;

// snprintf rather than string concatenation: g++ 12 at -O3 reports a false
// -Wrestrict on `"literal" + std::string` chains.
std::string step_label(int step, const char* what) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "[%d/%d] %s", step, step_count, what);
  return buf;
}

// One row: rate (wall clock), wall and CPU nanoseconds per operation, and
// the comparison text. The CPU column is the steadier one on a shared machine.
void table_row(const char* bench, const char* impl, double ops, const measured& m, const char* unit,
               const std::string& versus) {
  const double rate = m.seconds > 0 ? ops / m.seconds : 0;
  const std::string r = human(rate) + " " + unit;
  const double wall_ns = ops > 0 ? m.seconds * 1e9 / ops : 0;
  const double cpu_ns = ops > 0 ? m.cpu_seconds * 1e9 / ops : 0;
  std::printf("  %-19s %-10s %15s %9.1f %9.1f   %s\n", bench, impl, r.c_str(), wall_ns, cpu_ns, versus.c_str());
}

// "0.76x / 0.80x raw uring": wall-clock and CPU-time ratios of coil to a
// baseline, both as coil's speed over the baseline's (higher is better).
std::string versus(double ops, const measured& m, double base_ops, const measured& base, const char* name) {
  if (m.seconds <= 0 || base.seconds <= 0 || m.cpu_seconds <= 0 || base.cpu_seconds <= 0 || base_ops <= 0) return "";
  const double wall = (ops / m.seconds) / (base_ops / base.seconds);
  const double cpu = (ops / m.cpu_seconds) / (base_ops / base.cpu_seconds);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.2fx / %.2fx %s", wall, cpu, name);
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

  // The raw liburing baselines (and Asio's io_uring backend) need io_uring
  // itself; where seccomp or kernel.io_uring_disabled blocks it, coil runs
  // on epoll and the tour goes on without them.
  const int ring_probe = probe_raw_ring();
  const bool raw_ring = ring_probe == 0;
  const std::string no_ring = raw_ring ? "" : std::string("io_uring_queue_init: ") + std::strerror(-ring_probe);
  if (!raw_ring) {
    std::printf("raw io_uring unavailable (%s): skipping the raw-ring and Asio io_uring baselines\n", no_ring.c_str());
  }
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
  if (raw_ring) {
    progress p(step_label(2, "nop uring"), secs);
    nop_uring = run_nop_uring(opts.tasks, secs, &p);
  }
  {
    progress p(step_label(3, "randread coil"), secs);
    rr_coil = run_randread_coil(rcfg, &p);
  }
  if (raw_ring) {
    progress p(step_label(4, "randread uring"), secs);
    rr_uring = run_randread_uring(rcfg, &p);
  }
  {
    progress p(step_label(5, "randread pread"), secs);
    rr_pread = run_randread_pread(rcfg, &p);
  }
  // A peer: Boost.Asio's random_access_file on its io_uring backend, where built.
  const bool asio_files = raw_ring && !peer_path("asio-uring").empty();
  randread_result rr_asio;
  if (asio_files) {
    progress p(step_label(6, "randread asio-uring"), secs);
    rr_asio = run_randread_peer(rcfg, "asio-uring");
  }
  {
    progress p(step_label(7, "timers coil"), secs);
    tm = run_timers_coil(tcfg, &p);
  }
  const bool asio_built = !peer_path("asio").empty();
  timers_result tm_asio;
  if (asio_built) {
    progress p(step_label(8, "timers asio"), secs);
    tm_asio = run_timers_peer(tcfg, "asio");
  }
  // Echo: server on CPU 0, client process on CPU 1 (forked), 64 connections
  // of 64-byte messages; the baseline is a raw epoll server. Four rounds of
  // short runs in alternating order: the ratio is the median of the rounds'
  // (one pair swings by tens of percent on a shared VM), the rates pool them.
  echo_config ecfg;
  ecfg.seconds = secs / 4;
  echo_rounds_result echo;
  {
    progress p(step_label(9, "echo coil and epoll, 4 pairs"), 2 * secs);
    echo = run_echo_rounds({"coil", "epoll"}, ecfg, 4, "");
    p.finish();
  }
  // Peers: the same server written with Boost.Asio (on epoll, and on its
  // io_uring backend) and libuv, where they were built; three shorter rounds.
  std::vector<std::string> peer_impls = {"coil"};
  for (const char* impl : {"asio", "asio-uring", "libuv"}) {
    if (!peer_path(impl).empty() && (raw_ring || std::strcmp(impl, "asio-uring") != 0)) peer_impls.push_back(impl);
  }
  echo_rounds_result peers;
  constexpr uint64_t peer_rounds = 3;
  if (peer_impls.size() > 1) {
    ecfg.seconds = secs / 8;
    progress p(step_label(10, "echo coil and peers, 3 rounds"),
               ecfg.seconds * peer_rounds * static_cast<double>(peer_impls.size()));
    peers = run_echo_rounds(peer_impls, ecfg, peer_rounds, "");
    p.finish();
  }
  // Memory: 10,000 idle connections, each waiting in a multishot recv on one
  // shared buffer ring (the clients are a second process).
  idle_result idle;
  {
    progress p(step_label(11, "idle 10,000 connections"), 2);
    idle = run_idle_fresh(idle_config{});
    p.finish();
  }
  // The packet layer: scattered 64-byte objects of the same file, read
  // through a mapping (mmap_space) and by a pread loop.
  scatter_step_result sc_coil, sc_pread;
  {
    progress p(step_label(12, "scatter coil-mmap"), secs);
    sc_coil = run_scatter_step(rcfg.path, rcfg.file_size, "coil-mmap", secs, &p);
  }
  {
    progress p(step_label(13, "scatter pread"), secs);
    sc_pread = run_scatter_step(rcfg.path, rcfg.file_size, "pread", secs, &p);
  }
  if (!nop_uring.failure.empty()) std::fprintf(stderr, "coil-bench: nop uring: %s\n", nop_uring.failure.c_str());
  for (const auto* r : {&sc_coil, &sc_pread}) {
    if (!r->failure.empty()) std::fprintf(stderr, "coil-bench: scatter: %s\n", r->failure.c_str());
  }
  for (const auto* r : {&rr_coil, &rr_uring, &rr_pread, &rr_asio}) {
    if (!r->failure.empty()) std::fprintf(stderr, "coil-bench: randread: %s\n", r->failure.c_str());
  }

  char nop_name[32];
  std::snprintf(nop_name, sizeof nop_name, "nop x%llu", static_cast<unsigned long long>(opts.tasks));
  char timer_name[48];
  std::snprintf(timer_name, sizeof timer_name, "timers %llux%llu-%llums", static_cast<unsigned long long>(tcfg.tasks),
                static_cast<unsigned long long>(tcfg.min_ms), static_cast<unsigned long long>(tcfg.max_ms));
  const auto ops = [](uint64_t n) { return static_cast<double>(n); };
  std::printf("\n  %-19s %-10s %15s %9s %9s   %s\n", "benchmark", "impl", "rate", "ns/op", "cpu ns/op",
              "coil vs baseline (wall / cpu)");
  const std::string skipped = "raw uring skipped: " + no_ring;
  table_row(nop_name, "coil", ops(nop_coil.ops), nop_coil, "ops/s",
            raw_ring ? versus(ops(nop_coil.ops), nop_coil, ops(nop_uring.ops), nop_uring, "raw uring (target >= 0.5x)")
                     : skipped);
  if (raw_ring) table_row(nop_name, "uring", ops(nop_uring.ops), nop_uring, "ops/s", "");
  table_row("randread 4K qd32", "coil", ops(rr_coil.reads), rr_coil, "IOPS",
            raw_ring ? versus(ops(rr_coil.reads), rr_coil, ops(rr_uring.reads), rr_uring, "raw uring (target >= 0.9x)")
                     : skipped);
  if (raw_ring) table_row("randread 4K qd32", "uring", ops(rr_uring.reads), rr_uring, "IOPS", "");
  table_row("randread 4K qd1", "pread", ops(rr_pread.reads), rr_pread, "IOPS",
            "coil: " + versus(ops(rr_coil.reads), rr_coil, ops(rr_pread.reads), rr_pread, "pread"));
  if (asio_files) {
    table_row("randread 4K qd32", "asio-uring", ops(rr_asio.reads), rr_asio, "IOPS",
              "coil: " + versus(ops(rr_coil.reads), rr_coil, ops(rr_asio.reads), rr_asio, "Asio on io_uring"));
  }
  table_row(timer_name, "coil", ops(tm.fired), tm, "fired/s", "");
  std::printf("  timers: %.0f%% of the no-lateness rate (%s/s); lateness p50 %.1f us, p99 %.1f us, max %.1f us\n",
              100 * tm.fired_per_s() / tm.ideal_per_s, human(tm.ideal_per_s).c_str(), tm.late_p50_us, tm.late_p99_us,
              tm.late_max_us);
  if (asio_built && tm_asio.failure.empty()) {
    table_row(timer_name, "asio", ops(tm_asio.fired), tm_asio, "fired/s",
              "coil: " + versus(ops(tm.fired), tm, ops(tm_asio.fired), tm_asio, "Asio"));
    std::printf("  timers asio: %.0f%% of the no-lateness rate; lateness p50 %.1f us, p99 %.1f us, max %.1f us\n",
                100 * tm_asio.fired_per_s() / tm_asio.ideal_per_s, tm_asio.late_p50_us, tm_asio.late_p99_us,
                tm_asio.late_max_us);
  } else if (!tm_asio.failure.empty()) {
    std::fprintf(stderr, "coil-bench: timers asio: %s\n", tm_asio.failure.c_str());
  }
  if (!echo.failure.empty()) std::fprintf(stderr, "coil-bench: echo %s\n", echo.failure.c_str());
  if (!peers.failure.empty()) std::fprintf(stderr, "coil-bench: echo %s\n", peers.failure.c_str());
  const echo_result& echo_coil = echo.pooled[0];
  const echo_result& echo_epoll = echo.pooled[1];
  const double echo_cpu_ratio = median(echo.ratios(0, 1));
  std::printf("  %-19s %-10s %11s trips/s %6.2f us server CPU per trip   coil/epoll CPU per trip: %.2fx "
              "(median of 4 pairs; target <= 1)\n",
              "echo 64 conns x 64B", "coil", human(echo_coil.trips_per_s()).c_str(), echo_coil.server_cpu_us_per_trip(),
              echo_cpu_ratio);
  std::printf("  %-19s %-10s %11s trips/s %6.2f us server CPU per trip\n", "echo 64 conns x 64B", "epoll",
              human(echo_epoll.trips_per_s()).c_str(), echo_epoll.server_cpu_us_per_trip());
  for (size_t k = 1; k < peer_impls.size() && peers.failure.empty(); ++k) {
    const echo_result& r = peers.pooled[k];
    std::printf("  %-19s %-10s %11s trips/s %6.2f us server CPU per trip   coil/%s: %.2fx (median of 3 rounds)\n",
                "echo 64 conns x 64B", peer_impls[k].c_str(), human(r.trips_per_s()).c_str(),
                r.server_cpu_us_per_trip(), peer_impls[k].c_str(), median(peers.ratios(0, k)));
  }
  if (peer_impls.size() == 1) {
    std::printf("  echo peers (Boost.Asio, libuv): not built; scripts/deps installs libboost1.81-dev and libuv1-dev\n");
  }
  if (idle.failure.empty()) {
    std::printf(
        "  %-19s %-10s %11.0f bytes of server memory per idle connection (multishot recv, shared ring; "
        "target < 1024); %.0f with the runtime and rings counted in\n",
        "idle 10,000 conns", "coil", idle.rss_bytes_per_conn, idle.process_bytes_per_conn);
  } else {
    std::fprintf(stderr, "coil-bench: idle: %s\n", idle.failure.c_str());
  }
  table_row("scatter 64B x100K", "coil", ops(sc_coil.reads), sc_coil, "reads/s",
            versus(ops(sc_coil.reads), sc_coil, ops(sc_pread.reads), sc_pread, "pread (target >= 4x)"));
  table_row("scatter 64B x100K", "pread", ops(sc_pread.reads), sc_pread, "reads/s", "");
  std::printf("  (buffered reads from a warm page cache; wall-clock rates drop when other work shares the CPUs)\n\n");

  stats_line(opts.stats, "nop", nop_coil.stats);
  stats_line(opts.stats, "randread", rr_coil.stats);
  stats_line(opts.stats, "timers", tm.stats);

  const uint64_t errors = nop_coil.errors + nop_uring.errors + (nop_uring.failure.empty() ? 0 : 1) + rr_coil.errors +
                          rr_uring.errors + rr_pread.errors + tm.errors + (echo.failure.empty() ? 0 : 1) +
                          (peers.failure.empty() ? 0 : 1) + (idle.failure.empty() || idle.fd_limit ? 0 : 1) +
                          (rr_coil.failure.empty() && rr_uring.failure.empty() && rr_pread.failure.empty() ? 0 : 1) +
                          rr_asio.errors + (rr_asio.failure.empty() ? 0 : 1) + tm_asio.errors +
                          (tm_asio.failure.empty() ? 0 : 1) + sc_coil.errors + sc_pread.errors +
                          (sc_coil.failure.empty() && sc_pread.failure.empty() ? 0 : 1);
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  json_object j;
  j.add("bench", "tour").add("seconds_per_step", secs).add("file", rcfg.path).add("file_bytes", rcfg.file_size);
  if (!raw_ring) j.add("raw_uring_skipped", no_ring);
  j.add("nop_coil_ops_per_s", nop_coil.ops_per_s());
  if (raw_ring) {
    j.add("nop_uring_ops_per_s", nop_uring.ops_per_s());
    j.add("nop_ratio_uring", ratio(nop_coil.ops_per_s(), nop_uring.ops_per_s()));
    j.add("nop_cpu_ratio_uring", ratio(nop_coil.ops_per_cpu_s(), nop_uring.ops_per_cpu_s()));
  }
  j.add("randread_coil_iops", rr_coil.iops()).add("randread_pread_iops", rr_pread.iops());
  if (raw_ring) {
    j.add("randread_uring_iops", rr_uring.iops());
    j.add("randread_ratio_uring", ratio(rr_coil.iops(), rr_uring.iops()));
    j.add("randread_cpu_ratio_uring", ratio(rr_coil.iops_per_cpu_s(), rr_uring.iops_per_cpu_s()));
  }
  j.add("randread_ratio_pread", ratio(rr_coil.iops(), rr_pread.iops()));
  if (asio_files) {
    j.add("randread_asio_uring_iops", rr_asio.iops());
    j.add("randread_ratio_asio_uring", ratio(rr_coil.iops(), rr_asio.iops()));
  }
  j.add("timers_fired_per_s", tm.fired_per_s()).add("timers_ideal_per_s", tm.ideal_per_s);
  j.add("timers_late_p50_us", tm.late_p50_us).add("timers_late_p99_us", tm.late_p99_us);
  if (asio_built) {
    j.add("timers_asio_fired_per_s", tm_asio.fired_per_s()).add("timers_asio_late_p99_us", tm_asio.late_p99_us);
    const auto per_cpu_s = [](const timers_result& t) {
      return t.cpu_seconds > 0 ? static_cast<double>(t.fired) / t.cpu_seconds : 0.0;
    };
    j.add("timers_cpu_ratio_asio", ratio(per_cpu_s(tm), per_cpu_s(tm_asio)));
  }
  j.add("echo_coil_trips_per_s", echo_coil.trips_per_s()).add("echo_epoll_trips_per_s", echo_epoll.trips_per_s());
  j.add("echo_coil_server_cpu_us_per_trip", echo_coil.server_cpu_us_per_trip());
  j.add("echo_epoll_server_cpu_us_per_trip", echo_epoll.server_cpu_us_per_trip());
  j.add("echo_cpu_ratio_epoll", echo_cpu_ratio);
  for (size_t k = 1; k < peer_impls.size() && peers.failure.empty(); ++k) {
    std::string key = peer_impls[k];
    for (char& c : key) c = c == '-' ? '_' : c;
    j.add(("echo_" + key + "_server_cpu_us_per_trip").c_str(), peers.pooled[k].server_cpu_us_per_trip());
    j.add(("echo_cpu_ratio_" + key).c_str(), median(peers.ratios(0, k)));
  }
  if (idle.failure.empty()) {
    j.add("idle_rss_bytes_per_conn", idle.rss_bytes_per_conn);
    j.add("idle_process_bytes_per_conn", idle.process_bytes_per_conn);
  }
  j.add("scatter_coil_mmap_reads_per_s", sc_coil.reads_per_s()).add("scatter_pread_reads_per_s", sc_pread.reads_per_s());
  j.add("scatter_ratio_pread", ratio(sc_coil.reads_per_s(), sc_pread.reads_per_s()));
  j.add("errors", errors);
  std::printf("%s\n", j.str().c_str());
  return errors == 0 ? 0 : 1;
}

}  // namespace coil_bench
