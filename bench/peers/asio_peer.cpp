// coil-peer-asio / coil-peer-asio-uring: coil-bench's workloads written with
// Boost.Asio (Debian's 1.81) as its documentation teaches: C++20 coroutines
// (awaitable, co_spawn) on a single-threaded io_context with locking off
// (what Asio offers a thread-per-core program). Built twice: on Asio's
// default epoll reactor, and with BOOST_ASIO_HAS_IO_URING +
// BOOST_ASIO_DISABLE_EPOLL, which moves socket operations to its io_uring
// backend and enables its files.
//
//   echo LISTEN_FD CONNS         one coroutine per connection, async_read_some
//                                then async_write of what arrived; exits once
//                                CONNS connections have closed (coil-bench
//                                reads the CPU time from wait4)
//   randread PATH BS QD SECONDS  QD coroutines reading BS-byte blocks at random
//                                offsets (coil-bench's sequence) through a
//                                random_access_file (io_uring build only);
//                                prints "reads errors seconds cpu_seconds"
//   timers TASKS MIN_MS MAX_MS SECONDS
//                                TASKS coroutines each sleeping a random
//                                MIN..MAX ms on a steady_timer, over and over;
//                                prints "fired errors seconds cpu_seconds
//                                p50_ns p99_ns max_ns" of lateness
#include <time.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio.hpp>

#include "coil_bench/histogram.hpp"
#include "coil_bench/rng.hpp"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> serve(tcp::socket s, std::size_t& closed) {
  boost::system::error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);
  std::array<char, 16 << 10> buf;  // in the coroutine frame, as coil's server keeps its buffer
  for (;;) {
    auto [rec, n] = co_await s.async_read_some(asio::buffer(buf), no_throw);
    if (rec) break;
    auto [wec, w] = co_await asio::async_write(s, asio::buffer(buf.data(), n), no_throw);
    if (wec) break;
  }
  ++closed;
}

asio::awaitable<void> accept_all(tcp::acceptor& acceptor, std::size_t conns, std::size_t& closed) {
  for (std::size_t i = 0; i < conns; ++i) {
    auto [ec, s] = co_await acceptor.async_accept(no_throw);
    if (ec) {
      std::fprintf(stderr, "asio: accept: %s\n", ec.message().c_str());
      co_return;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(s), closed), asio::detached);
  }
}

int echo(int listen_fd, std::size_t conns) {
  asio::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  tcp::acceptor acceptor(io, tcp::v4(), listen_fd);
  std::size_t closed = 0;
  asio::co_spawn(io, accept_all(acceptor, conns, closed), asio::detached);
  io.run();  // returns when no work is left: every connection served and closed
  return closed == conns ? 0 : 1;
}

double clock_seconds(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct timer_shared {
  bool stop = false;
  unsigned long long fired = 0;
  unsigned long long errors = 0;
  coil_bench::latency_histogram lateness;
};

asio::awaitable<void> sleeper(std::uint64_t min_ns, std::uint64_t span_ns, std::uint64_t seed, timer_shared& s) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  coil_bench::rng r(seed);
  while (!s.stop) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(min_ns + r.below(span_ns));
    t.expires_at(deadline);
    auto [ec] = co_await t.async_wait(no_throw);
    const auto late = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - deadline);
    if (ec || late.count() < 0) {
      ++s.errors;  // a timer must never fire early
      continue;
    }
    if (s.stop) break;  // sleeps that end after the clock stopped are not counted
    s.lateness.record(static_cast<std::uint64_t>(late.count()));
    ++s.fired;
  }
}

