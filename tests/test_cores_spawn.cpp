// cores::spawn_on: fire-and-forget work on another core, with a bounded
// number of messages in flight per core pair. Runs under TSan (suite "Cores").
#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include "coil/rt/cores.hpp"
#include "test_cores_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

// Keeps a core's main (so the group) alive until pred() holds: spawned work
// still queued when every main has returned is dropped, as detached tasks are.
template <class Pred>
task<result<void>> until(Pred pred) {
  for (int i = 0; i < 2000 && !pred(); ++i) {
    auto z = co_await sleep_for(1ms);
    if (!z) co_return z;
  }
  co_return result<void>{};
}

// Holds core 1's thread (so it takes no messages) until released.
void hold_until(const std::atomic<bool>& release) {
  while (!release.load()) std::this_thread::sleep_for(1ms);
}

TEST(CoresSpawnOn, RunsOnTheTargetCore) {
  std::atomic<int> where{-1};
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 1) co_return co_await until([&] { return where.load() >= 0; });
    auto s = co_await cores::spawn_on(1, [&]() -> task<void> {
      where = static_cast<int>(cores::current());
      co_return;
    });
    co_return s;
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(where.load(), 1);
}

TEST(CoresSpawnOn, BackpressureBlocksTheSenderAndResumesIt) {
  constexpr unsigned slots = 4;
  std::atomic<bool> release{false};
  std::atomic<int> ran{0};
  std::atomic<int> accepted{0};
  auto r = cores::run(test::two_cores(slots), [&](unsigned core) -> task<result<void>> {
    if (core == 1) {
      hold_until(release);
      co_return co_await until([&] { return ran.load() == int(slots) + 6; });
    }
    auto job = [&]() -> task<void> {
      ran.fetch_add(1);
      co_return;
    };
    for (unsigned i = 0; i < slots; ++i) {
      auto s = co_await cores::spawn_on(1, job);
      if (!s) co_return s;
      ++accepted;
    }
    // The bound is reached: the next sends wait.
    auto sender = [&]() -> task<result<void>> {
      for (int i = 0; i < 6; ++i) {
        auto s = co_await cores::spawn_on(1, job);
        if (!s) co_return s;
        ++accepted;
      }
      co_return result<void>{};
    };
    auto h = runtime::current()->spawn(sender());
    auto z = co_await sleep_for(50ms);
    (void)z;
    EXPECT_EQ(accepted.load(), int(slots)) << "a send beyond the bound did not wait";
    EXPECT_FALSE(h.done());
    release = true;
    auto resumed = co_await until([&] { return h.done(); });  // fail rather than hang
    if (!resumed || !h.done()) {
      ADD_FAILURE() << "a waiting sender was never resumed";
      cores::stop();
    }
    auto res = co_await h;
    if (!res) co_return res;
    EXPECT_EQ(accepted.load(), int(slots) + 6);
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(ran.load(), int(slots) + 6);
}

TEST(CoresSpawnOn, AWaitingSenderCanBeCancelledAndItsWorkNeverRuns) {
  std::atomic<bool> release{false};
  std::atomic<int> ran{0};
  auto r = cores::run(test::two_cores(2), [&](unsigned core) -> task<result<void>> {
    if (core == 1) {
      hold_until(release);
      co_return co_await until([&] { return ran.load() == 3; });
    }
    auto job = [&]() -> task<void> {
      ran.fetch_add(1);
      co_return;
    };
    for (int i = 0; i < 2; ++i) {
      auto s = co_await cores::spawn_on(1, job);
      if (!s) co_return s;
    }
    auto late = co_await with_timeout(cores::spawn_on(1, job), 20ms);
    EXPECT_TRUE(test::fails_with(late, std::errc::timed_out));
    release = true;
    // A fresh send still goes through once the target takes the first two.
    auto again = co_await cores::spawn_on(1, job);
    co_return again;
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(ran.load(), 3);
}

TEST(CoresSpawnOn, BadCoreAndNoGroupAreErrors) {
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 1) co_return result<void>{};
    auto bad = co_await cores::spawn_on(7, []() -> task<void> { co_return; });
    EXPECT_TRUE(test::fails_with(bad, std::errc::invalid_argument));
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  test::run([]() -> task<void> {
    auto none = co_await cores::spawn_on(0, []() -> task<void> { co_return; });
    EXPECT_TRUE(test::fails_with(none, errc::no_runtime));
  }());
}

TEST(CoresSpawnOn, LargeCallablesAreCarriedToo) {
  std::atomic<int> sum{0};
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 1) co_return co_await until([&] { return sum.load() != 0; });
    std::array<int, 64> big{};  // 256 bytes: beyond the inline slot
    for (int i = 0; i < 64; ++i) big[i] = i;
    auto s = co_await cores::spawn_on(1, [&sum, big]() -> task<void> {
      int t = 0;
      for (int v : big) t += v;
      sum = t;
      co_return;
    });
    co_return s;
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(sum.load(), 63 * 64 / 2);
}

TEST(CoresSpawnOn, HundredThousandMessagesBothWaysAllRun) {
  constexpr int per_core = 100'000;
  uint64_t ran[2] = {0, 0};  // ran[c] touched only on core c
  std::atomic<int> finished{0};
  auto r = cores::run(test::two_cores(16), [&](unsigned core) -> task<result<void>> {
    const unsigned other = 1 - core;
    for (int i = 0; i < per_core; ++i) {
      auto s = co_await cores::spawn_on(other, [&ran, other]() -> task<void> {
        ++ran[other];
        co_return;
      });
      if (!s) co_return s;
    }
    // Everything sent is taken before the mains end: one last round trip
    // through each core's FIFO of posts.
    auto last = co_await cores::submit_to(other, [&]() -> task<int> { co_return finished.fetch_add(1); });
    if (!last) co_return fail(last.error());
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(ran[0], uint64_t(per_core));
  EXPECT_EQ(ran[1], uint64_t(per_core));
}

TEST(CoresSpawnOn, StopWakesSendersWaitingForSlots) {
  std::atomic<bool> release{false};
  std::atomic<int> waiting{0};
  auto r = cores::run(test::two_cores(1), [&](unsigned core) -> task<result<void>> {
    if (core == 1) {
      hold_until(release);
      co_return result<void>{};
    }
    auto first = co_await cores::spawn_on(1, []() -> task<void> { co_return; });
    if (!first) co_return first;
    auto sender = [&]() -> task<result<void>> {
      ++waiting;
      co_return co_await cores::spawn_on(1, []() -> task<void> { co_return; });
    };
    std::vector<join_handle<result<void>>> hs;
    for (int i = 0; i < 100; ++i) hs.push_back(runtime::current()->spawn(sender()));
    auto z = co_await sleep_for(20ms);
    (void)z;
    cores::stop();
    int cancelled = 0;
    for (auto& h : hs) {
      auto res = co_await h;
      if (!res && res.error() == std::errc::operation_canceled) ++cancelled;
    }
    EXPECT_EQ(cancelled, 100);
    release = true;
    co_return result<void>{};
  });
  EXPECT_TRUE(r || r.error() == std::errc::operation_canceled) << r.error().message();
  EXPECT_EQ(waiting.load(), 100);
}

}  // namespace
