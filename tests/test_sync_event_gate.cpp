// coil::event and coil::gate.
#include <vector>

#include "coil/rt/shield.hpp"
#include "coil/sync/channel.hpp"
#include "coil/sync/event.hpp"
#include "coil/sync/gate.hpp"
#include "coil/sync/mutex.hpp"
#include "test_sync_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;
using namespace coil::test;  // run, settle, start_here, error_of

task<result<void>> wait_and_count(event& e, int& woken) {
  auto r = co_await e.wait();
  if (r) ++woken;
  co_return r;
}

TEST(Event, SetWakesEveryWaiterAndLetsLaterWaitsThrough) {
  auto body = []() -> task<result<void>> {
    event e;
    int woken = 0;
    std::vector<join_handle<result<void>>> hs;
    for (int i = 0; i < 5; ++i) hs.push_back(runtime::current()->spawn(wait_and_count(e, woken)));
    co_await settle();
    EXPECT_EQ(woken, 0);
    e.set();
    for (auto& h : hs) {
      auto r = co_await h;
      EXPECT_TRUE(r);
    }
    EXPECT_EQ(woken, 5);
    auto again = co_await e.wait();  // set: passes at once
    EXPECT_TRUE(again);
    e.reset();
    EXPECT_FALSE(e.is_set());
    auto timed = co_await with_timeout(e.wait(), 1ms);
    EXPECT_EQ(error_of(timed), std::errc::timed_out);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Event, CancelledWaiterLeavesOthersWaiting) {
  auto body = []() -> task<result<void>> {
    event e;
    int woken = 0;
    auto a = runtime::current()->spawn(wait_and_count(e, woken));
    auto b = runtime::current()->spawn(wait_and_count(e, woken));
    co_await settle();
    a.cancel();
    auto ra = co_await a;
    EXPECT_EQ(error_of(ra), std::errc::operation_canceled);
    co_await settle();
    EXPECT_FALSE(b.done());
    e.set();
    auto rb = co_await b;
    EXPECT_TRUE(rb);
    EXPECT_EQ(woken, 1);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Event, WaitWithNothingToWakeItIsADeadlock) {
  auto body = []() -> task<result<void>> {
    event e;
    co_return co_await e.wait();
  };
  auto r = run(body());
  EXPECT_EQ(error_of(r), coil::errc::deadlock);
}

// ---- gate --------------------------------------------------------------------

task<void> hold_for(gate::holder h, std::chrono::milliseconds d, int& left) {
  (void)co_await sleep_for(d);
  ++left;
  // A parameter lives as long as the frame, which a join_handle keeps until
  // joined: leave explicitly when the work is done.
  h.leave();
}

TEST(Gate, CloseWaitsForEveryHolder) {
  auto body = []() -> task<result<void>> {
    gate g;
    int left = 0;
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < 5; ++i) {
      auto h = g.enter();
      EXPECT_TRUE(h);
      hs.push_back(runtime::current()->spawn(hold_for(std::move(*h), std::chrono::milliseconds(i), left)));
    }
    EXPECT_EQ(g.holders(), 5u);
    auto c = co_await g.close();
    EXPECT_TRUE(c);
    EXPECT_EQ(left, 5);  // close returned only after the last one left
    EXPECT_EQ(g.holders(), 0u);
    auto late = g.enter();
    EXPECT_EQ(error_of(late), sync_errc::gate_closed);
    for (auto& h : hs) co_await h;
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Gate, ClosingAnEmptyGateCompletesAtOnce) {
  auto body = []() -> task<result<void>> {
    gate g;
    {
      auto h = g.enter();
      EXPECT_TRUE(h);
    }
    co_return co_await g.close();
  };
  ASSERT_TRUE(run(body()));
}

TEST(Gate, CloseRejectsNewEntriesBeforeItCompletes) {
  auto body = []() -> task<result<void>> {
    gate g;
    auto h = g.enter();
    int left = 0;
    auto holder_task = runtime::current()->spawn(hold_for(std::move(*h), 5ms, left));
    auto closer = runtime::current()->spawn([](gate& g) -> task<result<void>> { co_return co_await g.close(); }(g));
    co_await settle();
    EXPECT_TRUE(g.is_closed());
    EXPECT_FALSE(closer.done());
    EXPECT_EQ(error_of(g.enter()), sync_errc::gate_closed);
    auto r = co_await closer;
    EXPECT_TRUE(r);
    EXPECT_EQ(left, 1);
    co_await holder_task;
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Gate, CancelledCloseLeavesTheGateClosed) {
  auto body = []() -> task<result<void>> {
    gate g;
    auto h = g.enter();
    auto r = co_await with_timeout(g.close(), 1ms);
    EXPECT_EQ(error_of(r), std::errc::timed_out);
    EXPECT_TRUE(g.is_closed());
    EXPECT_EQ(g.holders(), 1u);
    h->leave();
    EXPECT_EQ(g.holders(), 0u);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

task<result<void>> drain(gate& g) { co_return co_await g.close(); }

// Shutdown by cancellation: the stopped task's own close() fails at once, a
// shielded one still waits for the holder.
TEST(Gate, ACancelledTaskDrainsThroughAShield) {
  auto body = []() -> task<result<void>> {
    gate g;
    int left = 0;
    auto h = g.enter();
    auto holder_task = runtime::current()->spawn(hold_for(std::move(*h), std::chrono::milliseconds(3), left));
    auto closer = runtime::current()->spawn([](gate& g, int& left) -> task<result<void>> {
      co_await yield();
      auto plain = co_await g.close();
      EXPECT_EQ(error_of(plain), std::errc::operation_canceled);
      EXPECT_EQ(left, 0);
      auto shielded = co_await shield(drain(g));
      EXPECT_EQ(left, 1);  // waited for the holder
      co_return shielded;
    }(g, left));
    closer.cancel();
    auto r = co_await closer;
    EXPECT_TRUE(r);
    co_await holder_task;
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(SyncErrors, HaveTheirOwnCategoryAndMessages) {
  std::error_code c = sync_errc::closed;
  std::error_code g = sync_errc::gate_closed;
  EXPECT_STREQ(c.category().name(), "coil.sync");
  EXPECT_EQ(c.message(), "channel closed");
  EXPECT_EQ(g.message(), "gate closed");
  EXPECT_NE(c, g);
  EXPECT_NE(c, std::error_code(1, std::system_category()));
}

// The waiter is in every waiting frame: growing it is a decision, not drift.
TEST(SyncLayout, WaiterSizeIsPinned) {
  EXPECT_EQ(sizeof(coil::detail::waiter), 88u);
  EXPECT_EQ(sizeof(mutex::lock_awaiter), 104u);
  EXPECT_EQ(sizeof(channel<int>::recv_awaiter), 96u);
}

}  // namespace
