// coil::semaphore: FIFO hand-over, bounded concurrency, cancellation and
// destruction mid-wait never lose or duplicate a permit.
#include <algorithm>
#include <vector>

#include "coil/sync/semaphore.hpp"
#include "test_sync_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;
using namespace coil::test;  // run, settle, start_here, error_of

task<result<void>> acquire_and_record(semaphore& s, std::size_t n, int id, std::vector<int>& order) {
  auto p = co_await s.acquire(n);
  if (!p) co_return fail(p.error());
  order.push_back(id);
  co_return result<void>{};
}

TEST(Semaphore, WaitersAreServedInArrivalOrder) {
  auto body = []() -> task<result<std::vector<int>>> {
    semaphore s(0);
    std::vector<int> order;
    std::vector<join_handle<result<void>>> hs;
    for (int i = 0; i < 6; ++i) hs.push_back(runtime::current()->spawn(acquire_and_record(s, 1, i, order)));
    co_await settle();
    EXPECT_EQ(s.waiting(), 6u);
    s.release(1);  // each finisher drops its permit: the next in line gets it
    for (auto& h : hs) {
      auto r = co_await h;
      EXPECT_TRUE(r);
    }
    EXPECT_EQ(s.available(), 1u);
    co_return order;
  };
  auto order = run(body());
  ASSERT_TRUE(order);
  EXPECT_EQ(*order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

TEST(Semaphore, NoBargingPastALargerHeadWaiter) {
  auto body = []() -> task<result<std::vector<int>>> {
    semaphore s(2);
    std::vector<int> order;
    auto big = runtime::current()->spawn(acquire_and_record(s, 3, 0, order));
    auto small = runtime::current()->spawn(acquire_and_record(s, 1, 1, order));
    co_await settle();
    // Two permits are free, but the head wants three: nobody may overtake it.
    EXPECT_EQ(s.waiting(), 2u);
    EXPECT_FALSE(s.try_acquire(1));
    s.release(1);
    (void)co_await big;
    (void)co_await small;
    co_return order;
  };
  auto order = run(body());
  ASSERT_TRUE(order);
  EXPECT_EQ(*order, (std::vector<int>{0, 1}));
}

struct usage {
  int in_use = 0;
  int peak = 0;
  int done = 0;
};

task<void> worker(semaphore& s, usage& u, int i) {
  auto p = co_await s.acquire();
  if (!p) co_return;
  ++u.in_use;
  u.peak = std::max(u.peak, u.in_use);
  for (int k = 0; k < i % 4; ++k) co_await yield();
  if (i % 5 == 0) (void)co_await sleep_for(100us);
  --u.in_use;
  ++u.done;
}

TEST(Semaphore, NeverExceedsItsCount) {
  usage u;
  auto body = [](usage& u) -> task<result<void>> {
    semaphore s(3);
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < 200; ++i) hs.push_back(runtime::current()->spawn(worker(s, u, i)));
    for (auto& h : hs) co_await h;
    EXPECT_EQ(s.available(), 3u);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body(u)));
  EXPECT_EQ(u.done, 200);
  EXPECT_EQ(u.peak, 3);  // reached, never passed
}

