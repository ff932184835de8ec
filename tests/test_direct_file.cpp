// direct_file on both engines (io_uring and Linux AIO), dma_buffer, and the
// alignment rules: discovered at open, enforced before submission.
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <string>
#include <vector>

#include "coil/fs/direct_file.hpp"
#include "coil/io/dma_buffer.hpp"
#include "test_aio_util.hpp"

namespace coil {
namespace {

using aio_test::direct_dir;
using aio_test::pattern;
using aio_test::same;

dma_buffer buffer(std::size_t n, std::size_t alignment = 4096) {
  auto b = dma_buffer::allocate(n, {.alignment = alignment});
  EXPECT_TRUE(b) << b.error().message();
  return b ? std::move(*b) : dma_buffer{};
}

// ---- dma_buffer ----------------------------------------------------------------------

TEST(DmaBuffer, AlignedZeroedMoveOnly) {
  for (std::size_t align : {std::size_t{4096}, std::size_t{1} << 16, std::size_t{1} << 21}) {
    dma_buffer b = buffer(10000, align);
    ASSERT_TRUE(b);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % align, 0u) << align;
    EXPECT_EQ(b.size(), 10000u);
    EXPECT_TRUE(std::all_of(b.data(), b.data() + b.size(), [](std::byte x) { return x == std::byte{0}; }));
    b.span()[9999] = std::byte{7};  // the whole length is usable
    dma_buffer moved = std::move(b);
    EXPECT_FALSE(b);  // NOLINT: checking the moved-from state
    EXPECT_EQ(moved.span()[9999], std::byte{7});
  }
  static_assert(!std::is_copy_constructible_v<dma_buffer>);
}

TEST(DmaBuffer, BadArguments) {
  auto zero = dma_buffer::allocate(0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error(), std::errc::invalid_argument);
  auto odd = dma_buffer::allocate(4096, {.alignment = 12288});
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error(), std::errc::invalid_argument);
}

TEST(DmaBuffer, LockIsReportedOrRefused) {
  auto b = dma_buffer::allocate(64 * 1024, {.lock = true});
  if (!b) {
    // Beyond RLIMIT_MEMLOCK the kernel says so; nothing half-made is returned.
    EXPECT_TRUE(b.error() == std::errc::not_enough_memory || b.error() == std::errc::operation_not_permitted)
        << b.error().message();
    return;
  }
  EXPECT_TRUE(b->locked());
  EXPECT_FALSE(buffer(4096).locked());
}

// ---- alignment -------------------------------------------------------------------------

TEST(DirectFileAlignment, DiscoveredAtOpenAndNamedInMessages) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  auto f = direct_file::adopt(unique_fd(::open(dir.file("a").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)));
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_NE(::fcntl(f->fd(), F_GETFL) & O_DIRECT, 0) << "adopt sets O_DIRECT";
  const dio_alignment a = f->alignment();
  EXPECT_GT(a.memory, 0u);
  EXPECT_GT(a.offset, 0u);
  EXPECT_EQ(a.offset & (a.offset - 1), 0u) << "a power of two";
  const std::string msg = describe(a);
  EXPECT_NE(msg.find(std::to_string(a.memory)), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(a.offset)), std::string::npos) << msg;
  EXPECT_NE(msg.find(to_string(a.source)), std::string::npos) << msg;
  // Linux 6.1+ reports it for ext4/xfs/btrfs; older kernels take the
  // device path. Either way the numbers must agree with the device path's
  // offset rule (the logical block size).
  auto dev = detail::discover_alignment(f->fd(), false);
  ASSERT_TRUE(dev);
  EXPECT_NE(dev->source, alignment_source::statx);
  if (a.source == alignment_source::statx && dev->source == alignment_source::block_device) {
    EXPECT_EQ(a.offset, dev->offset);
  }
  std::printf("alignment: %s; without statx: %s\n", msg.c_str(), describe(*dev).c_str());
}

TEST(DirectFileAlignment, OpenFailures) {
  test::run([]() -> task<void> {
    auto missing = co_await direct_file::open("/nonexistent/coil-dio", O_RDONLY);
    EXPECT_FALSE(missing);
    if (!missing) {
      EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory);
    }
  }());
  auto bad = direct_file::adopt(unique_fd());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), std::errc::bad_file_descriptor);
}

// ---- both engines ---------------------------------------------------------------------

class DirectFile : public ::testing::TestWithParam<dio_engine> {
 protected:
  void SetUp() override {
    if (!dir_.ok()) GTEST_SKIP() << "no directory on a file system with O_DIRECT: " << dir_.why();
  }
  direct_options opts() const { return {.engine = GetParam()}; }
  direct_dir dir_;
};

