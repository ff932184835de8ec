// runtime::shutdown(grace): cancels every task, waits for their completions
// within the grace time, and otherwise tears the stragglers down safely.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

TEST(Shutdown, CancelsBlockedTasksWhichCleanUpAndFinish) {
  const int fds_before = test::open_fds();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  int cancelled = 0, cleaned = 0;
  {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    for (int i = 0; i < 200; ++i) {
      (*rt)->spawn([](int fd, int& cancelled, int& cleaned) -> task<void> {
        file f{unique_fd(::dup(fd))};
        char b[8];
        auto r = co_await f.read(std::as_writable_bytes(std::span(b)));
        if (!r && r.error() == std::errc::operation_canceled) ++cancelled;
        auto c = co_await f.close();  // closing still works (synchronously) during shutdown
        if (!f.is_open()) ++cleaned;
        (void)c;
      }(p[0], cancelled, cleaned)).detach();
      (*rt)->spawn([](int& cancelled) -> task<void> {
        auto s = co_await sleep_for(1h);
        if (!s && s.error() == std::errc::operation_canceled) ++cancelled;
      }(cancelled)).detach();
    }
    (*rt)->block_on([]() -> task<void> { co_await yield(); }());
    const auto start = std::chrono::steady_clock::now();
    auto r = (*rt)->shutdown(2s);
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_FALSE((*rt)->accepting());
  }
  EXPECT_EQ(cancelled, 400);
  EXPECT_EQ(cleaned, 200);
  // The pipe kept its data: the cancelled reads took nothing.
  ASSERT_EQ(::write(p[1], "z", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'z');
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_EQ(test::open_fds(), fds_before);
}

TEST(Shutdown, StragglerPastGraceIsTornDownAndReported) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  bool reached_end = false;
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  // Ignores cancellation: retries its read forever (each attempt fails at
  // once after shutdown starts), so only the grace limit ends it.
  (*rt)->spawn([](int fd, bool& reached_end) -> task<void> {
    file f{unique_fd(::dup(fd))};
    for (;;) {
      char b[8];
      auto r = co_await f.read(std::as_writable_bytes(std::span(b)));
      if (r) break;
      co_await yield();
    }
    reached_end = true;
  }(p[0], reached_end)).detach();
  (*rt)->block_on([]() -> task<void> { co_await yield(); }());
  const auto start = std::chrono::steady_clock::now();
  auto r = (*rt)->shutdown(50ms);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(test::fails_with(r, std::errc::timed_out));
  EXPECT_GE(took, 50ms);
  EXPECT_FALSE(reached_end);
  rt->reset();
  ::close(p[0]);
  ::close(p[1]);
}

TEST(Shutdown, NewOperationsAfterShutdownFailWithRuntimeClosed) {
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  ASSERT_TRUE((*rt)->shutdown(10ms));
  result<void> got;
  (*rt)->spawn([](result<void>& got) -> task<void> { got = co_await nop(); }(got)).detach();
  auto again = (*rt)->shutdown(10ms);  // runs the new task to its end
  EXPECT_TRUE(again);
  EXPECT_TRUE(test::fails_with(got, errc::runtime_closed));
}

}  // namespace
