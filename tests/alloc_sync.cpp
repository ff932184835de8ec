// Proves that waiting on the sync primitives allocates nothing: the waiter
// lives in the awaiting frame. This binary replaces the global allocator with
// a counting one.
#include <cstdlib>
#include <new>

#include "alloc_counter.hpp"
#include "coil/rt/task_group.hpp"
#include "coil/sync/channel.hpp"
#include "coil/sync/condition_variable.hpp"
#include "coil/sync/event.hpp"
#include "coil/sync/mutex.hpp"
#include "coil/sync/semaphore.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using coil::test::run;

constexpr int rounds = 10'000;

// Every round suspends both tasks on a channel, a mutex, a semaphore, a
// condition and an event. Only the task frames are allocated, before the
// count starts (the two tasks live throughout).
struct shared {
  channel<int> ping{1}, pong{1};
  mutex m;
  condition_variable cv;
  semaphore sem{0};
  event ev;
  int turn = 0;
  int partner_rounds = 0;
};

task<void> partner(shared& s) {
  for (int i = 0; i < rounds; ++i) {
    auto v = co_await s.ping.recv();
    auto sent = co_await s.pong.send(*v);
    auto p = co_await s.sem.acquire();
    p->forget();
    auto g = co_await s.m.lock();
    s.turn = 1;
    s.cv.notify_one();
    auto w = co_await s.cv.wait(*g, [&s] { return s.turn == 0; });
    g->unlock();
    auto e = co_await s.ev.wait();
    s.ev.reset();
    if (!v || !sent || !w || !e) std::abort();
    ++s.partner_rounds;
  }
}

task<std::size_t> driver() {
  shared s;
  task_group g;
  g.spawn(partner(s));
  co_await yield();
  const std::size_t before = allocations;
  for (int i = 0; i < rounds; ++i) {
    auto sent = co_await s.ping.send(i);
    auto v = co_await s.pong.recv();
    s.sem.release();
    auto lock = co_await s.m.lock();
    auto w = co_await s.cv.wait(*lock, [&s] { return s.turn == 1; });
    s.turn = 0;
    s.cv.notify_one();
    lock->unlock();
    co_await yield();
    s.ev.set();
    if (!sent || !v || *v != i || !w) std::abort();
  }
  const std::size_t during = allocations - before;
  auto r = co_await g.join();
  if (!r || s.partner_rounds != rounds) std::abort();
  co_return during;
}

TEST(AllocSync, WaitingAllocatesNothing) {
  const std::size_t before = allocations;
  void* p = ::operator new(64);  // guards against a vacuous pass
  EXPECT_EQ(allocations - before, 1u);
  ::operator delete(p);
  EXPECT_EQ(run(driver()), 0u);
}

}  // namespace
