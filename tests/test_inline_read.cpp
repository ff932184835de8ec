// Inline reads (uring_options::inline_reads): a positional read first tried
// with one preadv2(RWF_NOWAIT). Results must be what the ring gives, on both
// drivers; only the io_uring runtime counts reads done inline.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "coil/coil.hpp"
#include "test_aio_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using coil::test::run;

constexpr std::size_t block = 4096;

std::vector<char> pattern(std::size_t n, uint32_t seed) {
  std::vector<char> v(n);
  aio_test::fill_pattern(std::as_writable_bytes(std::span(v)), seed);
  return v;
}

void write_file(const std::string& path, const std::vector<char>& data) {
  const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ::close(fd);
}

bool on_uring() { return test::default_driver() == driver_kind::uring; }

struct read_counts {
  uint64_t inline_reads = 0;
  uint64_t pushed_reads = 0;
  uint64_t turns = 0;  // loop turns meanwhile
};

read_counts counts() {
  const runtime_stats s = runtime::current()->stats();
  return {s.io.inline_reads, s.io.of(IORING_OP_READ).pushed, s.loop_turns};
}

// How a test reads its file: `reads` blocks of `block` bytes, block k =
// (i * stride) % blocks, opened with flags (plus O_RDONLY) into buf.
struct read_plan {
  int flags = 0;
  std::size_t reads = 0;
  std::size_t blocks = 0;
  std::size_t stride = 1;
  bool random_advice = false;  // POSIX_FADV_RANDOM: no read-ahead
  bool exact = true;           // every read returns a full block (no injected faults)
};

// Reads as planned and checks every byte; returns what the driver counted
// meanwhile.
task<read_counts> read_blocks(const std::string& path, const std::vector<char>& data, read_plan plan,
                              std::span<char> buf) {
  auto f = co_await file::open(path.c_str(), O_RDONLY | plan.flags);
  EXPECT_TRUE(f) << path;
  if (!f) co_return read_counts{};
  if (plan.random_advice) {
    EXPECT_EQ(::posix_fadvise(f->fd(), 0, 0, POSIX_FADV_RANDOM), 0);
  }
  const read_counts before = counts();
  for (std::size_t i = 0; i < plan.reads; ++i) {
    const std::size_t k = (i * plan.stride) % plan.blocks;
    auto n = co_await f->read_at(std::as_writable_bytes(buf), k * block);
    if (!n) {
      EXPECT_FALSE(plan.exact) << "block " << k << ": " << n.error().message();
      continue;
    }
    if (plan.exact) {
      EXPECT_EQ(*n, block);
    }
    EXPECT_EQ(std::memcmp(buf.data(), data.data() + k * block, *n), 0) << "block " << k;
  }
  const read_counts after = counts();
  co_return read_counts{after.inline_reads - before.inline_reads, after.pushed_reads - before.pushed_reads,
                        after.turns - before.turns};
}

// Warm file: every block comes back right, and on io_uring without the ring.
TEST(InlineRead, WarmFileReadsTheRightBytesWithoutTheRing) {
  test::temp_dir dir;
  const std::string path = dir.file("warm");
  const auto data = pattern(48 * block, 3);
  write_file(path, data);
  std::vector<char> buf(block);
  const read_counts c = run(read_blocks(path, data, {.reads = 48, .blocks = 48, .stride = 37}, buf));
  if (on_uring()) {
    EXPECT_EQ(c.inline_reads, 48u);
    EXPECT_EQ(c.pushed_reads, 0u);
  } else {
    EXPECT_EQ(c.inline_reads, 0u);
  }
}

// End of file: a read at the end gives 0, one across it the bytes before it.
TEST(InlineRead, EndOfFileAndShortReads) {
  test::temp_dir dir;
  const std::string path = dir.file("short");
  const auto data = pattern(block + 100, 5);
  write_file(path, data);
  auto body = [](const std::string& path, const std::vector<char>& data) -> task<void> {
    auto f = co_await file::open(path.c_str());
    EXPECT_TRUE(f);
    std::vector<char> buf(block);
    auto across = co_await f->read_at(test::as_writable(buf), block);
    EXPECT_TRUE(across);
    if (across) {
      EXPECT_EQ(*across, 100u);
      EXPECT_EQ(std::memcmp(buf.data(), data.data() + block, 100), 0);
    }
    auto at_end = co_await f->read_at(test::as_writable(buf), data.size());
    EXPECT_TRUE(at_end);
    if (at_end) {
      EXPECT_EQ(*at_end, 0u);
    }
    auto past = co_await f->read_at(test::as_writable(buf), 10 * block);
    EXPECT_TRUE(past);
    if (past) {
      EXPECT_EQ(*past, 0u);
    }
  };
  run(body(path, data));
}

