#include "common.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstring>
#include <iterator>

#include "coil/rt/time.hpp"

namespace coil_bench {

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

std::string self_path() {
  char self[PATH_MAX];
  const ssize_t len = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) return {};
  return std::string(self, static_cast<size_t>(len));
}

std::string peer_path(const std::string& impl) {
  std::string path = self_path();
  if (path.empty()) return {};
  path = path.substr(0, path.rfind('/') + 1) + "coil-peer-" + impl;
  return ::access(path.c_str(), X_OK) == 0 ? path : std::string();
}

std::string missing_peer(const std::string& impl) {
  return "no coil-peer-" + impl + " beside coil-bench (built where Debian's libboost1.81-dev and libuv1-dev are)";
}

std::string run_peer(const std::string& impl, std::vector<std::string> args, std::string& output) {
  const std::string path = peer_path(impl);
  if (path.empty()) return missing_peer(impl);
  int report[2];
  if (::pipe2(report, O_CLOEXEC) < 0) return std::string("pipe: ") + std::strerror(errno);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(report[1], STDOUT_FILENO);  // dup2 clears close-on-exec on the copy
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(report[1]);
  output.clear();
  char buf[256];
  for (ssize_t n; pid > 0 && (n = ::read(report[0], buf, sizeof buf)) != 0;) {
    if (n > 0) output.append(buf, static_cast<size_t>(n));
    if (n < 0 && errno != EINTR) break;
  }
  ::close(report[0]);
  if (pid < 0) return std::string("fork: ") + std::strerror(fork_errno);
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return std::string("waitpid: ") + std::strerror(errno);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return path + " failed (wait status " + std::to_string(status) + ")";
  return {};
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
      .add("io.readiness_waits", s.io.readiness_waits)
      .add("io.in_flight_max", static_cast<uint64_t>(s.io.in_flight_max))
      .add("io.cancels", s.io.cancels)
      .add("io.eager", s.io.eager)
      .add("io.drained_skips", s.io.drained_skips)
      .add("io.cancel_retries", s.io.cancel_retries)
      .add("io.batching_factor", s.io.batching_factor());
  // Per opcode, only those used: "io.read.pushed", "io.read.completed"...
  for (std::size_t op = 0; op < coil::opcode_slots; ++op) {
    const coil::op_counts& c = s.io.by_opcode[op];
    if (c.pushed == 0 && c.completed == 0) continue;
    const std::string name = std::string("io.") + coil::opcode_name(static_cast<uint8_t>(op));
    j.add((name + ".pushed").c_str(), c.pushed).add((name + ".completed").c_str(), c.completed);
  }
  return j;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 != 0 ? v[m] : (v[m - 1] + v[m]) / 2;
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
    // Only a regular file has a size to read within; a directory's "size"
    // would be measured as a run of failed reads.
    if (!S_ISREG(st.st_mode)) {
      std::fprintf(stderr, "coil-bench: %s: %s (the data file must be a regular file)\n", path.c_str(),
                   S_ISDIR(st.st_mode) ? std::strerror(EISDIR) : "not a regular file");
      return std::nullopt;
    }
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
