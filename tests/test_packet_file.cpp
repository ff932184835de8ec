// The packet layer over files: batching per loop turn, partial success from
// truncated and closed backends, mapped over striped over files, blocking forms.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "packet_model.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace coil::packet;
using model::ec;
using model::make_file;
using model::pattern;
using model::read_concurrently;
using model::request;

// Kernel errors arrive in system_category.
std::error_code sys(int e) { return {e, std::system_category()}; }
std::vector<failed_range> failures(const outcome& o) { return {o.failures().begin(), o.failures().end()}; }

std::vector<std::byte> file_bytes(const std::string& path) {
  std::vector<std::byte> v(1 << 16);
  const int fd = ::open(path.c_str(), O_RDONLY);
  const ssize_t n = ::pread(fd, v.data(), v.size(), 0);
  ::close(fd);
  v.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return v;
}


TEST(PacketFile, AdjacentReadsInOneTurnBecomeOneOperation) {
  test::temp_dir dir;
  const auto data = pattern(8192, 1);
  for (const bool coalesce : {true, false}) {
    file_space fs(make_file(dir.file("f"), data), file_space_options{.coalesce = coalesce});
    std::vector<request> reqs;
    for (uint64_t i = 0; i < 16; ++i) reqs.push_back({1000 + (15 - i) * 64, std::vector<std::byte>(64), outcome{}});
    test::run(read_concurrently(fs, reqs));
    for (auto& r : reqs) {
      EXPECT_TRUE(r.result.all_ok()) << r.result.first_error().message();
      EXPECT_EQ(0, std::memcmp(r.buf.data(), data.data() + r.address, 64)) << "at " << r.address;
    }
    EXPECT_EQ(fs.stats().fragments, 16u);
    EXPECT_EQ(fs.stats().kernel_ops, coalesce ? 1u : 16u);
    EXPECT_EQ(fs.stats().batching_factor(), coalesce ? 16.0 : 1.0);
    EXPECT_EQ(fs.stats().bytes, 1024u);
  }
}

TEST(PacketFile, OverlappingReadsShareOneTransfer) {
  test::temp_dir dir;
  const auto data = pattern(4096, 2);
  file_space fs(make_file(dir.file("f"), data));
  std::vector<request> reqs{{100, std::vector<std::byte>(100), {}},
                            {150, std::vector<std::byte>(100), {}},   // overlaps the first's tail
                            {120, std::vector<std::byte>(20), {}},    // inside the first
                            {250, std::vector<std::byte>(10), {}}};   // adjacent to the second
  test::run(read_concurrently(fs, reqs));
  for (auto& r : reqs) {
    EXPECT_TRUE(r.result.all_ok());
    EXPECT_EQ(0, std::memcmp(r.buf.data(), data.data() + r.address, r.buf.size())) << "at " << r.address;
  }
  EXPECT_EQ(fs.stats().kernel_ops, 1u);
}

TEST(PacketFile, OperationsAreBoundedBySegmentsAndBytes) {
  test::temp_dir dir;
  const auto data = pattern(4096, 3);
  auto check = [&](file_space_options opts, uint64_t want_ops) {
    file_space fs(make_file(dir.file("f"), data), opts);
    std::vector<request> reqs;
    for (uint64_t i = 0; i < 10; ++i) reqs.push_back({i * 64, std::vector<std::byte>(64), {}});
    test::run(read_concurrently(fs, reqs));
    for (auto& r : reqs) EXPECT_EQ(0, std::memcmp(r.buf.data(), data.data() + r.address, 64));
    EXPECT_EQ(fs.stats().kernel_ops, want_ops);
  };
  check({.max_iov = 4}, 3);          // 4 + 4 + 2
  check({.max_op_bytes = 192}, 4);   // 3 + 3 + 3 + 1
  check({}, 1);
}