TEST(Semaphore, CancelledWaiterLeavesTheQueue) {
  auto body = []() -> task<result<void>> {
    semaphore s(0);
    std::vector<int> order;
    auto a = runtime::current()->spawn(acquire_and_record(s, 1, 0, order));
    auto b = runtime::current()->spawn(acquire_and_record(s, 1, 1, order));
    co_await settle();
    a.cancel();
    auto ra = co_await a;
    EXPECT_FALSE(ra);
    EXPECT_EQ(error_of(ra), std::errc::operation_canceled);
    EXPECT_EQ(s.waiting(), 1u);
    s.release(1);
    auto rb = co_await b;
    EXPECT_TRUE(rb);
    EXPECT_EQ(order, std::vector<int>{1});
    EXPECT_EQ(s.available(), 1u);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Semaphore, CancellingTheHeadServesTheWaitersBehindIt) {
  auto body = []() -> task<result<void>> {
    semaphore s(1);
    std::vector<int> order;
    auto big = runtime::current()->spawn(acquire_and_record(s, 5, 0, order));
    auto small = runtime::current()->spawn(acquire_and_record(s, 1, 1, order));
    co_await settle();
    big.cancel();  // the permit that was blocked behind the head goes to small
    (void)co_await big;
    auto r = co_await small;  // without the re-dispatch this never completes
    EXPECT_TRUE(r);
    EXPECT_EQ(order, std::vector<int>{1});
    co_return result<void>{};
  };
  auto r = run(body());
  EXPECT_TRUE(r) << r.error().message();
}

// A release and a cancel in the same turn, in both orders: the permit ends up
// used exactly once and returns; it is never lost.
TEST(Semaphore, ReleaseRacingCancelNeverLosesThePermit) {
  for (bool cancel_first : {true, false}) {
    auto body = [](bool cancel_first) -> task<result<std::vector<int>>> {
      semaphore s(0);
      std::vector<int> order;
      auto a = runtime::current()->spawn(acquire_and_record(s, 1, 0, order));
      auto b = runtime::current()->spawn(acquire_and_record(s, 1, 1, order));
      co_await settle();
      if (cancel_first) {
        a.cancel();
        s.release(1);
      } else {
        s.release(1);  // granted to a, whose resume is queued: a keeps it
        a.cancel();
      }
      auto ra = co_await a;
      auto rb = co_await b;
      EXPECT_EQ(static_cast<bool>(ra), !cancel_first);
      EXPECT_TRUE(rb);
      EXPECT_EQ(s.available(), 1u);
      EXPECT_EQ(s.waiting(), 0u);
      co_return order;
    };
    auto order = run(body(cancel_first));
    ASSERT_TRUE(order) << order.error().message();
    if (cancel_first) {
      EXPECT_EQ(*order, std::vector<int>{1});
    } else {
      EXPECT_EQ(*order, (std::vector<int>{0, 1}));
    }
  }
}

TEST(Semaphore, DestroyingAWaitingFrameUnlinksIt) {
  auto body = []() -> task<result<void>> {
    semaphore s(0);
    std::vector<int> order;
    {
      auto t = acquire_and_record(s, 1, 0, order);
      start_here(t);
      EXPECT_EQ(s.waiting(), 1u);
    }  // frame destroyed while queued
    EXPECT_EQ(s.waiting(), 0u);
    s.release(1);
    EXPECT_EQ(s.available(), 1u);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Semaphore, PermitGrantedToADestroyedFrameGoesToTheNextWaiter) {
  auto body = []() -> task<result<void>> {
    semaphore s(0);
    std::vector<int> order;
    auto b = acquire_and_record(s, 1, 1, order);
    {
      auto a = acquire_and_record(s, 1, 0, order);
      start_here(a);
      start_here(b);
      s.release(1);  // granted to a; a's resume is queued
      EXPECT_EQ(s.available(), 0u);
    }  // a dies before resuming: its permit must move on to b
    co_await settle();
    EXPECT_TRUE(b.done());
    EXPECT_EQ(order, std::vector<int>{1});
    EXPECT_EQ(s.available(), 1u);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Semaphore, TryAcquireAndPermitRelease) {
  auto body = []() -> task<result<void>> {
    semaphore s(2);
    auto p = s.try_acquire(2);
    EXPECT_TRUE(p);
    EXPECT_EQ(s.available(), 0u);
    auto q = s.try_acquire();
    EXPECT_FALSE(q);
    EXPECT_EQ(error_of(q), std::errc::operation_would_block);
    p->release();
    EXPECT_EQ(s.available(), 2u);
    {
      auto r = co_await s.acquire(2);
      EXPECT_TRUE(r);
      r->forget();
    }
    EXPECT_EQ(s.available(), 0u);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Semaphore, WithTimeoutGivesUpAndLeavesTheQueue) {
  auto body = []() -> task<result<void>> {
    semaphore s(0);
    auto r = co_await with_timeout(s.acquire(), 2ms);
    EXPECT_FALSE(r);
    EXPECT_EQ(error_of(r), std::errc::timed_out);
    EXPECT_EQ(s.waiting(), 0u);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

}  // namespace
