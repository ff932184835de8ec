// coil::task_group: join waits for all, a failure cancels the siblings, the
// parent's cancellation reaches the children, destruction tears down cleanly.
#include <vector>

#include "coil/rt/task_group.hpp"
#include "coil/sync/event.hpp"
#include "coil/sync/semaphore.hpp"
#include "test_sync_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;
using namespace coil::test;  // run, settle, start_here, error_of

task<result<void>> sleep_then_count(std::chrono::milliseconds d, int& done) {
  auto r = co_await sleep_for(d);
  if (!r) co_return r;
  ++done;
  co_return result<void>{};
}

TEST(TaskGroup, JoinWaitsForEveryChild) {
  int done = 0;
  auto body = [](int& done) -> task<result<void>> {
    task_group g;
    for (int i = 0; i < 10; ++i) g.spawn(sleep_then_count(std::chrono::milliseconds(i % 3), done));
    EXPECT_EQ(g.size(), 10u);
    auto r = co_await g.join();
    EXPECT_EQ(done, 10);
    EXPECT_EQ(g.size(), 0u);
    co_return r;
  };
  auto r = run(body(done));
  EXPECT_TRUE(r) << r.error().message();
}

TEST(TaskGroup, AGroupCanBeJoinedAgainAfterMoreSpawns) {
  int done = 0;
  auto body = [](int& done) -> task<result<void>> {
    task_group g;
    for (int round = 0; round < 3; ++round) {
      g.spawn(sleep_then_count(std::chrono::milliseconds(1), done));
      g.spawn(sleep_then_count(std::chrono::milliseconds(0), done));
      auto r = co_await g.join();
      if (!r) co_return r;
      EXPECT_EQ(done, 2 * (round + 1));
    }
    co_return result<void>{};
  };
  EXPECT_TRUE(run(body(done)));
  EXPECT_EQ(done, 6);
}

TEST(TaskGroup, JoinOfAnEmptyGroupCompletesAtOnce) {
  auto body = []() -> task<result<void>> {
    task_group g;
    co_return co_await g.join();
  };
  EXPECT_TRUE(run(body()));
}

struct outcome {
  int cancelled = 0;
  int finished = 0;
};

task<result<void>> wait_forever(event& never, outcome& o) {
  auto r = co_await never.wait();
  if (!r && r.error() == std::errc::operation_canceled) ++o.cancelled;
  co_return r;
}

// Long enough to notice, short enough that a broken cancel fails the test
// instead of hanging it.
task<result<void>> sleep_long(outcome& o) {
  auto r = co_await sleep_for(3s);
  if (!r && r.error() == std::errc::operation_canceled) ++o.cancelled;
  co_return r;
}

task<result<void>> fail_after_yield(std::errc e) {
  co_await yield();
  co_return fail(e);
}

