#pragma once
// Shared plumbing for coil-bench: options, timing, JSON output, progress line,
// random numbers, aligned buffers and the benchmark data file.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "coil/rt/runtime.hpp"
#include "coil/rt/task.hpp"
#include "rng.hpp"

namespace coil_bench {

// Every option any subcommand understands; each subcommand reads what it needs.
struct options {
  std::string command;
  std::string baseline;  // "", "uring" or "pread"
  std::string driver;    // randread: "", "uring", "epoll" or "aio" (aio: direct_file on Linux AIO)
  std::string mode;      // xcore: "" (submit_to) or "channel" (xchannel)
  std::string file;
  std::optional<uint64_t> size_bytes;  // data file size (create / check)
  double seconds = 3.0;
  uint64_t tasks = 128;
  uint64_t conns = 64;  // echo
  bool conns_given = false;  // idle defaults to 10,000
  uint64_t msg = 64;    // echo: message bytes
  uint64_t rounds = 0;  // echo: > 0 alternates coil and both baselines
  uint64_t bs = 4096;
  uint64_t qd = 32;
  // randread: uring_options/aio_options::submit_batch, device_submit_batch
  std::optional<uint64_t> submit_batch;
  std::optional<uint64_t> device_batch;
  std::optional<bool> inline_reads;  // randread: uring_options::inline_reads
  uint64_t timer_tasks = 10'000;
  uint64_t timer_min_ms = 1;
  uint64_t timer_max_ms = 10;
  int cpu = -1;
  bool direct = false;
  bool stats = false;
  bool peers = false;  // echo --rounds: also the servers written with other libraries
  bool seconds_given = false;
};

// Parses argv into opts; prints a message and returns false on bad input.
bool parse_args(int argc, char** argv, options& opts);
void print_usage(std::FILE* out);
// A count or size in [min, max], with an optional K/M/G suffix (powers of
// 1024); false for anything else, an overflowing suffix included.
bool parse_u64(const char* text, uint64_t& out, uint64_t min, uint64_t max);
// Seconds in (0, max], finite.
bool parse_seconds(const char* text, double& out, double max);

// CLOCK_MONOTONIC in nanoseconds: the same clock the runtime uses by default,
// so coil and baseline runs are timed identically.
int64_t now_ns() noexcept;
inline double seconds_since(int64_t start_ns) noexcept { return static_cast<double>(now_ns() - start_ns) * 1e-9; }

// How long a run took: wall time, and the CPU time of the calling thread
// (user + system). With other processes on the CPU, wall time shrinks every
// rate while CPU time per operation stays put, so both are reported.
struct measured {
  double seconds = 0;
  double cpu_seconds = 0;
};

class run_clock {
 public:
  run_clock() noexcept : wall0_(now_ns()), cpu0_(thread_cpu_ns()) {}
  void stop(measured& m) const noexcept {
    m.seconds = static_cast<double>(now_ns() - wall0_) * 1e-9;
    m.cpu_seconds = static_cast<double>(thread_cpu_ns() - cpu0_) * 1e-9;
  }
  int64_t start_ns() const noexcept { return wall0_; }
  static int64_t thread_cpu_ns() noexcept;

 private:
  int64_t wall0_;
  int64_t cpu0_;
};

// Pins the whole process to one CPU; returns false (errno set) on failure.
bool pin_to_cpu(int cpu);

// This program's own path (/proc/self/exe), or "".
std::string self_path();
// A peer library's program beside coil-bench (coil-peer-IMPL, built from
// bench/peers/ where Debian's libboost1.81-dev and libuv1-dev are), or ""
// when it was not built.
std::string peer_path(const std::string& impl);
// Why a peer cannot run: its program was not built.
std::string missing_peer(const std::string& impl);
// Runs impl's peer program with args, its standard output collected in
// output; "" when it exited 0, else why not (missing_peer if not built).
std::string run_peer(const std::string& impl, std::vector<std::string> args, std::string& output);

// One flat JSON object built field by field. Keys are trusted literals.
class json_object {
 public:
  json_object& add(const char* key, const std::string& value);
  json_object& add(const char* key, const char* value) { return add(key, std::string(value)); }
  json_object& add(const char* key, double value);
  json_object& add(const char* key, uint64_t value);
  json_object& add(const char* key, int64_t value) { return add(key, static_cast<uint64_t>(value)); }
  json_object& add(const char* key, bool value);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void key(const char* k);
  std::string body_;
};

// The runtime counters as one JSON line (the --stats output).
json_object stats_json(const char* bench, const char* impl, const coil::runtime_stats& s);

// Memory aligned for O_DIRECT (4096 covers every logical block size in use).
struct free_deleter {
  void operator()(void* p) const noexcept { std::free(p); }
};
using aligned_buffer = std::unique_ptr<std::byte, free_deleter>;
aligned_buffer make_aligned_buffer(std::size_t size, std::size_t alignment = 4096);

// Live "\r"-updated status on stderr while a benchmark runs. On a terminal it
// redraws at most every 100 ms; elsewhere (logs, CI) it prints only the start
// of each step, so captured output stays readable.
class progress {
 public:
  progress(std::string label, double total_s) noexcept;
  ~progress();
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;
  // Cheap when called often: returns at once unless a redraw is due.
  void update(double elapsed_s, double rate, const char* unit);
  void finish();

 private:
  std::string label_;
  double total_s_;
  int64_t next_draw_ns_ = 0;
  bool tty_;
  bool done_ = false;
};

// Makes sure path holds size bytes of non-zero data. An existing file is kept
// when its size matches, or when size is unset (then its size is used).
// recreate_on_mismatch: replace a file of another size (tour's own file only).
// Returns the file's size, or nullopt after printing why.
std::optional<uint64_t> ensure_data_file(const std::string& path, std::optional<uint64_t> size,
                                         bool recreate_on_mismatch);

// $TMPDIR/coil-bench.dat (or /tmp/...): the data file of randread and tour
// when no --file is given.
std::string default_data_path();

// Reads the whole file once so buffered reads are served from the page cache.
bool warm_page_cache(const std::string& path);

// For coil benchmarks: sleeps on the runtime for seconds (in 100 ms slices
// when there is a progress line to redraw), then sets stop. Workers poll stop
// once per operation: a plain load, cheaper than reading the clock.
coil::task<void> stop_after(double seconds, bool& stop, progress* prog, const uint64_t& count, const char* unit);

// "1.23 M" style, for tables.
// The median (0 for none).
double median(std::vector<double> v);
std::string human(double v);
// "1.00 GiB" style, for sizes.
std::string human_bytes(uint64_t n);

}  // namespace coil_bench
