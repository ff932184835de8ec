// Proves packets allocate nothing per request in steady state: through
// mapped -> striped -> file spaces, with batching, from many tasks at once.
// This binary replaces the global allocator with a counting one.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "alloc_counter.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace coil::packet;

constexpr int tasks = 32, iterations = 200, phases = 3;


TEST(AllocPacket, CounterSeesAllocations) {
  const std::size_t before = allocations;
  void* p = ::operator new(64);
  EXPECT_EQ(allocations - before, 1u);
  ::operator delete(p);
}

TEST(AllocPacket, SteadyStatePacketsAllocateNothing) {
  test::temp_dir dir;
  std::vector<std::unique_ptr<file_space>> files;
  std::vector<space*> backends;
  for (int i = 0; i < 2; ++i) {
    const std::string path = dir.file("disk" + std::to_string(i));
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    std::vector<char> data(1 << 16, static_cast<char>('a' + i));
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    files.push_back(std::make_unique<file_space>(coil::file(unique_fd(fd))));
    backends.push_back(files.back().get());
  }
  striped_space striped(backends, 4096);
  mapped_space mapped;
  ASSERT_TRUE(mapped.map(0, 1 << 16, striped, 0));
  ASSERT_TRUE(mapped.map((1 << 16) + 512, 1 << 16, striped, 1 << 16));  // a hole of 512 bytes between

  int warm = 0, done_tasks = 0;
  std::size_t at_start = 0, at_end = 0;
  uint64_t bad = 0;
  test::run([&]() -> task<void> {
    auto* rt = runtime::current();
    std::vector<join_handle<void>> hs;
    hs.reserve(tasks);
    for (int t = 0; t < tasks; ++t) {
      hs.push_back(rt->spawn([](space& s, int t, int& warm, int& done_tasks, std::size_t& at_start,
                                std::size_t& at_end, uint64_t& bad) -> task<void> {
        std::byte buf[96];  // in the frame: the request's buffer
        // Equal phases, each starting with every task at a barrier; only the
        // last is counted, so the runtime's and the space's high-water marks
        // (free frames, batches and their vectors) are reached before it.
        for (int phase = 0; phase < phases; ++phase) {
          if (++warm == tasks * (phase + 1) && phase == phases - 1) at_start = allocations;
          while (warm < tasks * (phase + 1)) co_await yield();
          for (int i = 0; i < iterations; ++i) {
            // Neighbouring tasks read neighbouring bytes, batched per turn;
            // some requests straddle a stripe boundary or the hole.
            const uint64_t address = static_cast<uint64_t>(i & 7) * 8192 + 6000 + static_cast<uint64_t>(t) * 96;
            outcome o = co_await read(s, address, buf);
            bad += o.failed_bytes();
          }
        }
        if (++done_tasks == tasks) at_end = allocations;
      }(mapped, t, warm, done_tasks, at_start, at_end, bad)));
    }
    for (auto& h : hs) co_await h;
  }());
  uint64_t fragments = 0, ops = 0;
  for (auto& f : files) {
    fragments += f->stats().fragments;
    ops += f->stats().kernel_ops;
  }
  std::printf("packets %d, fragments %llu, kernel ops %llu, batching factor %.2f, allocations %zu\n",
              tasks * iterations * phases, static_cast<unsigned long long>(fragments),
              static_cast<unsigned long long>(ops), static_cast<double>(fragments) / static_cast<double>(ops),
              at_end - at_start);
  EXPECT_GT(bad, 0u) << "no request touched the hole: the test lost its error path";
  EXPECT_GT(fragments, ops * 4) << "batching did not happen";
#ifndef COIL_FRAMES_NOT_RECYCLED
  EXPECT_EQ(at_end - at_start, 0u);
#endif
}

}  // namespace
