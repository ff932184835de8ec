// The packet layer over real files against the reference model: random maps
// over stripes over file_spaces, random injected failures per backend (a
// faulty range, a short file, a file the kernel refuses to read), many
// packets per loop turn so fragments of different packets coalesce and
// overlap. Every request's failed ranges, byte count and bytes must match the
// model exactly. Also: per-fragment callbacks and read_all.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "packet_model.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace coil::packet;

std::error_code ec(errc e) { return make_error_code(e); }
std::error_code sys(int e) { return {e, std::system_category()}; }

std::vector<std::byte> random_bytes(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

// One random tree of file_spaces with its model.
struct file_tree {
  model::tree t;
  std::vector<std::unique_ptr<file_space>> files;
  std::vector<std::unique_ptr<model::faulty_space>> faulty;
  std::unique_ptr<striped_space> striped;
  mapped_space mapped;

  file_tree(const test::temp_dir& dir, std::mt19937_64& rng, file_space_options opts) {
    t.past_end = ec(errc::unexpected_eof);
    t.stripe = 1 + rng() % 64;
    const std::size_t n = 1 + rng() % 4;
    const uint64_t size = 64 + rng() % 512;
    std::vector<space*> backends;
    for (std::size_t d = 0; d < n; ++d) {
      const unsigned kind = rng() % 6;  // 0: short file, 1: unreadable file, 2: faulty range, else healthy
      t.disks.push_back(random_bytes(kind == 0 ? rng() % size : size, rng));
      const int flags = kind == 1 ? O_WRONLY : O_RDONLY;
      std::string name = "d";  // appended: g++ 12 -O3 reports a false -Wrestrict on "d" + string
      name += std::to_string(d);
      files.push_back(std::make_unique<file_space>(model::make_file(dir.file(name), t.disks[d], flags), opts));
      backends.push_back(files.back().get());
      if (kind == 1) t.faults.push_back({d, 0, ~uint64_t{0}, sys(EBADF)});
      if (kind == 2) {
        const uint64_t lo = rng() % size;
        t.faults.push_back({d, lo, lo + 1 + rng() % 100, make_error_code(std::errc::io_error)});
        faulty.push_back(std::make_unique<model::faulty_space>(*files.back(), t.faults.back().lo, t.faults.back().hi,
                                                               t.faults.back().error));
        backends.back() = faulty.back().get();
      }
    }
    striped = std::make_unique<striped_space>(backends, t.stripe);
    for (uint64_t v = rng() % 16; v < 2048;) {
      const uint64_t len = 1 + rng() % 300, target = rng() % (n * size + 64);
      EXPECT_TRUE(mapped.map(v, len, *striped, target));
      t.regions.push_back({v, len, target});
      v += len + (rng() % 3 == 0 ? rng() % 64 : 0);
    }
  }
  file_space_stats stats() const {
    file_space_stats s;
    for (auto& f : files) {
      s.fragments += f->stats().fragments;
      s.kernel_ops += f->stats().kernel_ops;
    }
    return s;
  }
};

std::string describe(const outcome& o, const model::expected_outcome& want) {
  std::string s = "got";
  for (const auto& f : o.failures()) s += " [" + std::to_string(f.range.offset) + "+" + std::to_string(f.range.len) + " " + f.error.message() + "]";
  s += ", want";
  for (const auto& f : want.failures) s += " [" + std::to_string(f.range.offset) + "+" + std::to_string(f.range.len) + " " + f.error.message() + "]";
  return s;
}

void check_against_model(bool coalesce) {
  test::temp_dir dir;
  std::mt19937_64 rng(coalesce ? 777 : 778);
  file_space_stats total;
  for (int round = 0; round < 40; ++round) {
    file_tree ft(dir, rng, {.max_iov = static_cast<uint32_t>(2 + rng() % 16), .coalesce = coalesce});
    // Requests that often neighbour or overlap each other, so fragments of
    // different packets meet in one run.
    std::vector<std::vector<std::byte>> bufs;
    std::vector<read_request> reqs;
    for (int q = 0; q < 48; ++q) {
      const uint64_t len = 1 + rng() % 200;
      uint64_t addr = rng() % 2200;
      if (q > 0 && rng() % 2 == 0) addr = reqs.back().address + reqs.back().buf.size() - rng() % 8;
      bufs.emplace_back(len, std::byte{0xee});
      reqs.push_back({addr, bufs.back(), {}});
    }
    const auto failed = test::run(read_all(ft.mapped, reqs));
    ASSERT_TRUE(failed);
    std::size_t want_failed = 0;
    for (std::size_t q = 0; q < reqs.size(); ++q) {
      const read_request& r = reqs[q];
      const auto want = model::expect(ft.t, r.address, r.buf.size());
      want_failed += want.failed_bytes != 0;
      ASSERT_STREQ(model::compare(r.result, want), "") << "round " << round << " request " << q << " at " << r.address
                                                       << "+" << r.buf.size() << ": " << describe(r.result, want);
      for (uint64_t i = 0; i < r.buf.size(); ++i) {
        const auto p = ft.t.locate(r.address + i);
        ASSERT_EQ(r.buf[i], p.error ? std::byte{0xee} : ft.t.disks[p.disk][p.offset])
            << "round " << round << " request " << q << " byte " << i;
      }
    }
    EXPECT_EQ(*failed, want_failed);
    const auto s = ft.stats();
    total.fragments += s.fragments;
    total.kernel_ops += s.kernel_ops;
  }
  // Not a timing: coalescing must have merged something over 40 rounds, and
  // without it every fragment is its own operation (short files retry, so >=).
  if (coalesce) {
    EXPECT_LT(total.kernel_ops * 2, total.fragments);
  } else {
    EXPECT_GE(total.kernel_ops, total.fragments);
  }
}

TEST(PacketModel, FilesWithInjectedFailuresMatchTheModel) { check_against_model(true); }
TEST(PacketModel, FilesWithoutCoalescingMatchTheModel) { check_against_model(false); }

// Per-fragment callbacks: disjoint ranges covering the packet, errors as in
// the outcome, bytes already in the buffer when a fragment is reported.
TEST(PacketFragments, CallbacksCoverThePacketAsItArrives) {
  test::temp_dir dir;
  std::mt19937_64 rng(99);
  file_tree ft(dir, rng, {});
  std::vector<std::byte> buf(1500, std::byte{0xee});
  std::map<uint64_t, std::pair<uint64_t, std::error_code>> seen;  // offset -> (len, error)
  bool bytes_ok = true;
  const outcome o = test::run([&]() -> task<outcome> {
    co_return co_await read_each(ft.mapped, 100, buf, [&](byte_range r, std::error_code e) {
      EXPECT_TRUE(seen.emplace(r.offset, std::make_pair(r.len, e)).second) << "offset reported twice";
      for (uint64_t i = r.offset; i < r.end() && !e; ++i) {
        const auto p = ft.t.locate(100 + i);
        bytes_ok &= !p.error && buf[i] == ft.t.disks[p.disk][p.offset];
      }
    });
  }());
  EXPECT_TRUE(bytes_ok);
  EXPECT_STREQ(model::compare(o, model::expect(ft.t, 100, buf.size())), "");
  EXPECT_GT(seen.size(), 3u);
  uint64_t at = 0, failed = 0;
  for (const auto& [off, f] : seen) {
    ASSERT_EQ(off, at) << "gap or overlap";
    at += f.first;
    if (f.second) failed += f.first;
  }
  EXPECT_EQ(at, buf.size());
  EXPECT_EQ(failed, o.failed_bytes());
}

TEST(PacketFragments, WriteEachReportsEveryFragment) {
  std::vector<std::byte> a(64), b(64);
  memory_space ma(a), mb(b);
  striped_space st({&ma, &mb}, 16);
  std::vector<std::byte> src(100, std::byte{7});
  uint64_t reported = 0, failed = 0;
  const outcome o = test::run([&]() -> task<outcome> {
    co_return co_await write_each(st, 50, src, [&](byte_range r, std::error_code e) {
      reported += r.len;
      if (e) failed += r.len;
    });
  }());
  EXPECT_EQ(reported, 100u);
  EXPECT_EQ(failed, 22u);  // the space holds 128 bytes
  EXPECT_EQ(o.failed_bytes(), 22u);
}

TEST(PacketReadAll, NeighboursInOneCallCoalesceAndEmptyRequestsFinish) {
  test::temp_dir dir;
  std::mt19937_64 rng(5);
  const auto data = random_bytes(4096, rng);
  file_space fs(model::make_file(dir.file("f"), data, O_RDONLY));
  std::vector<std::vector<std::byte>> bufs(33, std::vector<std::byte>(32));
  std::vector<read_request> reqs;
  for (uint64_t i = 0; i < 32; ++i) reqs.push_back({(31 - i) * 32, bufs[i], {}});
  reqs.push_back({4090, bufs[32], {}});  // 26 bytes past the end
  reqs.push_back({100, {}, {}});         // empty
  auto failed = test::run(read_all(fs, reqs));
  ASSERT_TRUE(failed);
  EXPECT_EQ(*failed, 1u);
  for (uint64_t i = 0; i < 32; ++i) {
    EXPECT_TRUE(reqs[i].result.all_ok());
    EXPECT_EQ(0, std::memcmp(bufs[i].data(), data.data() + reqs[i].address, 32));
  }
  EXPECT_EQ(reqs[32].result.failures()[0], (failed_range{{6, 26}, ec(errc::unexpected_eof)}));
  EXPECT_TRUE(reqs[33].result.all_ok());
  // 32 adjacent reads: one operation; the read at the end: its own, plus the
  // retry that finds the end of the file.
  EXPECT_EQ(fs.stats().kernel_ops, 3u);
  // The blocking form, from this plain thread.
  auto again = block(read_all(fs, reqs));
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 1u);
}

