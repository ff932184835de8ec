// Proves that cores::spawn_on and xchannel allocate nothing per message in
// steady state: spawn_on's messages are preallocated slots, task frames come
// from the per-thread frame lists, xchannel waiters live in frames. This
// binary replaces the global allocator with a counting one (every thread).
#include <atomic>
#include <cstdlib>
#include <new>

#include "alloc_counter.hpp"
#include "coil/rt/cores.hpp"
#include "coil/sync/xchannel.hpp"
#include "test_cores_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

// Few spawn_on slots, so that senders also park and get woken.
constexpr unsigned slots = 16;

// One function (not a template per predicate) so the measured phase reuses
// the warm-up's frame size.
task<bool> until(const std::atomic<int>& counter, int want) {
  for (int i = 0; i < 5000 && counter.load() != want; ++i) {
    auto z = co_await sleep_for(1ms);
    if (!z) co_return false;
  }
  co_return counter.load() == want;
}

TEST(AllocCores, SpawnOnAllocatesNothingPerMessage) {
#ifdef COIL_FRAMES_NOT_RECYCLED
  GTEST_SKIP() << "frames are not recycled under AddressSanitizer";
#endif
  constexpr int warm = 2000, measured = 20000;
  std::atomic<int> ran{0};
  std::atomic<int> done{0};
  std::size_t counted = ~std::size_t{0};
  auto r = cores::run(test::two_cores(slots), [&](unsigned core) -> task<result<void>> {
    if (core == 1) {
      auto ok = co_await until(done, 1);
      EXPECT_TRUE(ok);
      co_return result<void>{};
    }
    auto job = [&ran]() -> task<void> {
      ran.fetch_add(1, std::memory_order_relaxed);
      co_return;
    };
    for (int i = 0; i < warm; ++i) {
      auto s = co_await cores::spawn_on(1, job);
      if (!s) co_return s;
    }
    auto w = co_await until(ran, warm);
    EXPECT_TRUE(w);
    const std::size_t before = allocations.load();
    for (int i = 0; i < measured; ++i) {
      auto s = co_await cores::spawn_on(1, job);
      if (!s) co_return s;
    }
    auto m = co_await until(ran, warm + measured);
    EXPECT_TRUE(m);
    counted = allocations.load() - before;
    done = 1;
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(counted, 0u);
}

TEST(AllocCores, XchannelAllocatesNothingPerMessage) {
#ifdef COIL_FRAMES_NOT_RECYCLED
  GTEST_SKIP() << "frames are not recycled under AddressSanitizer";
#endif
  constexpr int warm = 2000, measured = 50000;
  xchannel<int> ch(8);
  std::size_t counted = ~std::size_t{0};
  std::atomic<int> got{0}, done{0};
  auto r = cores::run(test::two_cores(slots), [&](unsigned core) -> task<result<void>> {
    if (core == 1) {
      auto pre = co_await until(done, 0);  // warms this core's frame list for the wait below
      EXPECT_TRUE(pre);
      for (int i = 0; i < warm + measured; ++i) {
        auto v = co_await ch.recv();
        if (!v) co_return fail(v.error());
        got.fetch_add(1, std::memory_order_relaxed);
      }
      auto ok = co_await until(done, 1);  // a finished main makes its core allocate
      EXPECT_TRUE(ok);
      co_return result<void>{};
    }
    for (int i = 0; i < warm; ++i) {
      auto s = co_await ch.send(i);
      if (!s) co_return s;
    }
    auto w = co_await until(got, warm);
    EXPECT_TRUE(w);
    const std::size_t before = allocations.load();
    for (int i = 0; i < measured; ++i) {
      auto s = co_await ch.send(i);
      if (!s) co_return s;
    }
    auto m = co_await until(got, warm + measured);
    EXPECT_TRUE(m);
    counted = allocations.load() - before;
    done = 1;
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(counted, 0u);
}

}  // namespace
