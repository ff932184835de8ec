// nop: the cost of one operation round trip when the kernel does nothing, so
// what remains is submission, completion and the runtime's own bookkeeping.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "benches.hpp"
#include "coil/rt/op.hpp"
#include "coil/rt/runtime.hpp"
#include "raw_ring.hpp"

namespace coil_bench {
namespace {

struct nop_shared {
  bool stop = false;
  uint64_t ops = 0;
  uint64_t errors = 0;
};

coil::task<void> nop_worker(nop_shared& s) {
  while (!s.stop) {
    auto r = co_await coil::nop();
    if (!r) ++s.errors;
    ++s.ops;
  }
}

coil::task<void> nop_main(uint64_t tasks, double seconds, progress* prog, nop_shared& s, measured& m) {
  coil::runtime& rt = *coil::runtime::current();
  std::vector<coil::join_handle<void>> workers;
  workers.reserve(tasks);
  const run_clock clock;
  for (uint64_t i = 0; i < tasks; ++i) workers.push_back(rt.spawn(nop_worker(s)));
  co_await stop_after(seconds, s.stop, prog, s.ops, "ops/s");
  // Each worker finishes the operation it has in flight: counted, and timed.
  for (auto& w : workers) co_await w;
  clock.stop(m);
}

}  // namespace

nop_result run_nop_coil(uint64_t tasks, double seconds, progress* prog) {
  nop_result out;
  auto rt = coil::runtime::create();
  if (!rt) {
    std::fprintf(stderr, "coil-bench: runtime::create: %s\n", rt.error().message().c_str());
    std::exit(1);
  }
  nop_shared s;
  (*rt)->block_on(nop_main(tasks, seconds, prog, s, out));
  out.ops = s.ops;
  out.errors = s.errors;
  out.stats = (*rt)->stats();
  return out;
}

nop_result run_nop_uring(uint64_t batch, double seconds, progress* prog) {
  nop_result out;
  io_uring ring;
  // Same SQ size as coil's default ring, grown if a batch would not fit.
  unsigned entries = 256;
  while (entries < batch) entries *= 2;
  if (int r = setup_raw_ring(ring, entries); r < 0) {
    out.failure = std::string("io_uring_queue_init: ") + std::strerror(-r);
    return out;
  }
  std::vector<io_uring_cqe*> cqes(batch);
  const run_clock clock;
  const int64_t start = clock.start_ns();
  const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  for (;;) {
    for (uint64_t i = 0; i < batch; ++i) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, i);
    }
    if (int r = io_uring_submit_and_wait(&ring, static_cast<unsigned>(batch)); r < 0 && r != -EINTR) {
      std::fprintf(stderr, "coil-bench: io_uring_submit_and_wait: %s\n", std::strerror(-r));
      std::exit(1);
    }
    uint64_t reaped = 0;
    while (reaped < batch) {
      unsigned n = io_uring_peek_batch_cqe(&ring, cqes.data(), static_cast<unsigned>(batch));
      if (n == 0) {
        // Only after an interrupted wait: block for the rest.
        io_uring_cqe* cqe;
        (void)io_uring_wait_cqe(&ring, &cqe);
        continue;
      }
      for (unsigned i = 0; i < n; ++i) out.errors += cqes[i]->res < 0;
      io_uring_cq_advance(&ring, n);
      reaped += n;
    }
    out.ops += batch;
    const int64_t now = now_ns();
    if (prog != nullptr) {
      const double elapsed = static_cast<double>(now - start) * 1e-9;
      prog->update(elapsed, static_cast<double>(out.ops) / elapsed, "ops/s");
    }
    if (now >= end) break;
  }
  clock.stop(out);
  io_uring_queue_exit(&ring);
  return out;
}

}  // namespace coil_bench