// The space's own count is not trusted alone: the driver must have been
// handed exactly that many operations.
TEST(PacketReadAll, TheDriverSeesTheCoalescedOperations) {
  test::temp_dir dir;
  std::mt19937_64 rng(7);
  const auto data = random_bytes(1 << 16, rng);
  file_space fs(model::make_file(dir.file("f"), data, O_RDONLY));
  std::vector<std::vector<std::byte>> bufs(72, std::vector<std::byte>(32));
  std::vector<read_request> reqs;
  for (uint64_t i = 0; i < 64; ++i) reqs.push_back({(63 - i) * 32, bufs[i], {}});     // one run
  for (uint64_t k = 1; k <= 8; ++k) reqs.push_back({k * 4096 + 100, bufs[63 + k], {}});  // eight lone reads
  const uint64_t pushed = test::run([&]() -> task<uint64_t> {
    const uint64_t before = runtime::current()->stats().io.pushed;
    auto failed = co_await read_all(fs, reqs);
    EXPECT_TRUE(failed && *failed == 0);
    co_return runtime::current()->stats().io.pushed - before;
  }());
  EXPECT_EQ(fs.stats().fragments, 72u);
  EXPECT_EQ(fs.stats().kernel_ops, 9u);
  EXPECT_EQ(pushed, 9u);
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(0, std::memcmp(bufs[i].data(), data.data() + reqs[i].address, 32)) << i;
  }
}

