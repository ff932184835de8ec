// Hot paths of the task runtime: spawning, awaiting, timers. No system calls
// should appear here except the clock reads timers need.
#include <array>
#include <chrono>
#include <vector>

#include "coil/rt/time.hpp"
#include "micro.hpp"

namespace coil_micro {
namespace {

using namespace std::chrono_literals;

coil::task<void> empty_task() { co_return; }
coil::task<int> add_one(int x) { co_return x + 1; }

// ---- spawn + join ---------------------------------------------------------------

// One task spawned and joined per iteration: frame + link allocation, one
// pass through the ready queue (one loop turn), the final transfer back.
coil::task<void> spawn_join_body(benchmark::State& state) {
  coil::runtime& r = *coil::runtime::current();
  for (auto _ : state) {
    auto h = r.spawn(empty_task());
    co_await h;
  }
}
void BM_spawn_join(benchmark::State& state) { run(spawn_join_body(state)); }
BENCHMARK(BM_spawn_join);

// Batches spawned before any is joined: the loop-turn cost is shared by the
// batch, leaving the per-task cost.
coil::task<void> spawn_join_batch_body(benchmark::State& state) {
  coil::runtime& r = *coil::runtime::current();
  constexpr std::size_t batch = 64;
  std::array<coil::join_handle<void>, batch> handles;
  for (auto _ : state) {
    for (auto& h : handles) h = r.spawn(empty_task());
    for (auto& h : handles) co_await h;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}
void BM_spawn_join_batch64(benchmark::State& state) { run(spawn_join_batch_body(state)); }
BENCHMARK(BM_spawn_join_batch64);

// ---- awaiting a nested task ------------------------------------------------------

// Create + await + destroy a trivial child: frame from the recycling
// allocator, symmetric transfer in and out. The runtime loop is not involved.
coil::task<void> await_nested_body(benchmark::State& state) {
  int v = 0;
  for (auto _ : state) {
    v = co_await add_one(v);
    benchmark::DoNotOptimize(v);
  }
}
void BM_await_nested_task(benchmark::State& state) { run(await_nested_body(state)); }
BENCHMARK(BM_await_nested_task);

// ---- timers ----------------------------------------------------------------------

struct sleep_loop_state {
  bool stop = false;
  uint64_t errors = 0;
};

// Sleeps of 1 ns: the deadline has passed by the time the loop looks at the
// heap, so every sleep is one insert + one expire + one resume in the next
// turn. (sleep_for(0ns) would not suspend at all.)
coil::task<void> sleeper(sleep_loop_state& s) {
  while (!s.stop) {
    auto r = co_await coil::sleep_for(1ns);
    if (!r) ++s.errors;
  }
}

// range(0) timers armed and fired per loop turn: the measuring task plus
// range(0) - 1 companions; items are timers.
coil::task<void> timers_body(benchmark::State& state) {
  coil::runtime& r = *coil::runtime::current();
  const auto timers = static_cast<std::size_t>(state.range(0));
  sleep_loop_state s;
  std::vector<coil::join_handle<void>> others;
  others.reserve(timers - 1);
  for (std::size_t i = 1; i < timers; ++i) others.push_back(r.spawn(sleeper(s)));
  co_await coil::yield();  // let the companions arm their first timers
  for (auto _ : state) {
    auto r = co_await coil::sleep_for(1ns);
    if (!r) ++s.errors;
  }
  s.stop = true;
  for (auto& h : others) co_await h;
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * timers));
  if (s.errors != 0) state.SkipWithError("a sleep failed");
}
void BM_timer_insert_expire(benchmark::State& state) { run(timers_body(state)); }
BENCHMARK(BM_timer_insert_expire)->Arg(1)->Arg(128)->Arg(10000);

// Arm + cancel without firing: what with_timeout's timer goes through when
// the operation wins. Includes a spawn + join and two loop turns (compare
// with BM_spawn_join); the public API offers no cheaper way to abandon a sleep.
coil::task<void> cancelled_sleep() { (void)co_await coil::sleep_for(1h); }

coil::task<void> timer_cancel_body(benchmark::State& state) {
  coil::runtime& r = *coil::runtime::current();
  for (auto _ : state) {
    auto h = r.spawn(cancelled_sleep());
    co_await coil::yield();  // the child runs and arms its timer
    h.cancel();              // stop callback: timer removed, child rescheduled
    co_await h;
  }
}
void BM_timer_arm_cancel_spawned(benchmark::State& state) { run(timer_cancel_body(state)); }
BENCHMARK(BM_timer_arm_cancel_spawned);

}  // namespace
}  // namespace coil_micro
