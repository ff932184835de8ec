// Queue pressure: a 16-entry SQ (CQ 32), many more operations than that from
// 1,000 tasks, while a CPU-bound task holds the loop for 50 ms at a time so
// completions pile up in the kernel. Every operation must complete exactly
// once with its own data, and the kernel must never hold a CQE the CQ could
// not take (the driver bounds what it has in flight by the CQ size).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "coil/coil.hpp"
#include "stress_util.hpp"
#include "test_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;

struct pressure_state {
  std::vector<uint32_t> hits;  // completions seen per operation
  uint64_t failures = 0;
  uint64_t done = 0;
};

// Operation i: an 8-byte read of record i (which holds i) when i is even, a
// nop when odd. A read handed another operation's result shows as a wrong value.
task<void> worker(const file& f, uint64_t first, uint64_t step, uint64_t total, pressure_state& s) {
  for (uint64_t i = first; i < total; i += step) {
    bool ok = false;
    if (i % 2 == 0) {
      uint64_t got = ~uint64_t{0};
      auto r = co_await f.read_at(std::as_writable_bytes(std::span(&got, 1)), i * sizeof got);
      ok = r && *r == sizeof got && got == i;
    } else {
      auto r = co_await nop();
      ok = r.has_value();
    }
    ++s.hits[i];
    if (!ok) ++s.failures;
    ++s.done;
  }
}

// Blocks the loop (no await) for 50 ms each time a quarter of the work is done.
task<void> hog(const pressure_state& s, uint64_t total, int& blocks) {
  for (uint64_t quarter = 1; quarter <= 3; ++quarter) {
    while (s.done < total * quarter / 4) co_await yield();
    const auto until = std::chrono::steady_clock::now() + 50ms;
    while (std::chrono::steady_clock::now() < until) {
    }
    ++blocks;
  }
}

TEST(Stress, QueuePressureCompletesEveryOpOnceWithoutCqOverflow) {
  const uint64_t tasks = 1'000;
  const uint64_t total = stress::scaled(50'000, 10'000);
  test::temp_dir dir;
  const std::string path = dir.file("records");
  {
    std::vector<uint64_t> records(total);
    for (uint64_t i = 0; i < total; ++i) records[i] = i;
    unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid()) << std::strerror(errno);
    const auto bytes = static_cast<ssize_t>(total * sizeof(uint64_t));
    ASSERT_EQ(::pwrite(fd.get(), records.data(), static_cast<size_t>(bytes), 0), bytes);
  }
  runtime_options opts;
  opts.uring.entries = 16;
  auto rt = runtime::create(opts);
  ASSERT_TRUE(rt) << rt.error().message();
  pressure_state s;
  s.hits.assign(total, 0);
  int blocks = 0;
  (*rt)->block_on([&]() -> task<void> {
    auto f = co_await file::open(path.c_str());
    CO_ASSERT_OK(f);
    std::vector<join_handle<void>> hs;
    hs.reserve(tasks + 1);
    hs.push_back(runtime::current()->spawn(hog(s, total, blocks)));
    for (uint64_t t = 0; t < tasks; ++t) hs.push_back(runtime::current()->spawn(worker(*f, t, tasks, total, s)));
    for (auto& h : hs) co_await std::move(h);
  }());

  EXPECT_EQ(blocks, 3);
  EXPECT_EQ(s.failures, 0u);
  uint64_t not_once = 0;
  for (uint64_t i = 0; i < total; ++i) not_once += s.hits[i] != 1;
  EXPECT_EQ(not_once, 0u) << "operations that did not complete exactly once";

  if (coil::driver& d = (*rt)->driver(); d.kind() == driver_kind::uring) {
    const driver_stats& st = d.stats();
    EXPECT_EQ(d.ring_capacity(), 32u);  // the CQ of a 16-entry SQ
    EXPECT_GT(st.queued_for_space, 0u) << "the ring never filled up: no pressure, the test proves nothing";
    EXPECT_LE(st.in_flight_max, d.ring_capacity());
    EXPECT_EQ(d.cq_overflow(), 0u) << "CQEs dropped by the kernel";
    EXPECT_EQ(st.cq_overflows, 0u) << "the kernel held CQEs beyond the CQ";
  }
}

}  // namespace
}  // namespace coil
