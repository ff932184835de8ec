// Misuse of the sync primitives stops the process with a message instead of
// leaving dangling waiters behind.
#include <optional>
#include <thread>

#include "coil/sync/channel.hpp"
#include "coil/sync/gate.hpp"
#include "coil/sync/mutex.hpp"
#include "coil/sync/semaphore.hpp"
#include "test_sync_util.hpp"

namespace {

using namespace coil;
using namespace coil::test;  // run, settle, start_here, error_of

task<void> lock_once(mutex& m) { (void)co_await m.lock(); }
task<void> recv_once(channel<int>& ch) { (void)co_await ch.recv(); }
task<void> acquire_once(semaphore& s) { (void)co_await s.acquire(); }

TEST(SyncDeath, MutexDestroyedWhileTasksWait) {
  auto body = []() -> task<void> {
    std::optional<mutex> m(std::in_place);
    auto g = m->try_lock();
    auto t = lock_once(*m);
    start_here(t);  // queued behind g
    m.reset();
    co_return;
  };
  EXPECT_DEATH(run(body()), "destroyed while tasks wait on it");
}

TEST(SyncDeath, ChannelDestroyedWhileTasksWait) {
  auto body = []() -> task<void> {
    std::optional<channel<int>> ch(std::in_place, 1);
    auto t = recv_once(*ch);
    start_here(t);
    ch.reset();
    co_return;
  };
  EXPECT_DEATH(run(body()), "channel destroyed while tasks wait on it");
}

TEST(SyncDeath, GateDestroyedWithHoldersInside) {
  auto body = []() -> task<void> {
    std::optional<gate> g(std::in_place);
    auto h = g->enter();
    (void)h.value();
    g.reset();
    co_return;
  };
  EXPECT_DEATH(run(body()), "gate destroyed while holders are inside");
}

TEST(SyncDeath, PrimitiveSharedBetweenThreads) {
  auto statement = [] {
    semaphore s(0);
    auto rt = runtime::create();
    auto t = acquire_once(s);
    (*rt)->block_on([](task<void>& t) -> task<void> {
      start_here(t);  // parked on s, belonging to this thread's runtime
      co_return;
    }(t));
    std::thread([&s] { s.release(); }).join();
  };
  EXPECT_DEATH(statement(), "used from two cores");
}

}  // namespace