TEST(PacketFile, AdjacentWritesCoalesceAndLand) {
  test::temp_dir dir;
  const auto data = pattern(1024, 4);
  const auto fresh = pattern(512, 5);
  file_space fs(make_file(dir.file("f"), data));
  test::run([&]() -> task<void> {
    std::vector<join_handle<void>> hs;
    std::vector<outcome> outs(8);
    for (uint64_t i = 0; i < 8; ++i) {
      hs.push_back(runtime::current()->spawn([](file_space& fs, uint64_t i, const std::byte* src, outcome& o) -> task<void> {
        o = co_await write(fs, 256 + i * 64, std::span(src + i * 64, 64));
      }(fs, i, fresh.data(), outs[i])));
    }
    for (auto& h : hs) co_await h;
    for (auto& o : outs) EXPECT_TRUE(o.all_ok());
  }());
  EXPECT_EQ(fs.stats().kernel_ops, 1u);
  auto now = file_bytes(dir.file("f"));
  ASSERT_EQ(now.size(), 1024u);
  EXPECT_EQ(0, std::memcmp(now.data(), data.data(), 256));
  EXPECT_EQ(0, std::memcmp(now.data() + 256, fresh.data(), 512));
  EXPECT_EQ(0, std::memcmp(now.data() + 768, data.data() + 768, 256));
}

// Virtual layout: [0,64) hole, [64,64+768) -> striped [0,768), [832,896)
// hole, [896,960) -> striped [1000,1064). Stripes of 32 bytes over 3 files.
struct tree {
  test::temp_dir dir;
  std::vector<std::vector<std::byte>> contents;
  std::vector<std::unique_ptr<file_space>> files;
  std::unique_ptr<striped_space> striped;
  mapped_space mapped;

  explicit tree(std::size_t short_file = 99, std::size_t short_len = 0) {
    std::vector<space*> backends;
    for (std::size_t i = 0; i < 3; ++i) {
      contents.push_back(pattern(i == short_file ? short_len : 512, static_cast<unsigned>(10 + i)));
      files.push_back(std::make_unique<file_space>(make_file(dir.file("disk" + std::to_string(i)), contents[i])));
      backends.push_back(files.back().get());
    }
    striped = std::make_unique<striped_space>(backends, 32);
    EXPECT_TRUE(mapped.map(64, 768, *striped, 0));
    EXPECT_TRUE(mapped.map(896, 64, *striped, 1000));
  }
  // The byte behind striped address a.
  std::byte at(uint64_t a) const {
    const auto loc = striped->locate(a);
    return contents[loc.backend][loc.address];
  }
  uint64_t kernel_ops() const {
    uint64_t n = 0;
    for (auto& f : files) n += f->stats().kernel_ops;
    return n;
  }
};

TEST(PacketFile, MappedOverStripedOverFilesWithHoles) {
  tree t;
  std::vector<std::byte> buf(1000, std::byte{0x77});
  const outcome o = test::run([&]() -> task<outcome> { co_return co_await read(t.mapped, 0, buf); }());
  const std::vector<failed_range> want{{{0, 64}, ec(errc::unmapped)},
                                       {{832, 64}, ec(errc::unmapped)},
                                       {{960, 40}, ec(errc::unmapped)}};
  EXPECT_EQ(failures(o), want);
  EXPECT_EQ(o.ok_prefix(), 0u);
  EXPECT_EQ(o.ok_bytes(), 832u);
  for (uint64_t i = 64; i < 832; ++i) ASSERT_EQ(buf[i], t.at(i - 64)) << i;
  for (uint64_t i = 896; i < 960; ++i) ASSERT_EQ(buf[i], t.at(1000 + i - 896)) << i;
  EXPECT_EQ(buf[0], std::byte{0x77});
  // 24 + 3 stripe fragments (the second region touches three stripes). Each
  // file's 8 stripes of the first region are adjacent on that file: one
  // operation per file, plus one per file for the second region.
  uint64_t fragments = 0;
  for (auto& f : t.files) fragments += f->stats().fragments;
  EXPECT_EQ(fragments, 27u);
  EXPECT_EQ(t.kernel_ops(), 6u);
}