// Errors come back as the ring gives them: a descriptor that is not open,
// and a directory.
TEST(InlineRead, ErrorsMatchTheRing) {
  test::temp_dir dir;
  auto body = [](const std::string& dir) -> task<void> {
    std::vector<char> buf(block);
    // A number that was open a moment ago.
    const int number = ::open(dir.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(number, 0);
    ::close(number);
    file stale{unique_fd(number)};
    auto s = co_await stale.read_at(test::as_writable(buf), 0);
    (void)stale.release().release();  // not ours to close
    EXPECT_FALSE(s);
    if (!s) {
      EXPECT_EQ(s.error(), std::errc::bad_file_descriptor);
    }
    file none;
    auto b = co_await none.read_at(test::as_writable(buf), 0);
    EXPECT_FALSE(b);
    if (!b) {
      EXPECT_EQ(b.error(), std::errc::bad_file_descriptor);
    }
    auto d = co_await file::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    EXPECT_TRUE(d);
    if (!d) co_return;
    auto r = co_await d->read_at(test::as_writable(buf), 0);
    EXPECT_FALSE(r);
    if (!r) {
      EXPECT_EQ(r.error(), std::errc::is_a_directory);
    }
  };
  run(body(dir.path()));
}

// A file whose pages are not cached: the reads miss and go to the ring,
// and still return the right bytes. Needs a file system that can drop a
// file's pages (not tmpfs).
TEST(InlineRead, ColdFileGoesToTheRingWithTheRightBytes) {
  aio_test::direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  const std::string path = dir.file("cold");
  const auto data = pattern(256 * block, 7);
  write_file(path, data);
  {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fdatasync(fd), 0);
    ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ::close(fd);
  }
  std::vector<char> buf(block);
  const read_plan plan{.reads = 64, .blocks = 256, .stride = 97, .random_advice = true};
  const read_counts c = run(read_blocks(path, data, plan, buf));
  if (on_uring()) {
    EXPECT_EQ(c.inline_reads + c.pushed_reads, 64u);
    EXPECT_GE(c.pushed_reads, 1u) << "a dropped page was read inline";
  }
}

// O_DIRECT files are never read inline (a RWF_NOWAIT direct read still
// waits for the device).
TEST(InlineRead, DirectFilesAlwaysUseTheRing) {
  aio_test::direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  const std::string path = dir.file("direct");
  const auto data = pattern(16 * block, 9);
  write_file(path, data);
  struct free_deleter {
    void operator()(char* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<char, free_deleter> mem(static_cast<char*>(std::aligned_alloc(block, block)));
  const read_plan plan{.flags = O_DIRECT, .reads = 16, .blocks = 16};
  const read_counts c = run(read_blocks(path, data, plan, std::span(mem.get(), block)));
  EXPECT_EQ(c.inline_reads, 0u);
  if (on_uring()) {
    EXPECT_EQ(c.pushed_reads, 16u);
  }
}

// A task reading a cached file in a loop never suspends while its reads
// hit: the per-turn budget (uring_options::inline_read_budget) sends one
// read in every budget + 1 to the ring, so the loop turns and other tasks
// get to run.
TEST(InlineRead, ABusyReaderStillGoesThroughTheLoop) {
  test::temp_dir dir;
  const std::string path = dir.file("busy");
  const auto data = pattern(8 * block, 11);
  write_file(path, data);
  constexpr std::size_t reads = 1000;
  runtime_options opts;
  opts.uring.inline_read_budget = 16;
  std::vector<char> buf(block);
  const read_counts c = run(read_blocks(path, data, {.reads = reads, .blocks = 8}, buf), opts);
  if (on_uring()) {
    EXPECT_EQ(c.inline_reads + c.pushed_reads, static_cast<uint64_t>(reads));
    EXPECT_GE(c.pushed_reads, static_cast<uint64_t>(reads / 17));
    EXPECT_GT(c.inline_reads, c.pushed_reads);
    EXPECT_GE(c.turns, static_cast<uint64_t>(reads / 17));
  }
}

// With other work in the same turn a read joins the ring's batch instead:
// readers side by side never read inline.
TEST(InlineRead, ReadersSideBySideUseTheRing) {
  test::temp_dir dir;
  const std::string path = dir.file("side");
  const auto data = pattern(8 * block, 17);
  write_file(path, data);
  auto reader = [](const file& f, const std::vector<char>& data, int id) -> task<bool> {
    std::vector<char> buf(block);
    for (int i = 0; i < 50; ++i) {
      const std::size_t k = static_cast<std::size_t>(i + id) % 8;
      auto n = co_await f.read_at(test::as_writable(buf), k * block);
      if (!n || *n != block || std::memcmp(buf.data(), data.data() + k * block, block) != 0) co_return false;
    }
    co_return true;
  };
  auto body = [](const std::string& path, const std::vector<char>& data, auto reader) -> task<read_counts> {
    auto* rt = runtime::current();
    auto f = co_await file::open(path.c_str());
    EXPECT_TRUE(f);
    const read_counts before = counts();
    std::vector<join_handle<bool>> hs;
    for (int id = 0; id < 4; ++id) hs.push_back(rt->spawn(reader(*f, data, id)));
    for (auto& h : hs) {
      const bool ok = co_await h;
      EXPECT_TRUE(ok);
    }
    const read_counts after = counts();
    co_return read_counts{after.inline_reads - before.inline_reads, after.pushed_reads - before.pushed_reads,
                          after.turns - before.turns};
  };
  const read_counts c = run(body(path, data, reader));
  if (on_uring()) {
    EXPECT_EQ(c.inline_reads + c.pushed_reads, 200u);
    EXPECT_GE(c.pushed_reads, 150u);
  }
}

// Off by option, and off under fault injection (injected faults must see
// every read): every read goes to the driver.
TEST(InlineRead, OffByOptionAndUnderFaultInjection) {
  test::temp_dir dir;
  const std::string path = dir.file("off");
  const auto data = pattern(4 * block, 13);
  write_file(path, data);
  std::vector<char> buf(block);
  runtime_options off;
  off.uring.inline_reads = false;
  const read_counts a = run(read_blocks(path, data, {.reads = 4, .blocks = 4}, buf), off);
  EXPECT_EQ(a.inline_reads, 0u);
  if (on_uring()) {
    EXPECT_EQ(a.pushed_reads, 4u);
  }
  runtime_options faulty;
  faulty.faults.enabled = true;
  faulty.faults.seed = 1;
  faulty.faults.short_io = 0.5;
  const read_counts b = run(read_blocks(path, data, {.reads = 4, .blocks = 4, .exact = false}, buf), faulty);
  EXPECT_EQ(b.inline_reads, 0u);
}

}  // namespace
