#pragma once
// idle: user-space memory per idle connection. A client process opens N
// connections and sends nothing; the server (this process) gives each one a
// task waiting for data, either in a plain recv with its own buffer or in a
// multishot recv on a shared buffer ring, and reports the RSS growth per
// connection once every task waits: from just before the first accept (the
// connections alone), and from the start, before the runtime, its ring and
// the buffer ring exist (what a user measuring the whole process sees).
#include <cstdint>
#include <string>

namespace coil_bench {

struct idle_config {
  uint64_t conns = 10'000;
  bool multishot = true;
  uint64_t plain_buffer = 16 << 10;  // per-connection recv buffer in plain mode
};

struct idle_result {
  uint64_t conns = 0;
  double rss_bytes_per_conn = 0;      // (rss_after - rss_before) / conns
  double process_bytes_per_conn = 0;  // (rss_after - rss_start) / conns
  uint64_t rss_start = 0;             // before the listener, runtime and buffer ring
  uint64_t rss_before = 0;            // before the first accept
  uint64_t rss_after = 0;
  std::string failure;
  bool fd_limit = false;  // failure: RLIMIT_NOFILE could not be raised for conns
};

idle_result run_idle(const idle_config& cfg);
// The same in a fresh `coil-bench idle` process: a process that ran other
// work first reuses heap pages it already has, which hides the growth.
idle_result run_idle_fresh(const idle_config& cfg);

}  // namespace coil_bench