// Adjacent fragments into adjacent memory become one plain read (or write):
// no iovec array for the kernel to import.
TEST(PacketReadAll, AdjacentMemoryMakesOnePlainOperation) {
  test::temp_dir dir;
  std::mt19937_64 rng(11);
  const auto data = random_bytes(1 << 14, rng);
  file_space fs(model::make_file(dir.file("f"), data, O_RDWR));
  std::vector<std::byte> buf(16 * 64);
  std::vector<read_request> reqs;
  for (uint64_t i = 0; i < 16; ++i) reqs.push_back({1000 + i * 64, std::span(buf).subspan(i * 64, 64), {}});
  std::vector<std::byte> other(64);
  reqs.push_back({1000 + 16 * 64, other, {}});  // the same run, memory elsewhere: readv
  const driver_stats s = test::run([&]() -> task<driver_stats> {
    const driver_stats before = runtime::current()->stats().io;
    auto failed = co_await read_all(fs, reqs);
    EXPECT_TRUE(failed && *failed == 0);
    auto w = co_await write(fs, 8192, std::span<const std::byte>(buf).first(256));
    EXPECT_TRUE(w.all_ok());
    driver_stats d = runtime::current()->stats().io;
    for (std::size_t k = 0; k < std::size(d.by_opcode); ++k) {
      d.by_opcode[k].pushed -= before.by_opcode[k].pushed;
    }
    co_return d;
  }());
  EXPECT_EQ(s.of(IORING_OP_READV).pushed, 1u);  // 16 slices merged + the other buffer
  EXPECT_EQ(s.of(IORING_OP_READ).pushed, 0u);
  EXPECT_EQ(s.of(IORING_OP_WRITE).pushed, 1u);
  EXPECT_EQ(s.of(IORING_OP_WRITEV).pushed, 0u);
  EXPECT_EQ(0, std::memcmp(buf.data(), data.data() + 1000, buf.size()));
  EXPECT_EQ(0, std::memcmp(other.data(), data.data() + 1000 + 16 * 64, 64));
  std::vector<std::byte> back(256);
  ASSERT_EQ(::pread(fs.file().fd(), back.data(), back.size(), 8192), 256);
  EXPECT_EQ(0, std::memcmp(back.data(), buf.data(), 256));
}

// A gather whose frame is destroyed (runtime torn down) at every stage of its
// packets' lives, buffers in the frame: nothing touches freed memory (ASan).
TEST(PacketReadAll, DestroyedMidFlightLetsGo) {
  test::temp_dir dir;
  std::mt19937_64 rng(6);
  const auto data = random_bytes(1 << 16, rng);
  file_space fs(model::make_file(dir.file("f"), data, O_RDONLY));
  for (int stage = 0; stage < 5; ++stage) {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    bool finished = false;
    (*rt)->block_on([](file_space& fs, int stage, bool& finished) -> task<void> {
      runtime::current()->spawn([](file_space& fs, bool& finished) -> task<void> {
        std::byte bufs[8][512];  // in the frame that is destroyed
        read_request reqs[8];
        for (uint64_t i = 0; i < 8; ++i) reqs[i] = {i * 4096 + (i % 2) * 512, bufs[i], {}};
        auto r = co_await read_all(fs, reqs);
        finished = r.has_value();
      }(fs, finished)).detach();
      for (int i = 0; i < stage; ++i) co_await yield();
    }(fs, stage, finished));
    if (stage < 3) {
      EXPECT_FALSE(finished) << "stage " << stage << ": the gather was meant to be cut off";
    }
    rt->reset();
  }
  std::vector<std::byte> buf(64);
  read_request again[] = {{100, buf, {}}};
  auto r = block(read_all(fs, again));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0u);
  EXPECT_EQ(0, std::memcmp(buf.data(), data.data() + 100, 64));
}

}  // namespace