TEST_P(DirectFile, WriteReadRoundTripCheckedWithPlainRead) {
  const std::string path = dir_.file("rt");
  dma_buffer out = buffer(256 * 1024), in = buffer(256 * 1024);
  aio_test::fill_pattern(out.span(), 21);
  test::run([&]() -> task<void> {
    auto f = co_await direct_file::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, opts());
    if (!f) {
      ADD_FAILURE() << f.error().message();
      co_return;
    }
    EXPECT_EQ(f->engine(), GetParam());
    auto w = co_await f->write_at(out.span(), 4096);
    EXPECT_TRUE(w && *w == out.size());
    auto r = co_await f->read_at(in.span(), 4096);
    EXPECT_TRUE(r && *r == in.size());
    // Past end of file: a short read, then nothing.
    auto tail = co_await f->read_at(in.subspan(0, 8192), 4096 + out.size() - 4096);
    EXPECT_TRUE(tail && *tail == 4096);
    auto eof = co_await f->read_at(in.subspan(0, 4096), 4096 + out.size());
    EXPECT_TRUE(eof && *eof == 0);
  }());
  const auto disk = aio_test::read_file(path);
  ASSERT_EQ(disk.size(), 4096 + out.size());
  EXPECT_TRUE(same(std::span(disk).subspan(4096), out.span()));
  aio_test::fill_pattern(out.subspan(0, 4096), 21);  // in's first block was overwritten by the tail read
  EXPECT_TRUE(same(in.subspan(8192, in.size() - 8192), out.subspan(8192, out.size() - 8192)));
}

TEST_P(DirectFile, VectoredRoundTrip) {
  const std::string path = dir_.file("v");
  dma_buffer a = buffer(4096), b = buffer(3 * 4096), c = buffer(2 * 4096), d = buffer(2 * 4096);
  aio_test::fill_pattern(a.span(), 22);
  aio_test::fill_pattern(b.span(), 23);
  test::run([&]() -> task<void> {
    auto f = co_await direct_file::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, opts());
    if (!f) {
      ADD_FAILURE() << f.error().message();
      co_return;
    }
    std::array<iovec, 2> wv{iovec{a.data(), a.size()}, iovec{b.data(), b.size()}};
    auto w = co_await f->writev_at(wv, 0);
    EXPECT_TRUE(w && *w == 4 * 4096);
    std::array<iovec, 2> rv{iovec{c.data(), c.size()}, iovec{d.data(), d.size()}};
    auto r = co_await f->readv_at(rv, 0);
    EXPECT_TRUE(r && *r == 4 * 4096);
  }());
  EXPECT_TRUE(same(c.subspan(0, 4096), a.span()));
  EXPECT_TRUE(same(c.subspan(4096, 4096), b.subspan(0, 4096)));
  EXPECT_TRUE(same(d.span(), b.subspan(4096, 2 * 4096)));
  const auto disk = aio_test::read_file(path);
  ASSERT_EQ(disk.size(), 4u * 4096);
  EXPECT_TRUE(same(std::span(disk).subspan(0, 4096), a.span()));
  EXPECT_TRUE(same(std::span(disk).subspan(4096), b.span()));
}

TEST_P(DirectFile, MisalignedRequestsFailBeforeSubmission) {
  const std::string path = dir_.file("mis");
  ASSERT_TRUE(aio_test::write_file(path, pattern(64 * 1024, 24)));
  dma_buffer buf = buffer(64 * 1024);
  dio_alignment a;
  test::run([&]() -> task<void> {
    auto f = co_await direct_file::open(path.c_str(), O_RDWR, opts());
    if (!f) {
      ADD_FAILURE() << f.error().message();
      co_return;
    }
    a = f->alignment();
    const uint64_t ring_before = runtime::current()->stats().io.pushed;
    const uint64_t aio_before = runtime::current()->driver().aio_counters().pushed;
    // Buffer address off by one byte (no file system accepts that).
    auto r1 = co_await f->read_at(buf.subspan(1, a.offset), 0);
    // Offset and length off by half the offset alignment (or one byte).
    const uint32_t half = a.offset > 1 ? a.offset / 2 : 1;
    auto r2 = co_await f->read_at(buf.subspan(0, a.offset), half);
    auto r3 = co_await f->write_at(buf.subspan(0, a.offset + half), 0);
    std::array<iovec, 2> iov{iovec{buf.data(), a.offset}, iovec{buf.data() + a.offset, half}};
    auto r4 = co_await f->writev_at(iov, 0);
    auto r5 = co_await f->readv_at(std::span(iov).subspan(0, 1), half);
    for (const result<size_t>* r : {&r1, &r2, &r3, &r4, &r5}) {
      EXPECT_FALSE(*r);
      if (*r) continue;
      EXPECT_EQ(r->error(), errc::misaligned) << r->error().message();
      const std::string why = f->explain(r->error());
      EXPECT_NE(why.find(std::to_string(a.offset) + " bytes"), std::string::npos) << why;
      EXPECT_NE(why.find(std::to_string(a.memory) + " bytes"), std::string::npos) << why;
    }
    // Nothing reached either engine.
    EXPECT_EQ(runtime::current()->stats().io.pushed, ring_before);
    EXPECT_EQ(runtime::current()->driver().aio_counters().pushed, aio_before);
    // The same file still works when aligned.
    auto ok = co_await f->read_at(buf.subspan(0, a.offset), a.offset);
    EXPECT_TRUE(ok && *ok == a.offset);
  }());
  const auto data = pattern(64 * 1024, 24);
  EXPECT_TRUE(same(buf.subspan(0, a.offset), std::span(data).subspan(a.offset, a.offset)));
}

