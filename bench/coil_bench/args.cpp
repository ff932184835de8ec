// Command-line parsing: `--name value` or `--name=value`, sizes with K/M/G.
#include <sched.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common.hpp"
#include "echo.hpp"

namespace coil_bench {

// ---- arguments -------------------------------------------------------------------

void print_usage(std::FILE* out) {
  std::fputs(
      "usage: coil-bench <command> [options]\n"
      "commands:\n"
      "  nop       --tasks N (128) --seconds S (3) [--baseline uring]\n"
      "  randread  --file PATH --bs B (4096) --qd N (32) --seconds S (3) [--direct]\n"
      "            [--size BYTES (1G, used when creating PATH)] [--baseline uring|pread|asio-uring]\n"
      "            [--driver uring|epoll|aio (aio needs --direct; with --direct, coil reads through direct_file)]\n"
      "            [--submit-batch N (0: once per loop turn; 1: every read at once, like fio; raw baseline too)]\n"
      "            [--device-batch N (io_uring: O_DIRECT reads per submit; default 4, 0: no cap)]\n"
      "            [--inline 0|1 (io_uring: try buffered reads with preadv2(RWF_NOWAIT) first; default 1)]\n"
      "  timers    --timer-tasks N (10000) --min-ms A (1) --max-ms B (10) --seconds S (3) [--baseline asio]\n"
      "  timeout   --tasks N (16) --seconds S (3) [--mode expire (default)|complete] [--baseline link]\n"
      "            with_timeout(op, d) or link(op, link_timeout(d)): a pipe read that times out (100 us) or a nop\n"
      "  echo      --conns N (64) --msg B (64) --seconds S (3) [--mode multishot]\n"
      "            [--baseline uring|epoll|uring-multishot|asio|asio-uring|libuv (peers: coil-peer-* programs)]\n"
      "            [--rounds N: coil, raw liburing and raw epoll alternately N times each; median paired ratios]\n"
      "            [--peers: with --rounds, also Boost.Asio (epoll and io_uring) and libuv]\n"
      "  idle      --conns N (10000) [--mode plain|multishot (default)]: server RSS per idle connection\n"
      "  xcore     --tasks N in flight (128) --seconds S (3) [--baseline mutex | --mode channel] (cores 0 and 1)\n"
      "  scatter   --file PATH --reads N (100000) --size OBJECT_BYTES (64) --locality P (0.5) --seconds S (3)\n"
      "            [--qd N (256)] [--file-size BYTES (1G, used when creating PATH)] [--cpu N] [--only coil|pread|uring|coil-mmap]\n"
      "            [--mmap-batch 0|1 (1): coil-mmap copies each turn's reads together after prefetching]\n"
      "  copy      --bs BUFFER (64K when 4096) --rounds N (3) --seconds S (3): coil::copy socket to socket,\n"
      "            read/send through a buffer against splice through a pipe, alternately\n"
      "  tls       --mode handshake|bulk [--conns N] [--rounds N (3)] [--server-cpu N (0)] [--client-cpu N (1)]:\n"
      "            a TLS echo server, coil against Boost.Asio's ssl::stream (coil-peer-asio-tls);\n"
      "            [--callgrind]: instructions per handshake or byte under valgrind instead\n"
      "  scale     [--only timers|idle|tasks] [--timers N,N..] [--conns N,N..] [--tasks N,N..]: cost per timer,\n"
      "            idle connection and task as the count grows, each size in a fresh process\n"
      "  tour      --seconds S per step (4) --size BYTES (1G)\n"
      "common options: --cpu N (pin the process), --stats (runtime counters as JSON)\n"
      "sizes take K/M/G suffixes (powers of 1024). The last stdout line is JSON.\n",
      out);
}

// A count or size in [min, max]; a K/M/G suffix that would overflow fails.
bool parse_u64(const char* text, uint64_t& out, uint64_t min, uint64_t max) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || text[0] == '-') return false;
  int shift = 0;
  switch (*end) {
    case 'k':
    case 'K': shift = 10; break;
    case 'm':
    case 'M': shift = 20; break;
    case 'g':
    case 'G': shift = 30; break;
    default: break;
  }
  if (shift != 0) {
    if (v > (~0ull >> shift)) return false;
    v <<= shift;
    ++end;
  }
  if (*end != '\0' || v < min || v > max) return false;
  out = v;
  return true;
}

