#include "common.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <iterator>

#include "coil/rt/time.hpp"

namespace coil_bench {

// ---- arguments -------------------------------------------------------------------

void print_usage(std::FILE* out) {
  std::fputs(
      "usage: coil-bench <command> [options]\n"
      "commands:\n"
      "  nop       --tasks N (128) --seconds S (3) [--baseline uring]\n"
      "  randread  --file PATH --bs B (4096) --qd N (32) --seconds S (3) [--direct]\n"
      "            [--size BYTES (1G, used when creating PATH)] [--baseline uring|pread]\n"
      "  timers    --timer-tasks N (10000) --min-ms A (1) --max-ms B (10) --seconds S (3)\n"
      "  tour      --seconds S per step (4) --size BYTES (1G)\n"
      "common options: --cpu N (pin the process), --stats (runtime counters as JSON)\n"
      "sizes take K/M/G suffixes (powers of 1024). The last stdout line is JSON.\n",
      out);
}

namespace {

bool parse_u64(const char* text, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || text[0] == '-') return false;
  switch (*end) {
    case 'k': case 'K': v <<= 10; ++end; break;
    case 'm': case 'M': v <<= 20; ++end; break;
    case 'g': case 'G': v <<= 30; ++end; break;
    default: break;
  }
  if (*end != '\0') return false;
  out = v;
  return true;
}

bool parse_double(const char* text, double& out) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(v > 0) || !std::isfinite(v)) return false;
  out = v;
  return true;
}

}  // namespace

bool parse_args(int argc, char** argv, options& opts) {
  if (argc < 2) {
    print_usage(stderr);
    return false;
  }
  opts.command = argv[1];
  if (opts.command == "-h" || opts.command == "--help" || opts.command == "help") {
    print_usage(stdout);
    std::exit(0);
  }
  for (int i = 2; i < argc; ++i) {
    std::string name = argv[i];
    std::string value;
    bool has_inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_inline_value = true;
    }
    // Flags without a value first.
    if (name == "--direct" || name == "--stats") {
      (name == "--direct" ? opts.direct : opts.stats) = true;
      continue;
    }
    if (name == "-h" || name == "--help") {
      print_usage(stdout);
      std::exit(0);
    }
    if (!has_inline_value) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "coil-bench: %s needs a value\n", name.c_str());
        return false;
      }
      value = argv[++i];
    }
    const char* v = value.c_str();
    bool ok = true;
    uint64_t n = 0;
    if (name == "--seconds") {
      ok = parse_double(v, opts.seconds);
      opts.seconds_given = true;
    } else if (name == "--tasks") {
      ok = parse_u64(v, opts.tasks) && opts.tasks > 0;
    } else if (name == "--bs") {
      ok = parse_u64(v, opts.bs) && opts.bs > 0;
    } else if (name == "--qd") {
      ok = parse_u64(v, opts.qd) && opts.qd > 0 && opts.qd <= 4096;
    } else if (name == "--size") {
      ok = parse_u64(v, n) && n > 0;
      opts.size_bytes = n;
    } else if (name == "--file") {
      opts.file = value;
    } else if (name == "--baseline") {
      opts.baseline = value;
      ok = value == "uring" || value == "pread";
    } else if (name == "--cpu") {
      ok = parse_u64(v, n) && n < CPU_SETSIZE;
      opts.cpu = static_cast<int>(n);
    } else if (name == "--timer-tasks") {
      ok = parse_u64(v, opts.timer_tasks) && opts.timer_tasks > 0;
    } else if (name == "--min-ms") {
      ok = parse_u64(v, opts.timer_min_ms) && opts.timer_min_ms > 0;
    } else if (name == "--max-ms") {
      ok = parse_u64(v, opts.timer_max_ms) && opts.timer_max_ms > 0;
    } else {
      std::fprintf(stderr, "coil-bench: unknown option %s\n", name.c_str());
      print_usage(stderr);
      return false;
    }
    if (!ok) {
      std::fprintf(stderr, "coil-bench: bad value for %s: '%s'\n", name.c_str(), v);
      return false;
    }
  }
  if (opts.timer_min_ms > opts.timer_max_ms) {
    std::fprintf(stderr, "coil-bench: --min-ms must not exceed --max-ms\n");
    return false;
  }
  return true;
}

// ---- time, CPU, memory --------------------------------------------------------------

int64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

int64_t run_clock::thread_cpu_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

bool pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

aligned_buffer make_aligned_buffer(std::size_t size, std::size_t alignment) {
  void* p = nullptr;
  if (posix_memalign(&p, alignment, size) != 0) return aligned_buffer(nullptr);
  // Touch every page now, so first-touch faults are not billed to the run.
  std::memset(p, 0, size);
  return aligned_buffer(static_cast<std::byte*>(p));
}

// ---- JSON ----------------------------------------------------------------------------

void json_object::key(const char* k) {
  if (!body_.empty()) body_ += ',';
  body_ += '"';
  body_ += k;
  body_ += "\":";
}

json_object& json_object::add(const char* k, const std::string& value) {
  key(k);
  body_ += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') {
      body_ += '\\';
      body_ += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      body_ += esc;
    } else {
      body_ += c;
    }
  }
  body_ += '"';
  return *this;
}

json_object& json_object::add(const char* k, double value) {
  key(k);
  char buf[64];
  if (!std::isfinite(value)) {
    body_ += "null";  // JSON has no NaN/Inf
  } else if (std::fabs(value) >= 1000) {
    // Rates: whole numbers read better and lose nothing that is measurable.
    std::snprintf(buf, sizeof buf, "%.0f", value);
    body_ += buf;
  } else {
    std::snprintf(buf, sizeof buf, "%.4g", value);
    body_ += buf;
  }
  return *this;
}

