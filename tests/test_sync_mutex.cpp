// coil::mutex and coil::condition_variable: FIFO hand-over, mutual exclusion
// across suspension points, wait morphing, cancellation with the lock held.
#include <deque>
#include <vector>

#include "coil/sync/condition_variable.hpp"
#include "coil/sync/mutex.hpp"
#include "test_sync_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;
using namespace coil::test;  // run, settle, start_here, error_of

task<result<void>> lock_and_record(mutex& m, int id, std::vector<int>& order) {
  auto g = co_await m.lock();
  if (!g) co_return fail(g.error());
  order.push_back(id);
  co_return result<void>{};
}

TEST(Mutex, LockIsHandedOverInArrivalOrderWithoutBarging) {
  auto body = []() -> task<result<std::vector<int>>> {
    mutex m;
    std::vector<int> order;
    auto held = m.try_lock();
    EXPECT_TRUE(held);
    std::vector<join_handle<result<void>>> hs;
    for (int i = 0; i < 5; ++i) hs.push_back(runtime::current()->spawn(lock_and_record(m, i, order)));
    co_await settle();
    EXPECT_EQ(m.waiting(), 5u);
    held->unlock();
    // Handed to the head waiter: still locked, so a newcomer cannot take it.
    EXPECT_TRUE(m.locked());
    EXPECT_EQ(error_of(m.try_lock()), std::errc::operation_would_block);
    for (auto& h : hs) (void)co_await h;
    EXPECT_FALSE(m.locked());
    co_return order;
  };
  auto order = run(body());
  ASSERT_TRUE(order);
  EXPECT_EQ(*order, (std::vector<int>{0, 1, 2, 3, 4}));
}

struct shared_state {
  bool inside = false;
  int overlaps = 0;
  long counter = 0;
};

task<void> critical_worker(mutex& m, shared_state& s, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    auto g = co_await m.lock();
    if (!g) co_return;
    if (s.inside) ++s.overlaps;
    s.inside = true;
    const long seen = s.counter;
    co_await yield();  // others run here, but must not get in
    s.counter = seen + 1;
    s.inside = false;
  }
}

TEST(Mutex, ExcludesAcrossSuspensionPoints) {
  shared_state s;
  auto body = [](shared_state& s) -> task<void> {
    mutex m;
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < 8; ++i) hs.push_back(runtime::current()->spawn(critical_worker(m, s, 200)));
    for (auto& h : hs) co_await h;
  };
  run(body(s));
  EXPECT_EQ(s.overlaps, 0);
  EXPECT_EQ(s.counter, 8 * 200);
}

TEST(Mutex, CancelledWaiterLeavesAndTheNextGetsTheLock) {
  auto body = []() -> task<result<std::vector<int>>> {
    mutex m;
    std::vector<int> order;
    auto held = m.try_lock();
    auto a = runtime::current()->spawn(lock_and_record(m, 0, order));
    auto b = runtime::current()->spawn(lock_and_record(m, 1, order));
    co_await settle();
    a.cancel();
    auto ra = co_await a;
    EXPECT_EQ(error_of(ra), std::errc::operation_canceled);
    EXPECT_EQ(m.waiting(), 1u);
    held->unlock();
    (void)co_await b;
    EXPECT_FALSE(m.locked());
    co_return order;
  };
  auto order = run(body());
  ASSERT_TRUE(order);
  EXPECT_EQ(*order, std::vector<int>{1});
}