// Seconds in (0, max].
bool parse_seconds(const char* text, double& out, double max) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(v > 0) || !std::isfinite(v) || v > max) return false;
  out = v;
  return true;
}

namespace {
constexpr uint64_t kib = 1024, mib = kib * kib, gib = kib * mib;
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
    if (name == "--direct" || name == "--stats" || name == "--peers") {
      (name == "--direct" ? opts.direct : name == "--stats" ? opts.stats : opts.peers) = true;
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
    // Bounds keep every value from overflowing a computation or
    // allocating without limit before the run starts.
    if (name == "--seconds") {
      ok = parse_seconds(v, opts.seconds, 86'400);
      opts.seconds_given = true;
    } else if (name == "--conns") {
      ok = parse_u64(v, opts.conns, 1, 100'000);
      opts.conns_given = true;
    } else if (name == "--rounds") {
      ok = parse_u64(v, opts.rounds, 1, 1000);
    } else if (name == "--msg") {
      ok = parse_u64(v, opts.msg, 1, 16 * kib);
    } else if (name == "--tasks") {
      ok = parse_u64(v, opts.tasks, 1, 1'000'000);
    } else if (name == "--bs") {
      ok = parse_u64(v, opts.bs, 1, 64 * mib);
    } else if (name == "--qd") {
      ok = parse_u64(v, opts.qd, 1, 4096);
    } else if (name == "--submit-batch") {
      ok = parse_u64(v, n, 0, 4096);
      opts.submit_batch = n;
    } else if (name == "--inline") {
      ok = parse_u64(v, n, 0, 1);
      opts.inline_reads = n != 0;
    } else if (name == "--device-batch") {
      ok = parse_u64(v, n, 0, 4096);
      opts.device_batch = n;
    } else if (name == "--size") {
      ok = parse_u64(v, n, 1, 1024 * gib);
      opts.size_bytes = n;
    } else if (name == "--file") {
      opts.file = value;
      ok = !value.empty();
    } else if (name == "--baseline") {
      opts.baseline = value;
      ok = value == "uring" || value == "link" || value == "pread" || value == "epoll" || value == "mutex" ||
           value == "uring-multishot" || is_echo_peer(value);
    } else if (name == "--mode") {
      opts.mode = value;
      ok = value == "channel" || value == "multishot" || value == "plain" || value == "expire" || value == "complete";
    } else if (name == "--driver") {
      opts.driver = value;
      ok = value == "uring" || value == "epoll" || value == "aio";
    } else if (name == "--cpu") {
      ok = parse_u64(v, n, 0, CPU_SETSIZE - 1);
      opts.cpu = static_cast<int>(n);
    } else if (name == "--timer-tasks") {
      ok = parse_u64(v, opts.timer_tasks, 1, 10'000'000);
    } else if (name == "--min-ms") {
      ok = parse_u64(v, opts.timer_min_ms, 1, 3'600'000);
    } else if (name == "--max-ms") {
      ok = parse_u64(v, opts.timer_max_ms, 1, 3'600'000);
    } else {
      std::fprintf(stderr, "coil-bench: unknown option %s\n", name.c_str());
      print_usage(stderr);
      return false;
    }
    if (!ok) {
      std::fprintf(stderr, "coil-bench: bad value for %s: '%s'\n", name.c_str(), v);
      print_usage(stderr);
      return false;
    }
  }
  if (opts.timer_min_ms > opts.timer_max_ms) {
    std::fprintf(stderr, "coil-bench: --min-ms must not exceed --max-ms\n");
    return false;
  }
  return true;
}

}  // namespace coil_bench
