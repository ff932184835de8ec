// Task groups and the single-core sync primitives: spawn+join through a
// task_group, channel ping-pong between two tasks, uncontended lock paths.
// None of these should make a system call or touch the global heap.
#include <cstdint>

#include "coil/rt/task_group.hpp"
#include "coil/rt/time.hpp"
#include "coil/sync/channel.hpp"
#include "coil/sync/mutex.hpp"
#include "coil/sync/semaphore.hpp"
#include "micro.hpp"

namespace coil_micro {
namespace {

coil::task<void> empty_child() { co_return; }

// ---- task_group ------------------------------------------------------------------

// One child spawned into a group and joined per iteration: compare with
// BM_spawn_join (runtime::spawn + join_handle).
coil::task<void> group_spawn_join_body(benchmark::State& state) {
  coil::task_group g;
  for (auto _ : state) {
    g.spawn(empty_child());
    auto r = co_await g.join();
    benchmark::DoNotOptimize(r);
  }
}
void BM_group_spawn_join(benchmark::State& state) { run(group_spawn_join_body(state)); }
BENCHMARK(BM_group_spawn_join);

// 64 children per join: the per-child cost without a loop turn each.
coil::task<void> group_batch_body(benchmark::State& state) {
  constexpr int batch = 64;
  coil::task_group g;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) g.spawn(empty_child());
    auto r = co_await g.join();
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}
void BM_group_spawn_join_batch64(benchmark::State& state) { run(group_batch_body(state)); }
BENCHMARK(BM_group_spawn_join_batch64);

// ---- channel -----------------------------------------------------------------------

// Sends back whatever arrives until the channel closes.
coil::task<void> echo(coil::channel<uint64_t>& in, coil::channel<uint64_t>& out) {
  for (;;) {
    auto v = co_await in.recv();
    if (!v) co_return;
    auto s = co_await out.send(*v);
    if (!s) co_return;
  }
}

// One round trip per iteration: send to the echo task, wait for the reply.
// Each side suspends once per message, so this is two wake + resume cycles
// through the ready queue (two loop turns).
coil::task<void> ping_pong_body(benchmark::State& state) {
  coil::channel<uint64_t> ping(1), pong(1);
  coil::task_group g;
  g.spawn(echo(ping, pong));
  uint64_t i = 0, errors = 0;
  for (auto _ : state) {
    auto s = co_await ping.send(i);
    auto r = co_await pong.recv();
    if (!s || !r || *r != i) ++errors;
    ++i;
  }
  ping.close();
  (void)co_await g.join();
  if (errors != 0) state.SkipWithError("ping-pong lost or reordered a message");
}
void BM_channel_ping_pong(benchmark::State& state) { run(ping_pong_body(state)); }
BENCHMARK(BM_channel_ping_pong);

// Send then receive in the same task: the no-suspension path of both awaiters.
coil::task<void> send_recv_body(benchmark::State& state) {
  coil::channel<uint64_t> ch(64);
  uint64_t i = 0;
  for (auto _ : state) {
    auto s = co_await ch.send(i++);
    auto r = co_await ch.recv();
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(r);
  }
}
void BM_channel_send_recv_uncontended(benchmark::State& state) { run(send_recv_body(state)); }
BENCHMARK(BM_channel_send_recv_uncontended);

// Producer filling a 64-slot buffer, consumer draining it: suspensions are
// amortised over up to 64 items. Items are messages.
coil::task<void> producer(coil::channel<uint64_t>& ch, const bool& stop) {
  uint64_t i = 0;
  while (!stop) {
    auto s = co_await ch.send(i++);
    if (!s) co_return;
  }
}
coil::task<void> stream_body(benchmark::State& state) {
  coil::channel<uint64_t> ch(64);
  bool stop = false;
  coil::task_group g;
  g.spawn(producer(ch, stop));
  for (auto _ : state) {
    auto r = co_await ch.recv();
    benchmark::DoNotOptimize(r);
  }
  stop = true;
  ch.close();
  (void)co_await g.join();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
void BM_channel_stream_cap64(benchmark::State& state) { run(stream_body(state)); }
BENCHMARK(BM_channel_stream_cap64);

// ---- locks -------------------------------------------------------------------------

coil::task<void> mutex_body(benchmark::State& state) {
  coil::mutex m;
  for (auto _ : state) {
    auto g = co_await m.lock();
    benchmark::DoNotOptimize(g);
  }
}
void BM_mutex_lock_unlock_uncontended(benchmark::State& state) { run(mutex_body(state)); }
BENCHMARK(BM_mutex_lock_unlock_uncontended);

coil::task<void> semaphore_body(benchmark::State& state) {
  coil::semaphore s(4);
  for (auto _ : state) {
    auto p = co_await s.acquire();
    benchmark::DoNotOptimize(p);
  }
}
void BM_semaphore_acquire_release_uncontended(benchmark::State& state) { run(semaphore_body(state)); }
BENCHMARK(BM_semaphore_acquire_release_uncontended);

}  // namespace
}  // namespace coil_micro