TEST(PacketFile, TruncatedBackendFailsExactlyItsBytes) {
  tree t(1, 40);  // file 1 holds 40 bytes: stripe 1 fully, 8 bytes of stripe 4
  std::vector<std::byte> buf(256);
  const outcome o = test::run([&]() -> task<outcome> { co_return co_await read(*t.striped, 0, buf); }());
  // Striped [0,256): file 1 serves stripes 1 ([32,64)), 4 ([128,160)) and 7 ([224,256)).
  const std::vector<failed_range> want{{{136, 24}, ec(errc::unexpected_eof)},
                                       {{224, 32}, ec(errc::unexpected_eof)}};
  EXPECT_EQ(failures(o), want);
  EXPECT_EQ(o.ok_prefix(), 136u);
  EXPECT_EQ(o.first_error(), ec(errc::unexpected_eof));
  for (uint64_t i = 0; i < 256; ++i) {
    const auto loc = t.striped->locate(i);
    if (loc.backend == 1 && loc.address >= 40) continue;
    ASSERT_EQ(buf[i], t.at(i)) << i;
  }
}

TEST(PacketFile, ClosedStripeFailsWithEbadfAndTheRestArrives) {
  tree t;
  std::vector<std::byte> buf(200);
  const outcome o = test::run([&]() -> task<outcome> {
    auto closed = co_await t.files[2]->file().close();
    EXPECT_TRUE(closed);
    co_return co_await read(*t.striped, 50, buf);  // [50,250)
  }());
  // File 2 serves stripes 2 ([64,96)) and 5 ([160,192)), at packet offsets 14 and 110.
  const std::vector<failed_range> want{{{14, 32}, sys(EBADF)},
                                       {{110, 32}, sys(EBADF)}};
  EXPECT_EQ(failures(o), want);
  for (uint64_t i = 0; i < 200; ++i) {
    if (t.striped->locate(50 + i).backend == 2) continue;
    ASSERT_EQ(buf[i], t.at(50 + i)) << i;
  }
}

TEST(PacketFile, WriteErrorsAreReported) {
  test::temp_dir dir;
  file_space ro(make_file(dir.file("ro"), pattern(64, 6), O_RDONLY));
  const auto src = pattern(16, 7);
  const outcome o = test::run([&]() -> task<outcome> { co_return co_await write(ro, 8, src); }());
  EXPECT_EQ(failures(o), (std::vector<failed_range>{{{0, 16}, sys(EBADF)}}));
}

TEST(PacketFile, WithoutARuntimeViewsFailAtOnce) {
  test::temp_dir dir;
  file_space fs(make_file(dir.file("f"), pattern(64, 8)));
  std::byte buf[8];
  model::bare_packet p(direction::read, buf, 0, sizeof buf);
  EXPECT_TRUE(p.start(fs));
  EXPECT_EQ(p.result().first_error(), ec(errc::no_runtime));
}

// Readers whose frames are destroyed (runtime shutdown) before they ran
// (stage 0), with their fragments queued (1), batched but not issued (2), in
// the kernel (3) or later: nothing touches freed memory (ASan), and the space
// stays usable.
TEST(PacketFile, PacketsDestroyedMidFlightLetGoOfTheirFragments) {
  test::temp_dir dir;
  const auto data = pattern(1 << 16, 12);
  file_space fs(make_file(dir.file("f"), data));
  for (int stage = 0; stage < 5; ++stage) {
    const int finished = model::cut_off_readers(fs, stage);
    ASSERT_GE(finished, 0);
    if (stage < 4) {
      EXPECT_EQ(finished, 0) << "stage " << stage << ": the readers were meant to be cut off";
    }
  }
  EXPECT_EQ(fs.stats().fragments, 32u);  // stages 1-4 submitted
  std::vector<std::byte> buf(100);
  const outcome o = test::run([&]() -> task<outcome> { co_return co_await read(fs, 500, buf); }());
  EXPECT_TRUE(o.all_ok());
  EXPECT_EQ(0, std::memcmp(buf.data(), data.data() + 500, 100));
}

