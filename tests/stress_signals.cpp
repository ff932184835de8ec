// Signals: SIGPROF at 1 kHz aimed at the loop thread (a handler without
// SA_RESTART, so every blocking system call it hits returns EINTR) while
// TCP, file, O_DIRECT and timer traffic runs. No operation may report
// EINTR to user code, and every byte must arrive intact.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
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

// O_DIRECT reads through Linux AIO (the AIO context's eventfd and reaper).
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

}  // namespace
}  // namespace coil
