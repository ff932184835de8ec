#pragma once
// echo: a TCP echo server and its client in two processes (fork), pinned to
// different CPUs. The client is always the same (coil, one task per
// connection, send then recv_exact); the server is coil's or a baseline
// written here with raw liburing or raw epoll, so server CPU per round trip
// compares the library with the code one would write by hand.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coil/rt/runtime.hpp"

#include "common.hpp"
#include "kernel_counters.hpp"

namespace coil_bench {

struct echo_config {
  // server: coil, coil-multishot (multishot accept + recv into a buffer ring),
  // uring (raw liburing), uring-multishot (raw liburing in coil-multishot's
  // design), epoll (raw epoll), or a peer library's server: asio (Boost.Asio
  // on epoll), asio-uring (on its io_uring backend), libuv
  std::string impl = "coil";
  uint64_t conns = 64;
  uint64_t msg = 64;
  double seconds = 3;
  int server_cpu = 0;
  int client_cpu = 1;
};

struct echo_result {
  uint64_t trips = 0;
  uint64_t errors = 0;
  double seconds = 0;              // the client's measuring window
  double server_cpu_seconds = 0;   // user + system time of the server process
  double server_user_seconds = 0;  // of which user time (the kernel splits by tick samples)
  std::string failure;
  std::optional<coil::runtime_stats> stats;  // coil's server only
  // The server's syscalls and context switches (setup included), where perf
  // counting works: exact where CPU time is noise.
  std::optional<kernel_counters::counts> kernel;
  double trips_per_s() const noexcept { return seconds > 0 ? static_cast<double>(trips) / seconds : 0; }
  double server_cpu_us_per_trip() const noexcept {
    return trips > 0 ? server_cpu_seconds * 1e6 / static_cast<double>(trips) : 0;
  }
  double server_user_us_per_trip() const noexcept {
    return trips > 0 ? server_user_seconds * 1e6 / static_cast<double>(trips) : 0;
  }
  double per_trip(uint64_t n) const noexcept { return trips > 0 ? static_cast<double>(n) / static_cast<double>(trips) : 0; }
};

echo_result run_echo(const echo_config& cfg);

// Paired rounds: every server in impls runs once per round, in an order that
// rotates each round (none always runs first, just after the client's fork,
// or last). Server CPU per trip moves by tens of percent between runs on a
// shared VM; ratios within a round cancel the drift.
struct echo_rounds_result {
  std::vector<std::vector<double>> us;       // [impl][round]: server CPU per trip
  std::vector<std::vector<double>> user_us;  // of which user time
  std::vector<echo_result> pooled;           // [impl]: trips, seconds and CPU summed
  std::string failure;                       // the first failed run, if any
  // impls[a] / impls[b], one ratio per round.
  std::vector<double> ratios(size_t a, size_t b) const;
};
// progress_label: "" runs quietly (the caller shows its own progress).
echo_rounds_result run_echo_rounds(const std::vector<std::string>& impls, const echo_config& base, uint64_t rounds,
                                   const std::string& progress_label);
// A server written with another library (a coil-peer-* program).
bool is_echo_peer(const std::string& impl);


}  // namespace coil_bench
