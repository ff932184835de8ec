// Signals: SIGPROF at 1 kHz aimed at the loop thread (a handler without
// SA_RESTART, so every blocking system call it hits returns EINTR) while
// TCP, file, O_DIRECT and timer traffic runs. No operation may report
// EINTR to user code, and every byte must arrive intact.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "coil/coil.hpp"
#include "coil/net.hpp"
#include "stress_util.hpp"
#include "test_aio_util.hpp"
#include "test_net_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;

std::atomic<uint64_t> g_signals{0};
extern "C" void on_sigprof(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

// SIGPROF every millisecond to the calling thread, for the object's lifetime.
class sigprof_storm {
 public:
  sigprof_storm() {
    struct sigaction sa {};
    sa.sa_handler = on_sigprof;  // no SA_RESTART: interrupted calls fail with EINTR
    sigemptyset(&sa.sa_mask);
    EXPECT_EQ(::sigaction(SIGPROF, &sa, &old_), 0);
    sigevent ev{};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev._sigev_un._tid = static_cast<pid_t>(::syscall(SYS_gettid));
    EXPECT_EQ(::timer_create(CLOCK_MONOTONIC, &ev, &timer_), 0) << std::strerror(errno);
    itimerspec every_ms{{0, 1'000'000}, {0, 1'000'000}};
    EXPECT_EQ(::timer_settime(timer_, 0, &every_ms, nullptr), 0);
  }
  ~sigprof_storm() {
    ::timer_delete(timer_);
    ::sigaction(SIGPROF, &old_, nullptr);
  }
  sigprof_storm(const sigprof_storm&) = delete;
  sigprof_storm& operator=(const sigprof_storm&) = delete;

 private:
  struct sigaction old_ {};
  timer_t timer_{};
};

struct tally {
  uint64_t eintr = 0;   // operations that reported EINTR
  uint64_t errors = 0;  // any other failure or wrong data
  uint64_t rounds = 0;
  void check(const std::error_code& ec) {
    if (ec == std::errc::interrupted) {
      ++eintr;
    } else {
      ++errors;
      ADD_FAILURE() << ec.message();
    }
  }
};

bool enough(uint64_t target) { return g_signals.load(std::memory_order_relaxed) >= target; }

// Rounds are paced so the loop spends most of its time parked in the kernel
// (io_uring_enter, epoll_wait), where a signal interrupts the wait; a loop
// that never blocks would only ever be interrupted in user space.
task<bool> pace(tally& t) {
  auto s = co_await sleep_for(1ms);
  if (!s) t.check(s.error());
  co_return s.has_value();
}

// Echoes 16 KiB messages over loopback TCP until enough signals arrived.
task<void> tcp_traffic(uint64_t target, tally& t) {
  auto lb = test::listen_loopback();
  auto server = [](net::tcp_listener& l, tally& t) -> task<void> {
    auto s = co_await l.accept();
    if (!s) co_return t.check(s.error());
    std::vector<std::byte> buf(16 << 10);
    for (;;) {
      auto r = co_await s->recv_exact(buf);
      if (!r) {
        if (r.error() != make_error_code(errc::unexpected_eof)) t.check(r.error());
        co_return;
      }
      auto w = co_await s->send_all(buf);
      if (!w) co_return t.check(w.error());
    }
  };
  auto srv = runtime::current()->spawn(server(lb.listener, t));
  auto c = co_await net::tcp_stream::connect(lb.addr);
  if (!c) {
    t.check(c.error());
    srv.cancel();
    co_await std::move(srv);
    co_return;
  }
  std::vector<std::byte> out(16 << 10), in(16 << 10);
  for (uint32_t round = 0; !enough(target); ++round) {
    aio_test::fill_pattern(out, round);
    auto w = co_await c->send_all(out);
    if (!w) {
      t.check(w.error());
      break;
    }
    auto r = co_await c->recv_exact(in);
    if (!r) {
      t.check(r.error());
      break;
    }
    if (!aio_test::same(in, out)) ++t.errors;
    ++t.rounds;
    const bool paced = co_await pace(t);
    if (!paced) break;
  }
  auto closed = co_await c->close();  // the server sees the end and returns
  if (!closed) t.check(closed.error());
  co_await std::move(srv);
}

// Writes and reads back 16 KiB blocks of a buffered file.
// Paths by value: a coroutine keeps its parameters, not what a reference named.
task<void> file_traffic(std::string path, uint64_t target, tally& t) {
  auto f = co_await file::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  if (!f) co_return t.check(f.error());
  std::vector<std::byte> out(16 << 10), in(16 << 10);
  for (uint32_t round = 0; !enough(target); ++round) {
    aio_test::fill_pattern(out, round);
    const uint64_t off = (round % 64) * out.size();
    auto w = co_await f->write_at(out, off);
    if (!w) co_return t.check(w.error());
    auto r = co_await f->read_exact_at(in, off);
    if (!r) co_return t.check(r.error());
    if (*w != out.size() || !aio_test::same(in, out)) ++t.errors;
    ++t.rounds;
    const bool paced = co_await pace(t);
    if (!paced) co_return;
  }
}

// O_DIRECT reads through Linux AIO (the backend's eventfd read on the main driver).
task<void> direct_traffic(std::string path, uint64_t target, tally& t) {
  auto f = co_await direct_file::open(path.c_str(), O_RDONLY, {.engine = dio_engine::aio});
  if (!f) co_return t.check(f.error());
  auto buf = dma_buffer::allocate(4096);
  if (!buf) co_return t.check(buf.error());
  const std::vector<std::byte> expect = aio_test::pattern(64 * 4096, 7);
  for (uint32_t round = 0; !enough(target); ++round) {
    const uint64_t block = round % 64;
    auto r = co_await f->read_at(buf->span(), block * 4096);
    if (!r) co_return t.check(r.error());
    if (*r != 4096 || std::memcmp(buf->data(), expect.data() + block * 4096, 4096) != 0) ++t.errors;
    ++t.rounds;
    const bool paced = co_await pace(t);
    if (!paced) co_return;
  }
}

task<void> timer_traffic(uint64_t target, tally& t) {
  while (!enough(target)) {
    const bool paced = co_await pace(t);
    if (!paced) co_return;
    ++t.rounds;
  }
}

TEST(Stress, SigprofAtOneKhzNeverSurfacesAsEintr) {
  const uint64_t target = stress::scaled(10'000, 300);  // signals: 10 s at full size
  test::temp_dir dir;
  aio_test::direct_dir ddir;
  const std::string direct_path = ddir.ok() ? ddir.file("direct") : std::string();
  if (ddir.ok()) {
    ASSERT_TRUE(aio_test::write_file(direct_path, aio_test::pattern(64 * 4096, 7)));
  }
  g_signals = 0;
  tally tcp, files, direct, timers;
  {
    sigprof_storm storm;
    test::run([&]() -> task<void> {
      std::vector<join_handle<void>> hs;
      hs.push_back(runtime::current()->spawn(tcp_traffic(target, tcp)));
      hs.push_back(runtime::current()->spawn(file_traffic(dir.file("buffered"), target, files)));
      if (ddir.ok()) hs.push_back(runtime::current()->spawn(direct_traffic(direct_path, target, direct)));
      hs.push_back(runtime::current()->spawn(timer_traffic(target, timers)));
      for (auto& h : hs) co_await std::move(h);
    }());
  }
  EXPECT_GE(g_signals.load(), target);
  for (const tally* t : {&tcp, &files, &direct, &timers}) {
    EXPECT_EQ(t->eintr, 0u);
    EXPECT_EQ(t->errors, 0u);
  }
  EXPECT_GT(tcp.rounds, 0u);
  EXPECT_GT(files.rounds, 0u);
  EXPECT_GT(timers.rounds, 0u);
  if (ddir.ok()) {
    EXPECT_GT(direct.rounds, 0u);
  }
}

// ---- a profiler's timer ------------------------------------------------------------
// setitimer every 100 us as profilers set it: process-wide signals, one
// often pending while io_uring's io-wq forks a worker for an op it punted
// (open with O_CREAT, fsync). When the fork keeps failing io-wq answers the
// op ECANCELED though nobody cancelled it; the driver resubmits those. The
// handler is installed with and without SA_RESTART.

std::atomic<uint64_t> g_ticks{0};
extern "C" void on_tick(int) { g_ticks.fetch_add(1, std::memory_order_relaxed); }

class itimer_storm {
 public:
  itimer_storm(int which, bool restart) : which_(which), sig_(which == ITIMER_PROF ? SIGPROF : SIGALRM) {
    struct sigaction sa {};
    sa.sa_handler = on_tick;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    EXPECT_EQ(::sigaction(sig_, &sa, &old_), 0);
    const itimerval every{{0, 100}, {0, 100}};
    EXPECT_EQ(::setitimer(which_, &every, nullptr), 0);
  }
  ~itimer_storm() {
    const itimerval off{};
    ::setitimer(which_, &off, nullptr);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;  // discards one still pending (SIGALRM's default kills)
    ::sigaction(sig_, &ignore, nullptr);
    ::sigaction(sig_, &old_, nullptr);
  }
  itimer_storm(const itimer_storm&) = delete;
  itimer_storm& operator=(const itimer_storm&) = delete;

 private:
  int which_;
  int sig_;
  struct sigaction old_ {};
};

struct storm_tally {
  uint64_t canceled = 0;  // operation_canceled nobody asked for
  uint64_t eintr = 0;
  uint64_t errors = 0;  // anything else, or wrong bytes
  uint64_t rounds = 0;
  template <class R>
  bool ok(const R& r) {
    if (r) return true;
    if (r.error() == std::errc::operation_canceled) {
      ++canceled;
    } else if (r.error() == std::errc::interrupted) {
      ++eintr;
    } else {
      ++errors;
    }
    ADD_FAILURE() << r.error().message();
    return false;
  }
};

// A file's life, rounds times: create, write, fsync, close, open, read back.
task<void> file_life(std::string path, uint64_t rounds, storm_tally& t) {
  std::vector<std::byte> out(16 << 10), in(16 << 10);
  for (uint32_t round = 0; round < rounds; ++round) {
    aio_test::fill_pattern(out, round);
    auto f = co_await file::create(path.c_str());
    if (!t.ok(f) || !t.ok(co_await f->write_all_at(out, 0)) || !t.ok(co_await f->fsync()) ||
        !t.ok(co_await f->close())) {
      co_return;
    }
    auto g = co_await file::open(path.c_str());
    if (!t.ok(g) || !t.ok(co_await g->read_exact_at(in, 0))) co_return;
    if (!aio_test::same(in, out)) ++t.errors;
    ++t.rounds;
  }
}

// 16 KiB echoed over loopback TCP, rounds times.
task<void> tcp_echo(uint64_t rounds, storm_tally& t) {
  auto lb = test::listen_loopback();
  auto server = [](net::tcp_listener& l, storm_tally& t) -> task<void> {
    auto s = co_await l.accept();
    if (!t.ok(s)) co_return;
    std::vector<std::byte> buf(16 << 10);
    for (;;) {
      auto r = co_await s->recv_exact(buf);
      if (!r && r.error() == make_error_code(errc::unexpected_eof)) co_return;
      if (!t.ok(r) || !t.ok(co_await s->send_all(buf))) co_return;
    }
  };
  auto srv = runtime::current()->spawn(server(lb.listener, t));
  auto c = co_await net::tcp_stream::connect(lb.addr);
  if (t.ok(c)) {
    std::vector<std::byte> out(16 << 10), in(16 << 10);
    for (uint32_t round = 0; round < rounds; ++round) {
      aio_test::fill_pattern(out, round);
      if (!t.ok(co_await c->send_all(out)) || !t.ok(co_await c->recv_exact(in))) break;
      if (!aio_test::same(in, out)) ++t.errors;
      ++t.rounds;
    }
    (void)t.ok(co_await c->close());  // the server sees the end and returns
  } else {
    srv.cancel();
  }
  co_await std::move(srv);
}

class ProfilerTimer : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(ProfilerTimer, NeverCancelsNorInterruptsAnOperation) {
  const auto [which, restart] = GetParam();
  // Each batch is a fresh runtime, so a fresh io-wq that forks its workers
  // under the storm.
  const uint64_t batches = stress::scaled(400, 20), rounds = 5, tasks = 8;
  test::temp_dir dir;
  storm_tally files, tcp, blocking;
  uint64_t retries = 0;
  g_ticks = 0;
  {
    itimer_storm storm(which, restart);
    for (uint64_t b = 0; b < batches; ++b) {
      test::run([&]() -> task<void> {
        std::vector<join_handle<void>> hs;
        for (uint64_t i = 0; i < tasks; ++i) {
          // Appended, not `"f" + ...`: g++ 12 -O3 warns falsely (-Wrestrict) on that form.
          std::string name = "f";
          name += std::to_string(i);
          hs.push_back(runtime::current()->spawn(file_life(dir.file(name), rounds, files)));
        }
        hs.push_back(runtime::current()->spawn(tcp_echo(rounds * 4, tcp)));
        for (auto& h : hs) co_await std::move(h);
        retries += runtime::current()->stats().io.cancel_retries;
      }());
    }
    // The blocking forms: single ops make their own system calls, tasks
    // (write_all_at, read_exact_at) run on this thread's private runtime.
    std::vector<std::byte> out(16 << 10), in(16 << 10);
    const std::string path = dir.file("blocking");
    for (uint32_t round = 0; round < batches; ++round) {
      aio_test::fill_pattern(out, round);
      auto f = block(file::create(path.c_str()));
      if (!blocking.ok(f) || !blocking.ok(block(f->write_all_at(out, 0))) || !blocking.ok(block(f->fsync())) ||
          !blocking.ok(block(f->read_exact_at(in, 0))) || !blocking.ok(block(f->close()))) {
        break;
      }
      if (!aio_test::same(in, out)) ++blocking.errors;
      ++blocking.rounds;
    }
  }
  EXPECT_GT(g_ticks.load(), 0u);
  for (const storm_tally* t : {&files, &tcp, &blocking}) {
    EXPECT_EQ(t->canceled, 0u);
    EXPECT_EQ(t->eintr, 0u);
    EXPECT_EQ(t->errors, 0u);
  }
  EXPECT_EQ(files.rounds, batches * tasks * rounds);
  EXPECT_EQ(tcp.rounds, batches * rounds * 4);
  EXPECT_EQ(blocking.rounds, batches);
  RecordProperty("signals", std::to_string(g_ticks.load()));
  RecordProperty("cancel_retries", std::to_string(retries));
}

INSTANTIATE_TEST_SUITE_P(Stress, ProfilerTimer,
                         ::testing::Combine(::testing::Values(ITIMER_PROF, ITIMER_REAL), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<int, bool>>& p) {
                           return std::string(std::get<0>(p.param) == ITIMER_PROF ? "prof" : "real") +
                                  (std::get<1>(p.param) ? "_restart" : "_no_restart");
                         });

}  // namespace
}  // namespace coil