TEST(Mutex, LockGrantedToADestroyedFrameIsPassedOn) {
  auto body = []() -> task<result<void>> {
    mutex m;
    std::vector<int> order;
    auto held = m.try_lock();
    auto b = lock_and_record(m, 1, order);
    {
      auto a = lock_and_record(m, 0, order);
      start_here(a);
      start_here(b);
      held->unlock();  // to a, whose resume is queued
    }                  // a dies holding a lock it never saw
    co_await settle();
    EXPECT_TRUE(b.done());
    EXPECT_EQ(order, std::vector<int>{1});
    EXPECT_FALSE(m.locked());
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Mutex, CancelledTaskDoesNotTakeAFreeLock) {
  auto body = []() -> task<result<void>> {
    mutex m;
    auto h = runtime::current()->spawn([](mutex& m) -> task<std::error_code> {
      co_await yield();
      auto g = co_await m.lock();
      co_return error_of(g);
    }(m));
    h.cancel();
    const std::error_code e = co_await h;
    EXPECT_EQ(e, std::errc::operation_canceled);
    EXPECT_FALSE(m.locked());
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

// ---- condition_variable ------------------------------------------------------

struct queue_state {
  mutex m;
  condition_variable cv;
  std::deque<int> items;
  bool closed = false;
};

task<long> consume(queue_state& q) {
  long sum = 0;
  for (;;) {
    auto g = co_await q.m.lock();
    if (!g) co_return -1;
    auto w = co_await q.cv.wait(*g, [&q] { return !q.items.empty() || q.closed; });
    if (!w) co_return -1;
    EXPECT_TRUE(g->owns_lock());
    if (q.items.empty()) co_return sum;  // closed and drained
    sum += q.items.front();
    q.items.pop_front();
  }
}

TEST(ConditionVariable, ProducerConsumerWithPredicate) {
  auto body = []() -> task<long> {
    queue_state q;
    auto c1 = runtime::current()->spawn(consume(q));
    auto c2 = runtime::current()->spawn(consume(q));
    long expected = 0;
    for (int i = 1; i <= 2000; ++i) {
      auto g = co_await q.m.lock();
      q.items.push_back(i);
      expected += i;
      q.cv.notify_one();
      g->unlock();
      if (i % 7 == 0) co_await yield();
    }
    {
      auto g = co_await q.m.lock();
      q.closed = true;
      q.cv.notify_all();
    }
    const long s1 = co_await c1;
    const long s2 = co_await c2;
    co_return s1 + s2 - expected;  // 0 when every item was consumed exactly once
  };
  EXPECT_EQ(run(body()), 0);
}

task<result<void>> wait_and_record(queue_state& q, int id, std::vector<int>& order) {
  auto g = co_await q.m.lock();
  if (!g) co_return fail(g.error());
  auto w = co_await q.cv.wait(*g);
  if (!w) co_return fail(w.error());
  order.push_back(id);
  co_await yield();  // still holding the lock: the others must wait
  order.push_back(id);
  co_return result<void>{};
}

TEST(ConditionVariable, NotifyAllMovesWaitersToTheMutexInOrder) {
  auto body = []() -> task<result<std::vector<int>>> {
    queue_state q;
    std::vector<int> order;
    std::vector<join_handle<result<void>>> hs;
    for (int i = 0; i < 4; ++i) hs.push_back(runtime::current()->spawn(wait_and_record(q, i, order)));
    co_await settle();
    EXPECT_EQ(q.cv.waiting(), 4u);
    {
      auto g = co_await q.m.lock();
      q.cv.notify_all();
      // Wait morphing: all four now queue on the mutex, none is awake yet.
      EXPECT_EQ(q.cv.waiting(), 0u);
      EXPECT_EQ(q.m.waiting(), 4u);
    }
    for (auto& h : hs) (void)co_await h;
    co_return order;
  };
  auto order = run(body());
  ASSERT_TRUE(order);
  EXPECT_EQ(*order, (std::vector<int>{0, 0, 1, 1, 2, 2, 3, 3}));
}

TEST(ConditionVariable, FalsePredicateKeepsWaitingWithoutWaking) {
  auto body = []() -> task<result<void>> {
    queue_state q;
    int wakes = 0;
    auto h = runtime::current()->spawn([](queue_state& q, int& wakes) -> task<result<void>> {
      auto g = co_await q.m.lock();
      auto w = co_await q.cv.wait(*g, [&q] { return !q.items.empty(); });
      ++wakes;
      co_return w;
    }(q, wakes));
    co_await settle();
    for (int i = 0; i < 3; ++i) {
      q.cv.notify_all();  // predicate still false
      co_await settle();
    }
    EXPECT_EQ(wakes, 0);
    EXPECT_EQ(q.cv.waiting(), 1u);
    EXPECT_FALSE(q.m.locked());
    q.items.push_back(1);
    q.cv.notify_one();
    auto r = co_await h;
    EXPECT_TRUE(r);
    EXPECT_EQ(wakes, 1);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(ConditionVariable, CancelledWaitReturnsWithTheLockHeld) {
  auto body = []() -> task<result<void>> {
    queue_state q;
    bool held_after = false;
    auto h = runtime::current()->spawn([](queue_state& q, bool& held_after) -> task<std::error_code> {
      auto g = co_await q.m.lock();
      auto w = co_await q.cv.wait(*g);
      held_after = g->owns_lock() && q.m.locked();
      co_return error_of(w);
    }(q, held_after));
    co_await settle();
    auto mine = q.m.try_lock();  // the waiter let go of it while waiting
    EXPECT_TRUE(mine);
    h.cancel();
    co_await settle();
    // Cancelled, but it must get the lock back first: it waits for mine.
    EXPECT_FALSE(h.done());
    EXPECT_EQ(q.m.waiting(), 1u);
    mine->unlock();
    const std::error_code e = co_await h;
    EXPECT_EQ(e, std::errc::operation_canceled);
    EXPECT_TRUE(held_after);
    EXPECT_FALSE(q.m.locked());  // the waiter's guard released it on return
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(ConditionVariable, WaitWithTimeoutReturnsHoldingTheLock) {
  auto body = []() -> task<result<void>> {
    queue_state q;
    auto g = co_await q.m.lock();
    if (!g) co_return fail(g.error());
    auto w = co_await with_timeout(q.cv.wait(*g, [&q] { return !q.items.empty(); }), 2ms);
    EXPECT_EQ(error_of(w), std::errc::timed_out);
    EXPECT_TRUE(g->owns_lock());
    EXPECT_TRUE(q.m.locked());
    EXPECT_EQ(q.cv.waiting(), 0u);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Mutex, LockWithTimeoutLeavesTheQueue) {
  auto body = []() -> task<result<void>> {
    mutex m;
    auto held = m.try_lock();
    auto r = co_await with_timeout(m.lock(), 1ms);
    EXPECT_EQ(error_of(r), std::errc::timed_out);
    EXPECT_EQ(m.waiting(), 0u);
    held->unlock();
    EXPECT_FALSE(m.locked());
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(ConditionVariable, DestroyingAWaitingFrameLeavesTheMutexConsistent) {
  auto body = []() -> task<result<void>> {
    queue_state q;
    std::vector<int> order;
    {
      auto t = wait_and_record(q, 0, order);
      start_here(t);
      EXPECT_EQ(q.cv.waiting(), 1u);
      EXPECT_FALSE(q.m.locked());
    }
    EXPECT_EQ(q.cv.waiting(), 0u);
    EXPECT_FALSE(q.m.locked());  // the dead frame's guard did not unlock twice
    {
      auto t = wait_and_record(q, 1, order);
      start_here(t);
      auto g = q.m.try_lock();
      q.cv.notify_one();
      g->unlock();  // hands the lock to t, which dies before resuming
      EXPECT_TRUE(q.m.locked());
    }
    EXPECT_FALSE(q.m.locked());
    EXPECT_TRUE(order.empty());
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

}  // namespace
