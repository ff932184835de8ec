// Thread-per-core: the launcher, cross-core calls, stop and signals. Runs
// under ThreadSanitizer in scripts/test.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>

#include "coil/net.hpp"
#include "coil/rt/cores.hpp"
#include "test_cores_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

TEST(Cores, EachCoreRunsMainWithItsIndex) {
  std::atomic<unsigned> seen{0};
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    EXPECT_EQ(cores::current(), core);
    EXPECT_EQ(cores::count(), 2u);
    seen.fetch_or(1u << core);
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(seen.load(), 3u);
}

TEST(Cores, PingPongMillionMessagesCountsAreExact) {
  // 64 tasks on core 1 each make calls that increment a counter owned by
  // core 0 (touched only on core 0: no atomics needed there).
  constexpr int tasks = 64, calls = 1'000'000 / 64;
  uint64_t counter = 0;  // core 0's
  uint64_t answered = 0; // core 1's
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 0) co_return result<void>{};
    auto worker = [&]() -> task<result<void>> {
      for (int i = 0; i < calls; ++i) {
        auto v = co_await cores::submit_to(0, [&]() -> task<uint64_t> { co_return ++counter; });
        if (!v) co_return fail(v.error());
        ++answered;
      }
      co_return result<void>{};
    };
    std::vector<join_handle<result<void>>> hs;
    for (int t = 0; t < tasks; ++t) hs.push_back(runtime::current()->spawn(worker()));
    for (auto& h : hs) {
      auto res = co_await h;
      if (!res) co_return res;
    }
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(counter, uint64_t(tasks) * calls);
  EXPECT_EQ(answered, uint64_t(tasks) * calls);
}

TEST(Cores, SubmitToRunsOnTheTargetAndReturnsValuesAndErrors) {
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 1) co_return result<void>{};
    auto where = co_await cores::submit_to(1, []() -> task<unsigned> { co_return cores::current(); });
    EXPECT_TRUE(where && *where == 1u);
    auto err = co_await cores::submit_to(1, []() -> task<result<int>> { co_return fail(std::errc::io_error); });
    EXPECT_EQ(err.error(), std::errc::io_error);
    auto nothing = co_await cores::submit_to(1, []() -> task<void> { co_return; });
    EXPECT_TRUE(nothing);
    auto bad = co_await cores::submit_to(7, []() -> task<int> { co_return 1; });
    EXPECT_EQ(bad.error(), std::errc::invalid_argument);
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
}

TEST(Cores, FirstErrorStopsTheOthersAndIsReturned) {
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 0) {
      co_await sleep_for(1h);  // cancelled by core 1's failure
      co_return result<void>{};
    }
    co_await sleep_for(5ms);
    co_return fail(std::errc::connection_refused);
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::connection_refused);
}

TEST(Cores, StopCancelsBlockedTasksEverywhereAndLeaksNoFd) {
  const int fds_before = test::open_fds();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    // 1,000 tasks per core blocked on a socket recv, a pipe read or a long timer.
    for (int i = 0; i < 1000; ++i) {
      if (i % 3 == 0) {
        runtime::current()->spawn([]() -> task<void> {
          auto sp = net::unix_stream::pair();
          if (!sp) co_return;
          char b[8];
          (void)co_await sp->first.recv(std::as_writable_bytes(std::span(b)));
        }()).detach();
      } else if (i % 3 == 1) {
        runtime::current()->spawn([](int fd) -> task<void> {
          file f{unique_fd(::dup(fd))};
          char b[8];
          (void)co_await f.read(std::as_writable_bytes(std::span(b)));
        }(p[0])).detach();
      } else {
        runtime::current()->spawn([]() -> task<void> { co_await sleep_for(1h); }()).detach();
      }
    }
    if (core == 1) {
      co_await sleep_for(10ms);
      cores::stop();
    }
    co_await sleep_for(1h);
    co_return result<void>{};
  });
  EXPECT_TRUE(r) << r.error().message();  // a requested stop is not an error
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_EQ(test::open_fds(), fds_before);
}

TEST(Cores, SigtermStopsEveryCoreCleanly) {
  cores_options o = test::two_cores();
  o.handle_signals = true;
  auto r = cores::run(o, [&](unsigned core) -> task<result<void>> {
    if (core == 1) {
      co_await sleep_for(10ms);
      ::kill(::getpid(), SIGTERM);  // blocked in every thread: goes to the signalfd
    }
    co_await sleep_for(1h);
    co_return result<void>{};
  });
  EXPECT_TRUE(r) << r.error().message();
}

}  // namespace