TEST_P(DirectFile, FsyncAndFdatasync) {
  const std::string path = dir_.file("sync");
  dma_buffer buf = buffer(8192);
  aio_test::fill_pattern(buf.span(), 25);
  test::run([&]() -> task<void> {
    auto f = co_await direct_file::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, opts());
    if (!f) {
      ADD_FAILURE() << f.error().message();
      co_return;
    }
    auto w = co_await f->write_at(buf.span(), 0);
    EXPECT_TRUE(w && *w == buf.size());
    auto s1 = co_await f->fsync();
    EXPECT_TRUE(s1) << s1.error().message();
    auto s2 = co_await f->fdatasync();
    EXPECT_TRUE(s2) << s2.error().message();
  }());
  EXPECT_TRUE(same(aio_test::read_file(path), buf.span()));
}

TEST_P(DirectFile, SyncLevelWrites) {
  const std::string path = dir_.file("dsync");
  dma_buffer a = buffer(4096), b = buffer(4096), c = buffer(2 * 4096);
  aio_test::fill_pattern(a.span(), 26);
  aio_test::fill_pattern(b.span(), 27);
  test::run([&]() -> task<void> {
    auto f = co_await direct_file::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, opts());
    if (!f) {
      ADD_FAILURE() << f.error().message();
      co_return;
    }
    auto w1 = co_await f->write_at(a.span(), 0, write_sync::dsync);
    EXPECT_TRUE(w1 && *w1 == 4096) << (w1 ? "" : w1.error().message());
    std::array<iovec, 1> v{iovec{b.data(), b.size()}};
    auto w2 = co_await f->writev_at(v, 4096, write_sync::sync);
    EXPECT_TRUE(w2 && *w2 == 4096) << (w2 ? "" : w2.error().message());
    auto r = co_await f->read_at(c.span(), 0);
    EXPECT_TRUE(r && *r == c.size());
  }());
  EXPECT_TRUE(same(c.subspan(0, 4096), a.span()));
  EXPECT_TRUE(same(c.subspan(4096, 4096), b.span()));
}

TEST_P(DirectFile, FsyncWithoutSupportIsUnsupportedOp) {
  // A pipe has no fsync: the kernel's EINVAL becomes a clear error.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  unique_fd r(p[0]);
  auto f = direct_file::adopt(unique_fd(p[1]), opts());
  ASSERT_TRUE(f) << f.error().message();
  auto got = test::run([&]() -> task<result<void>> { co_return co_await f->fsync(); }());
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), errc::unsupported_op) << got.error().message();
}

TEST_P(DirectFile, ManyConcurrentRequests) {
  const std::string path = dir_.file("many");
  constexpr std::size_t n = 256;
  const auto data = pattern(n * 4096, 28);
  ASSERT_TRUE(aio_test::write_file(path, data));
  dma_buffer buf = buffer(n * 4096);
  std::vector<int> hits(n, 0);
  test::run([&]() -> task<void> {
    auto f = co_await direct_file::open(path.c_str(), O_RDONLY, opts());
    if (!f) {
      ADD_FAILURE() << f.error().message();
      co_return;
    }
    std::vector<join_handle<void>> hs;
    for (std::size_t i = 0; i < n; ++i) {
      hs.push_back(runtime::current()->spawn(
          [](const direct_file& f, std::span<std::byte> b, uint64_t off, int& hit) -> task<void> {
            auto r = co_await f.read_at(b, off);
            hit += r && *r == b.size();
          }(*f, buf.subspan(i * 4096, 4096), i * 4096, hits[i])));
    }
    for (auto& h : hs) co_await h;
  }());
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i], 1) << i;
  EXPECT_TRUE(same(buf.span(), data));
}

INSTANTIATE_TEST_SUITE_P(Engines, DirectFile, ::testing::Values(dio_engine::uring, dio_engine::aio),
                         [](const ::testing::TestParamInfo<dio_engine>& i) {
                           return std::string(i.param == dio_engine::uring ? "uring" : "aio");
                         });

}  // namespace
}  // namespace coil
