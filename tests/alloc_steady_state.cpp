// Proves the hot paths allocate nothing in steady state: this binary replaces
// the global allocator with a counting one.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <new>
#include <vector>

#include "alloc_counter.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using coil::test::run;

// Runs `iterations` of body in each of `tasks` tasks; counts allocations made
// after every task finished a warm-up round.
template <class Body>
task<std::size_t> measure(int tasks, int iterations, Body body) {
  auto* rt = runtime::current();
  int warm = 0;
  std::size_t at_start = 0;
  std::vector<join_handle<void>> hs;
  hs.reserve(static_cast<size_t>(tasks));
  for (int t = 0; t < tasks; ++t) {
    hs.push_back(rt->spawn([](Body body, int iterations, int tasks, int& warm, std::size_t& at_start) -> task<void> {
      co_await body();  // warm-up: caches, timer heap capacity, frame pools
      if (++warm == tasks) at_start = allocations;
      while (warm < tasks) co_await yield();
      for (int i = 0; i < iterations; ++i) co_await body();
    }(body, iterations, tasks, warm, at_start)));
  }
  for (auto& h : hs) co_await h;
  co_return allocations - at_start;
}

TEST(Alloc, CounterSeesAllocations) {
  // Guards the other tests: if the replacement allocator were not in use they
  // would pass vacuously.
  const std::size_t before = allocations;
  void* p = ::operator new(64);  // a direct call: not elidable, unlike a new-expression
  EXPECT_EQ(allocations - before, 1u);
  ::operator delete(p);
}

TEST(Alloc, NopOperationsAllocateNothing) {
  auto body = []() -> task<std::size_t> {
    co_return co_await measure(128, 200, []() -> task<void> {
      for (int i = 0; i < 4; ++i) {
        auto r = co_await nop();
        EXPECT_TRUE(r);
      }
    });
  };
  // The inner lambda-task frames are recycled; under ASan they are not, so
  // the per-op assertion is made on the ops alone below.
#ifndef COIL_FRAMES_NOT_RECYCLED
  EXPECT_EQ(run(body()), 0u);
#else
  (void)body;
#endif
}

TEST(Alloc, AwaitingOperationsDirectlyAllocatesNothing) {
  test::temp_dir dir;
  const std::string path = dir.file("f");
  {
    std::vector<char> data(1 << 20, 'a');
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  auto body = [&]() -> task<std::size_t> {
    auto f = co_await file::open(path.c_str());
    EXPECT_TRUE(f);
    char buf[4096];
    // Warm up: the first awaits may grow runtime structures.
    for (int i = 0; i < 16; ++i) {
      (void)co_await f->read_at(std::as_writable_bytes(std::span(buf)), 0);
      (void)co_await nop();
      (void)co_await sleep_for(std::chrono::microseconds(1));
    }
    const std::size_t before = allocations;
    for (int i = 0; i < 2000; ++i) {
      auto r = co_await f->read_at(std::as_writable_bytes(std::span(buf)), static_cast<uint64_t>(i % 256) * 4096);
      EXPECT_TRUE(r && *r == sizeof buf);
      auto n = co_await nop();
      EXPECT_TRUE(n);
      auto s = co_await sleep_for(std::chrono::microseconds(1));
      EXPECT_TRUE(s);
    }
    co_return allocations - before;
  };
  EXPECT_EQ(run(body()), 0u);
}

TEST(Alloc, SpawnJoinAndWhenAllReuseFrames) {
#ifdef COIL_FRAMES_NOT_RECYCLED
  GTEST_SKIP() << "frames are not recycled under AddressSanitizer";
#endif
  auto body = []() -> task<std::size_t> {
    auto* rt = runtime::current();
    auto child = [](int v) -> task<int> { co_return v; };
    for (int i = 0; i < 16; ++i) {
      (void)co_await rt->spawn(child(i));
      (void)co_await when_all(child(1), child(2));
      (void)co_await with_timeout([]() -> task<result<int>> { co_return 1; }(), std::chrono::seconds(1));
    }
    const std::size_t before = allocations;
    int sum = 0;
    for (int i = 0; i < 1000; ++i) {
      sum += co_await rt->spawn(child(1));
      auto [a, b] = co_await when_all(child(1), child(2));
      sum += a + b;
      auto t = co_await with_timeout([]() -> task<result<int>> { co_return 1; }(), std::chrono::seconds(1));
      sum += t ? *t : 0;
    }
    EXPECT_EQ(sum, 5000);
    co_return allocations - before;
  };
  EXPECT_EQ(run(body()), 0u);
}

// A join over a vector costs its vectors and one slot array, whatever the
// number of children (their frames are recycled).
TEST(Alloc, WhenAllOverAVectorAllocatesPerJoinNotPerChild) {
#ifndef COIL_FRAMES_NOT_RECYCLED
  auto per_round = [](int n) {
    return run([](int n) -> task<std::size_t> {
      std::size_t before = 0;
      for (int round = 0; round < 3; ++round) {
        if (round == 2) before = allocations;  // after two warm-up rounds
        std::vector<task<int>> ts;
        ts.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
          ts.push_back([](int i) -> task<int> {
            co_await yield();
            co_return i;
          }(i));
        }
        auto rs = co_await when_all(std::move(ts));
        EXPECT_EQ(rs.size(), static_cast<std::size_t>(n));
      }
      co_return allocations - before;
    }(n));
  };
  EXPECT_EQ(per_round(8), 3u);  // the tasks' vector, the slots, the results
  EXPECT_EQ(per_round(64), 3u);
#endif
}

}  // namespace
