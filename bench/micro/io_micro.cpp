// Operation round trips: through the runtime (co_await nop()), through the
// standalone driver, and through raw liburing as the floor to compare with.
// Items are operations, so "items_per_second" lines up across the three.
#include <memory>
#include <vector>

#include <liburing.h>

#include "coil/io/op_completion.hpp"
#include "coil/io/uring_driver.hpp"
#include "coil/rt/op.hpp"
#include "coil_bench/raw_ring.hpp"
#include "micro.hpp"

namespace coil_micro {
namespace {

// ---- through the runtime ---------------------------------------------------------

struct nop_loop_state {
  bool stop = false;
  uint64_t errors = 0;
};

coil::task<void> nop_companion(nop_loop_state& s) {
  while (!s.stop) {
    auto r = co_await coil::nop();
    if (!r) ++s.errors;
  }
}

// range(0) tasks each with one nop in flight; they move in lockstep (all
// complete in one reap, all resubmit in the next turn), so one iteration of
// the measuring task is one loop turn of range(0) operations.
coil::task<void> nop_body(benchmark::State& state) {
  coil::runtime& r = *coil::runtime::current();
  const auto tasks = static_cast<std::size_t>(state.range(0));
  nop_loop_state s;
  std::vector<coil::join_handle<void>> others;
  others.reserve(tasks - 1);
  for (std::size_t i = 1; i < tasks; ++i) others.push_back(r.spawn(nop_companion(s)));
  for (auto _ : state) {
    auto r = co_await coil::nop();
    if (!r) ++s.errors;
  }
  s.stop = true;
  for (auto& h : others) co_await h;
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * tasks));
  if (s.errors != 0) state.SkipWithError("a nop failed");
}
void BM_runtime_nop(benchmark::State& state) { run(nop_body(state)); }
BENCHMARK(BM_runtime_nop)->Arg(1)->Arg(128);

// ---- the standalone driver ----------------------------------------------------------

// The smallest user of uring_driver: a completion that preps a NOP.
struct nop_completion : coil::op_completion<coil::ops::nop> {
  nop_completion() noexcept : op_completion(coil::ops::nop{}) {}
};

// push range(0) nops, flush (one io_uring_enter), reap them all.
void BM_driver_nop_batch(benchmark::State& state) {
  auto created = coil::uring_driver::create();
  if (!created) {
    state.SkipWithError("uring_driver::create failed");
    return;
  }
  coil::uring_driver& d = **created;
  const auto n = static_cast<std::size_t>(state.range(0));
  auto ops = std::make_unique<nop_completion[]>(n);
  coil::intrusive_list<coil::completion> done;
  uint64_t errors = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) d.push(ops[i]);
    (void)d.flush();
    std::size_t got = d.reap(done);
    while (got < n) {
      (void)d.wait(-1);
      got += d.reap(done);
    }
    while (coil::completion* c = done.pop_front()) {
      errors += c->res < 0;
      // Reaped completions come back "done"; the owner returns them to idle
      // before pushing them again (op_awaiter does the same on resume).
      c->state = coil::op_state::idle;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  if (errors != 0) state.SkipWithError("a nop failed");
}
BENCHMARK(BM_driver_nop_batch)->Arg(1)->Arg(128);

// ---- raw liburing (the floor) -----------------------------------------------------------

void BM_raw_uring_nop_batch(benchmark::State& state) {
  io_uring ring;
  const auto n = static_cast<unsigned>(state.range(0));
  if (coil_bench::setup_raw_ring(ring, 256) < 0) {
    state.SkipWithError("io_uring setup failed");
    return;
  }
  std::vector<io_uring_cqe*> cqes(n);
  uint64_t errors = 0;
  for (auto _ : state) {
    for (unsigned i = 0; i < n; ++i) io_uring_prep_nop(io_uring_get_sqe(&ring));
    (void)io_uring_submit_and_wait(&ring, n);
    unsigned got = 0;
    while (got < n) {
      const unsigned k = io_uring_peek_batch_cqe(&ring, cqes.data(), n);
      if (k == 0) {
        // Only after an interrupted wait; with DEFER_TASKRUN, peeking alone
        // would never see the rest.
        io_uring_cqe* cqe;
        (void)io_uring_wait_cqe(&ring, &cqe);
        continue;
      }
      for (unsigned i = 0; i < k; ++i) errors += cqes[i]->res < 0;
      io_uring_cq_advance(&ring, k);
      got += k;
    }
  }
  io_uring_queue_exit(&ring);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  if (errors != 0) state.SkipWithError("a nop failed");
}
BENCHMARK(BM_raw_uring_nop_batch)->Arg(1)->Arg(128);

}  // namespace
}  // namespace coil_micro