int timers(std::size_t tasks, std::uint64_t min_ms, std::uint64_t max_ms, double seconds) {
  if (tasks == 0 || min_ms == 0 || min_ms > max_ms) return 2;
  asio::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  auto s = std::make_unique<timer_shared>();  // the histogram is 15 KiB
  const std::uint64_t min_ns = min_ms * 1'000'000, span_ns = (max_ms - min_ms) * 1'000'000 + 1;
  const double wall0 = clock_seconds(CLOCK_MONOTONIC), cpu0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
  double wall = 0, cpu = 0;
  for (std::size_t i = 0; i < tasks; ++i) asio::co_spawn(io, sleeper(min_ns, span_ns, i + 1, *s), asio::detached);
  asio::steady_timer stop_at(io, std::chrono::duration_cast<asio::steady_timer::duration>(
                                     std::chrono::duration<double>(seconds)));
  // As coil-bench's timers: the clock stops with the run, not after the drain.
  stop_at.async_wait([&](const boost::system::error_code&) {
    s->stop = true;
    wall = clock_seconds(CLOCK_MONOTONIC) - wall0;
    cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  });
  io.run();
  std::printf("%llu %llu %.9f %.9f %llu %llu %llu\n", s->fired, s->errors, wall, cpu,
              static_cast<unsigned long long>(s->lateness.quantile(0.50)),
              static_cast<unsigned long long>(s->lateness.quantile(0.99)),
              static_cast<unsigned long long>(s->lateness.max()));
  return 0;
}

#if defined(BOOST_ASIO_HAS_FILE)
struct read_shared {
  bool stop = false;
  unsigned long long reads = 0;
  unsigned long long errors = 0;
};

asio::awaitable<void> reader(asio::random_access_file& f, char* buf, std::size_t bs, std::uint64_t blocks,
                             std::uint64_t seed, read_shared& s) {
  coil_bench::rng r(seed);
  while (!s.stop) {
    auto [ec, n] = co_await f.async_read_some_at(r.below(blocks) * bs, asio::buffer(buf, bs), no_throw);
    if (ec || n != bs) ++s.errors;
    ++s.reads;
  }
}

int randread(const char* path, std::size_t bs, std::size_t qd, double seconds) {
  asio::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  asio::random_access_file f(io, path, asio::random_access_file::read_only);
  const std::uint64_t blocks = f.size() / bs;
  if (blocks == 0) {
    std::fprintf(stderr, "asio: %s is smaller than one block\n", path);
    return 1;
  }
  // Aligned like coil-bench's buffers, so only the library differs.
  struct free_deleter {
    void operator()(char* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<char, free_deleter>> bufs;
  for (std::size_t i = 0; i < qd; ++i) {
    bufs.emplace_back(static_cast<char*>(std::aligned_alloc(4096, (bs + 4095) / 4096 * 4096)));
  }
  read_shared s;
  asio::steady_timer stop_at(io, std::chrono::duration_cast<asio::steady_timer::duration>(
                                     std::chrono::duration<double>(seconds)));
  stop_at.async_wait([&](const boost::system::error_code&) { s.stop = true; });
  const double wall0 = clock_seconds(CLOCK_MONOTONIC), cpu0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
  for (std::size_t i = 0; i < qd; ++i) {
    asio::co_spawn(io, reader(f, bufs[i].get(), bs, blocks, i + 1, s), asio::detached);
  }
  io.run();  // returns when the readers have seen stop and their last reads are in
  std::printf("%llu %llu %.9f %.9f\n", s.reads, s.errors, clock_seconds(CLOCK_MONOTONIC) - wall0,
              clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0);
  return 0;
}
#else
int randread(const char*, std::size_t, std::size_t, double) {
  std::fprintf(stderr, "asio: this build has no files (they need its io_uring backend)\n");
  return 2;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "echo" && argc == 4) return echo(std::atoi(argv[2]), std::strtoull(argv[3], nullptr, 10));
    if (mode == "randread" && argc == 6) {
      return randread(argv[2], std::strtoull(argv[3], nullptr, 10), std::strtoull(argv[4], nullptr, 10),
                      std::strtod(argv[5], nullptr));
    }
    if (mode == "timers" && argc == 6) {
      return timers(std::strtoull(argv[2], nullptr, 10), std::strtoull(argv[3], nullptr, 10),
                    std::strtoull(argv[4], nullptr, 10), std::strtod(argv[5], nullptr));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: %s echo LISTEN_FD CONNS | randread PATH BS QD SECONDS | timers TASKS MIN_MS MAX_MS SECONDS\n",
               argv[0]);
  return 2;
}
