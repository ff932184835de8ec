#pragma once
// The individual benchmarks. Each returns plain numbers; printing, tables and
// JSON are the callers' business (main.cpp for subcommands, tour.cpp).
#include <cstdint>
#include <optional>
#include <string>

#include "coil/rt/runtime.hpp"
#include "common.hpp"

namespace coil_bench {

// ---- nop: the runtime's per-operation overhead ------------------------------
struct nop_result : measured {
  uint64_t ops = 0;
  uint64_t errors = 0;
  std::string failure;  // set when the run could not start (no ring)
  double ops_per_s() const noexcept { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
  double ops_per_cpu_s() const noexcept { return cpu_seconds > 0 ? static_cast<double>(ops) / cpu_seconds : 0; }
  std::optional<coil::runtime_stats> stats;  // coil runs only
};

// tasks coroutines on one runtime, each looping co_await coil::nop().
nop_result run_nop_coil(uint64_t tasks, double seconds, progress* prog);
// Raw liburing: NOPs in batches of batch, io_uring_submit_and_wait + peek_batch.
nop_result run_nop_uring(uint64_t batch, double seconds, progress* prog);

// ---- timeout: with_timeout over single operations -----------------------------
struct timeout_config {
  uint64_t tasks = 16;
  double seconds = 3;
  bool expire = true;      // every op times out (else every op finishes first)
  bool link_form = false;  // link(op, link_timeout(d)) instead of with_timeout(op, d)
  uint64_t timeout_us = 100;
};
struct timeout_result : measured {
  uint64_t ops = 0;
  uint64_t errors = 0;
  double ops_per_s() const noexcept { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
  std::optional<coil::runtime_stats> stats;
};
timeout_result run_timeout_coil(const timeout_config& cfg, progress* prog);

// ---- randread: random block reads over one file ------------------------------
struct randread_config {
  std::string path;
  uint64_t file_size = 0;
  uint64_t bs = 4096;
  uint64_t qd = 32;
  double seconds = 3;
  bool direct = false;
  std::string driver;  // coil only: "" (automatic), "uring", "epoll" or "aio"
  // Submit once this many reads wait (0: once per loop turn / loop pass).
  // Unset: coil's defaults (uring: direct reads in batches of
  // uring_options::device_submit_batch; AIO: aio_options::submit_batch),
  // the raw baseline 0.
  std::optional<unsigned> submit_batch;
  std::optional<unsigned> device_submit_batch;  // coil on io_uring only
  std::optional<bool> inline_reads;             // coil on io_uring only (uring_options::inline_reads)
};

struct randread_result : measured {
  uint64_t reads = 0;
  uint64_t errors = 0;  // failed or short reads
  double iops() const noexcept { return seconds > 0 ? static_cast<double>(reads) / seconds : 0; }
  double iops_per_cpu_s() const noexcept { return cpu_seconds > 0 ? static_cast<double>(reads) / cpu_seconds : 0; }
  std::optional<coil::runtime_stats> stats;
  std::string failure;  // set when the run could not start (open failed...)
};

randread_result run_randread_coil(const randread_config& cfg, progress* prog);
randread_result run_randread_uring(const randread_config& cfg, progress* prog);
randread_result run_randread_pread(const randread_config& cfg, progress* prog);
// A peer library's reader (asio-uring: Boost.Asio's random_access_file), as a
// separate program; buffered reads only.
randread_result run_randread_peer(const randread_config& cfg, const std::string& impl);

// ---- timers: many tasks sleeping short random durations -------------------------
struct timers_config {
  uint64_t tasks = 10'000;
  uint64_t min_ms = 1;
  uint64_t max_ms = 10;
  double seconds = 3;
};

struct timers_result : measured {
  uint64_t fired = 0;
  double ideal_per_s = 0;  // tasks / mean sleep: the rate with zero lateness
  double late_p50_us = 0;
  double late_p99_us = 0;
  double late_max_us = 0;
  uint64_t errors = 0;
  double fired_per_s() const noexcept { return seconds > 0 ? static_cast<double>(fired) / seconds : 0; }
  std::optional<coil::runtime_stats> stats;
  std::string failure;  // a peer that could not run
};

timers_result run_timers_coil(const timers_config& cfg, progress* prog);
// The same sleepers on a peer library (asio: Boost.Asio's steady_timer), as a
// separate program.
timers_result run_timers_peer(const timers_config& cfg, const std::string& impl);

// The tour: every benchmark above with baselines, a table, one JSON summary.
// One scatter implementation as a tour step: 100,000 64-byte objects at
// locality 0.5 from the data file, read by coil's packet layer on an
// mmap_space ("coil-mmap") or by a pread loop ("pread"); bytes checked.
struct scatter_step_result : measured {
  uint64_t reads = 0;
  uint64_t errors = 0;
  std::string failure;
  double reads_per_s() const noexcept { return seconds > 0 ? static_cast<double>(reads) / seconds : 0; }
};
scatter_step_result run_scatter_step(const std::string& path, uint64_t file_size, const char* impl, double seconds,
                                     progress* prog);

int run_tour(const options& opts);

// ---- scatter: small reads, some adjacent, through the packet layer vs pread vs
// io_uring (scatter.cpp parses its own options: its --size is the object size).
int cmd_scatter(int argc, char** argv);

// ---- scale: cost per timer, idle connection and task at growing counts
// (scale.cpp parses its own options and runs each size in a fresh process).
int cmd_scale(int argc, char** argv);

// ---- tls: a TLS echo server, coil against Boost.Asio's ssl::stream (tls.cpp
// parses its own options; built with coil::tls only) -------------------------
int cmd_tls(int argc, char** argv);

// ---- xcore: cross-core round trips (xcore.cpp prints and returns the exit code) --
int cmd_xcore(const options& opts);

}  // namespace coil_bench