TEST(TaskGroup, FailureCancelsSiblingsAndJoinGivesTheFirstError) {
  outcome o;
  auto body = [](outcome& o) -> task<result<void>> {
    event never;
    task_group g;
    g.spawn(wait_forever(never, o));
    g.spawn(sleep_long(o));
    g.spawn(fail_after_yield(std::errc::connection_reset));
    g.spawn(wait_forever(never, o));
    co_return co_await g.join();
  };
  const int64_t t0 = std::chrono::steady_clock::now().time_since_epoch().count();
  auto r = run(body(o));
  const int64_t t1 = std::chrono::steady_clock::now().time_since_epoch().count();
  EXPECT_EQ(error_of(r), std::errc::connection_reset);
  EXPECT_EQ(o.cancelled, 3);
  EXPECT_LT(t1 - t0, 2'000'000'000);  // the sibling's sleep was cut short
}

TEST(TaskGroup, FirstErrorWinsOverLaterOnes) {
  auto body = []() -> task<result<void>> {
    task_group g;
    g.spawn([]() -> task<result<void>> { co_return fail(std::errc::io_error); }());
    g.spawn(fail_after_yield(std::errc::broken_pipe));
    co_return co_await g.join();
  };
  EXPECT_EQ(error_of(run(body())), std::errc::io_error);
}

TEST(TaskGroup, VoidAndValueChildrenNeverFailTheGroup) {
  int n = 0;
  auto body = [](int& n) -> task<result<void>> {
    task_group g;
    g.spawn([](int& n) -> task<void> {
      ++n;
      co_return;
    }(n));
    g.spawn([](int& n) -> task<int> {
      ++n;
      co_return 5;
    }(n));
    co_return co_await g.join();
  };
  EXPECT_TRUE(run(body(n)));
  EXPECT_EQ(n, 2);
}

TEST(TaskGroup, CancellingTheParentCancelsChildrenAndStillWaitsForThem) {
  outcome o;
  auto body = [](outcome& o) -> task<result<void>> {
    auto parent = runtime::current()->spawn([](outcome& o) -> task<result<void>> {
      event never;
      task_group g;
      for (int i = 0; i < 4; ++i) g.spawn(wait_forever(never, o));
      auto r = co_await g.join();
      // Every child has finished by now.
      EXPECT_EQ(g.size(), 0u);
      EXPECT_EQ(o.cancelled, 4);
      co_return r;
    }(o));
    co_await settle();
    parent.cancel();
    co_return co_await parent;
  };
  auto r = run(body(o));
  EXPECT_EQ(error_of(r), std::errc::operation_canceled);
  EXPECT_EQ(o.cancelled, 4);
}

TEST(TaskGroup, WithTimeoutAroundAGroup) {
  outcome o;
  auto body = [](outcome& o) -> task<result<void>> {
    auto inner = [](outcome& o) -> task<result<void>> {
      task_group g;
      g.spawn(sleep_long(o));
      g.spawn(sleep_long(o));
      co_return co_await g.join();
    };
    co_return co_await with_timeout(inner(o), 2ms);
  };
  auto r = run(body(o));
  EXPECT_EQ(error_of(r), std::errc::timed_out);
  EXPECT_EQ(o.cancelled, 2);
}

struct counted {
  int* n;
  explicit counted(int* p) : n(p) {}
  counted(counted&& o) noexcept : n(std::exchange(o.n, nullptr)) {}
  ~counted() {
    if (n != nullptr) ++*n;
  }
};

task<result<void>> hold_permit_and_wait(semaphore& s, event& never, counted) {
  auto p = co_await s.acquire();
  if (!p) co_return fail(p.error());
  co_return co_await never.wait();
}

TEST(TaskGroup, DestroyingAGroupWithLiveChildrenTearsThemDown) {
  int destroyed = 0;
  auto body = [](int& destroyed) -> task<result<void>> {
    semaphore s(1);
    event never;
    {
      task_group g;
      for (int i = 0; i < 3; ++i) g.spawn(hold_permit_and_wait(s, never, counted(&destroyed)));
      co_await settle();
      EXPECT_EQ(s.available(), 0u);
      EXPECT_EQ(s.waiting(), 2u);
      // Also one that has not started yet (still in the ready queue).
      g.spawn(hold_permit_and_wait(s, never, counted(&destroyed)));
    }  // no join: the destructor destroys the four frames
    EXPECT_EQ(destroyed, 4);
    EXPECT_EQ(s.waiting(), 0u);
    EXPECT_EQ(s.available(), 1u);  // the holder's permit came back
    co_await settle();             // nothing left in the ready queue points at them
    co_return result<void>{};
  };
  EXPECT_TRUE(run(body(destroyed)));
}

TEST(TaskGroup, ChildrenCanSpawnIntoTheirGroup) {
  int n = 0;
  auto body = [](int& n) -> task<result<void>> {
    task_group g;
    g.spawn([](task_group& g, int& n) -> task<void> {
      ++n;
      g.spawn([](int& n) -> task<void> {
        co_await yield();
        ++n;
      }(n));
      co_return;
    }(g, n));
    co_return co_await g.join();
  };
  EXPECT_TRUE(run(body(n)));
  EXPECT_EQ(n, 2);
}

}  // namespace