// ASan cannot see the kernel write into freed memory, and a read from the
// page cache finishes inside the submitting system call, so the test above
// would pass even if a dying packet did not wait for its read. Here the
// reads come from the disk (cache dropped) and each buffer outlives its
// reader, whose last act (a guard destroyed after the packet) is to fill it
// with a canary: a read landing after its packet died overwrites the canary.
TEST(PacketFile, NoReadLandsAfterItsPacketDied) {
  test::temp_dir dir;
  const auto data = pattern(1 << 16, 13);
  file_space fs(make_file(dir.file("f"), data, O_RDONLY));
  static constexpr std::byte canary{0xa5};
  std::vector<std::vector<std::byte>> bufs(8, std::vector<std::byte>(4096));
  struct canary_guard {
    std::vector<std::byte>* buf;
    ~canary_guard() { std::fill(buf->begin(), buf->end(), canary); }
  };
  for (int stage = 0; stage < 6; ++stage) {
    ASSERT_EQ(::posix_fadvise(fs.file().fd(), 0, 0, POSIX_FADV_DONTNEED), 0);
    for (auto& b : bufs) std::fill(b.begin(), b.end(), canary);  // a reader that never ran leaves it so
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    (*rt)->block_on([](file_space& fs, int stage, std::vector<std::vector<std::byte>>& bufs) -> task<void> {
      for (uint64_t i = 0; i < bufs.size(); ++i) {
        runtime::current()->spawn([](file_space& fs, uint64_t i, std::vector<std::byte>& buf) -> task<void> {
          canary_guard guard{&buf};
          outcome o = co_await read(fs, i * 8192, buf);
          (void)o;
        }(fs, i, bufs[i])).detach();
      }
      for (int i = 0; i < stage; ++i) co_await yield();
    }(fs, stage, bufs));
    rt->reset();
    for (std::size_t i = 0; i < bufs.size(); ++i) {
      ASSERT_EQ(std::count(bufs[i].begin(), bufs[i].end(), canary), 4096) << "stage " << stage << " buffer " << i;
    }
  }
}

TEST(PacketBlocking, WorksFromAPlainThreadAndRefusesInsideARuntime) {
  tree t;
  std::vector<std::byte> buf(300);
  result<outcome> r = fail(std::errc::io_error);
  std::thread([&] { r = read_blocking(t.mapped, 40, buf); }).join();
  CO_EXPECT_OK(r);
  ASSERT_TRUE(r);
  EXPECT_EQ(failures(*r), (std::vector<failed_range>{{{0, 24}, ec(errc::unmapped)}}));
  for (uint64_t i = 24; i < 300; ++i) ASSERT_EQ(buf[i], t.at(40 + i - 64)) << i;

  const auto src = pattern(32, 9);
  std::thread([&] { r = write_blocking(t.mapped, 64, src); }).join();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->all_ok());
  EXPECT_EQ(file_bytes(t.dir.file("disk0")).at(0), src[0]);

  // Result-shaped helpers through block().
  std::thread([&] {
    EXPECT_TRUE(block(write_value<uint32_t>(t.mapped, 100, 0xfeedf00du)));
    auto v = block(read_value<uint32_t>(t.mapped, 100));
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, 0xfeedf00du);
    EXPECT_TRUE(test::fails_with(block(read_value<uint32_t>(t.mapped, 62)), errc::unmapped));
  }).join();

  test::run([&]() -> task<void> {
    EXPECT_TRUE(test::fails_with(read_blocking(t.mapped, 64, buf), errc::in_runtime));
    EXPECT_TRUE(test::fails_with(block(read_value<uint32_t>(t.mapped, 64)), errc::in_runtime));
    co_return;
  }());
}

}  // namespace