json_object& json_object::add(const char* k, uint64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}

json_object& json_object::add(const char* k, bool value) {
  key(k);
  body_ += value ? "true" : "false";
  return *this;
}

json_object stats_json(const char* bench, const char* impl, const coil::runtime_stats& s) {
  json_object j;
  j.add("stats", bench)
      .add("impl", impl)
      .add("loop_turns", s.loop_turns)
      .add("parks", s.parks)
      .add("tasks_spawned", s.tasks_spawned)
      .add("timers_fired", s.timers_fired)
      .add("io.pushed", s.io.pushed)
      .add("io.submitted", s.io.submitted)
      .add("io.completed", s.io.completed)
      .add("io.enter_calls", s.io.enter_calls)
      .add("io.queued_for_space", s.io.queued_for_space)
      .add("io.in_flight_max", static_cast<uint64_t>(s.io.in_flight_max));
  return j;
}

std::string human(double v) {
  char buf[32];
  if (v >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f G", v / 1e9);
  } else if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.2f K", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  }
  return buf;
}

std::string human_bytes(uint64_t n) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

// ---- progress line ---------------------------------------------------------------------

progress::progress(std::string label, double total_s) noexcept
    : label_(std::move(label)), total_s_(total_s), tty_(isatty(STDERR_FILENO) == 1) {
  if (!tty_) {
    std::fprintf(stderr, "  running %s (%.1f s)\n", label_.c_str(), total_s_);
  }
}

progress::~progress() { finish(); }

void progress::update(double elapsed_s, double rate, const char* unit) {
  if (!tty_) return;
  const int64_t now = now_ns();
  if (now < next_draw_ns_) return;
  next_draw_ns_ = now + 100'000'000;
  const double frac = total_s_ > 0 ? std::min(1.0, elapsed_s / total_s_) : 1.0;
  constexpr int width = 24;
  const int filled = static_cast<int>(frac * width);
  char bar[width + 1];
  for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '.';
  bar[width] = '\0';
  std::fprintf(stderr, "\r\033[K  %-22s [%s] %4.1f/%.1f s  %s %s", label_.c_str(), bar, elapsed_s, total_s_,
               human(rate).c_str(), unit);
  std::fflush(stderr);
}

void progress::finish() {
  if (done_) return;
  done_ = true;
  if (tty_) {
    std::fputs("\r\033[K", stderr);  // leave the line clean for the results
    std::fflush(stderr);
  }
}

// ---- coil helpers -------------------------------------------------------------------------

coil::task<void> stop_after(double seconds, bool& stop, progress* prog, const uint64_t& count, const char* unit) {
  const int64_t start = now_ns();
  const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  // The runtime clock is CLOCK_MONOTONIC by default, like now_ns(); the
  // deadline is converted anyway so a CLOCK_BOOTTIME runtime would work too.
  coil::runtime* rt = coil::runtime::current();
  const int64_t offset = rt->now_ns() - now_ns();
  for (;;) {
    const int64_t now = now_ns();
    if (now >= end) break;
    const int64_t slice_end = prog != nullptr ? std::min(end, now + 100'000'000) : end;
    (void)co_await coil::sleep_until_ns(slice_end + offset);
    if (prog != nullptr) {
      const double elapsed = static_cast<double>(now_ns() - start) * 1e-9;
      prog->update(elapsed, static_cast<double>(count) / elapsed, unit);
    }
  }
  stop = true;
}

// ---- data file ---------------------------------------------------------------------------

std::optional<uint64_t> ensure_data_file(const std::string& path, std::optional<uint64_t> size,
                                         bool recreate_on_mismatch) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    const auto have = static_cast<uint64_t>(st.st_size);
    if (!size || have == *size) return have;
    if (!recreate_on_mismatch) {
      std::fprintf(stderr, "coil-bench: %s exists with %" PRIu64 " bytes, not %" PRIu64 "; using it as is\n",
                   path.c_str(), have, *size);
      return have;
    }
  }
  const uint64_t want = size.value_or(uint64_t{1} << 30);
  // Write to a temporary name and rename, so an interrupted run never leaves a
  // short file that a later run would take for a finished one.
  const std::string tmp = path + ".partial";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "coil-bench: cannot create %s: %s\n", tmp.c_str(), std::strerror(errno));
    return std::nullopt;
  }
  std::fprintf(stderr, "  creating %s (%s of random data)\n", path.c_str(), human_bytes(want).c_str());
  // Real data rather than a sparse or zero file: a hole would be "read" without
  // touching a page, which flatters every implementation equally but wrongly.
  constexpr std::size_t chunk = 1 << 20;
  std::vector<uint64_t> buf(chunk / sizeof(uint64_t));
  rng r(0x5eed);
  bool ok = true;
  for (uint64_t off = 0; off < want && ok;) {
    for (auto& w : buf) w = r.next();
    const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(chunk, want - off));
    const ssize_t w = ::pwrite(fd, buf.data(), n, static_cast<off_t>(off));
    if (w <= 0) {
      std::fprintf(stderr, "coil-bench: writing %s: %s\n", tmp.c_str(), w < 0 ? std::strerror(errno) : "no progress");
      ok = false;
      break;
    }
    off += static_cast<uint64_t>(w);
  }
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) std::fprintf(stderr, "coil-bench: rename to %s: %s\n", path.c_str(), std::strerror(errno));
    ::unlink(tmp.c_str());
    return std::nullopt;
  }
  return want;
}

std::string default_data_path() {
  const char* dir = std::getenv("TMPDIR");
  if (dir == nullptr || *dir == '\0') dir = "/tmp";
  return std::string(dir) + "/coil-bench.dat";
}

bool warm_page_cache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
  }
  ::close(fd);
  return n == 0;
}

}  // namespace coil_bench
