// Timers: order, never early, cancellation, clocks.
#include <algorithm>
#include <random>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;
using coil::test::run;

TEST(Timers, FireInDeadlineOrderAndNeverEarly) {
  struct record {
    int64_t deadline;
    int64_t woke;
  };
  std::vector<record> order;
  auto body = [&]() -> task<void> {
    auto* rt = runtime::current();
    std::mt19937 rng(42);
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < 500; ++i) {
      const int64_t delay = static_cast<int64_t>(rng() % 30'000'000);  // < 30 ms
      hs.push_back(rt->spawn([](int64_t d, std::vector<record>& out) -> task<void> {
        auto* rt = runtime::current();
        const int64_t deadline = rt->now_ns() + d;
        auto r = co_await sleep_until_ns(deadline);
        EXPECT_TRUE(r);
        out.push_back({deadline, rt->now_ns()});
      }(delay, order)));
    }
    for (auto& h : hs) co_await h;
  };
  run(body());
  ASSERT_EQ(order.size(), 500u);
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_GE(order[i].woke, order[i].deadline) << "timer " << i << " fired early";
    if (i > 0) {
      EXPECT_LE(order[i - 1].deadline, order[i].deadline) << "timers fired out of order";
    }
  }
}

TEST(Timers, SleepForWaitsAtLeastTheDuration) {
  auto body = []() -> task<int64_t> {
    auto* rt = runtime::current();
    const int64_t t0 = rt->now_ns();
    auto r = co_await sleep_for(20ms);
    EXPECT_TRUE(r);
    co_return rt->now_ns() - t0;
  };
  EXPECT_GE(run(body()), 20'000'000);
}

TEST(Timers, ZeroAndPastDeadlinesDoNotSuspend) {
  auto body = []() -> task<uint64_t> {
    auto* rt = runtime::current();
    const auto turns = rt->stats().loop_turns;
    EXPECT_TRUE(co_await sleep_for(0ns));
    EXPECT_TRUE(co_await sleep_for(-5ms));
    EXPECT_TRUE(co_await sleep_until_ns(rt->now_ns() - 1000));
    EXPECT_TRUE(co_await sleep_until(std::chrono::steady_clock::now() - 1s));
    co_return rt->stats().loop_turns - turns;
  };
  EXPECT_EQ(run(body()), 0u);
}

TEST(Timers, SleepUntilSteadyClock) {
  auto body = []() -> task<bool> {
    const auto deadline = std::chrono::steady_clock::now() + 15ms;
    auto r = co_await sleep_until(deadline);
    co_return r && std::chrono::steady_clock::now() >= deadline;
  };
  EXPECT_TRUE(run(body()));
}

TEST(Timers, BootClockRuntime) {
  runtime_options opts;
  opts.clock = CLOCK_BOOTTIME;
  auto body = []() -> task<bool> {
    auto* rt = runtime::current();
    timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    const int64_t boot = ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
    EXPECT_LT(std::llabs(rt->now_ns() - boot), 1'000'000'000LL);  // same clock, not monotonic's
    const int64_t t0 = rt->now_ns();
    auto r = co_await sleep_for(10ms);
    co_return r && rt->now_ns() - t0 >= 10'000'000;
  };
  EXPECT_TRUE(run(body(), opts));
}

TEST(Timers, CancelledSleepGivesOperationCanceled) {
  auto body = []() -> task<bool> {
    auto* rt = runtime::current();
    auto h = rt->spawn([]() -> task<result<void>> { co_return co_await sleep_for(1h); }());
    co_await yield();
    h.cancel();
    auto r = co_await h;
    co_return !r && r.error() == std::errc::operation_canceled;
  };
  EXPECT_TRUE(run(body()));
}

TEST(Timers, ManyTimersParkUsesNearestDeadline) {
  // 2,000 timers spread over 50 ms: the loop must park between them rather
  // than spin, so parks stay far below turns of a busy loop.
  auto body = []() -> task<runtime_stats> {
    auto* rt = runtime::current();
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < 2000; ++i) {
      hs.push_back(rt->spawn([](int i) -> task<void> {
        co_await sleep_for(std::chrono::microseconds(25 * i));
      }(i)));
    }
    for (auto& h : hs) co_await h;
    co_return rt->stats();
  };
  auto s = run(body());
  EXPECT_EQ(s.timers_fired, 1999u);  // i == 0 does not suspend
  EXPECT_LE(s.loop_turns, 2 * 2000u + 10);
}

}  // namespace
