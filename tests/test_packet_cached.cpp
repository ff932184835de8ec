// cached_space: hits and LRU eviction, one fetch shared by every read of a
// page, exact partial success through a failed fetch, write-through
// invalidation, a random model check, and readers destroyed while waiting.
#include <fcntl.h>

#include <cstring>
#include <random>
#include <vector>

#include "packet_model.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace coil::packet;

std::error_code ec(errc e) { return make_error_code(e); }

std::vector<std::byte> bytes(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 29 + seed * 13 + i / 97) & 0xff);
  return v;
}

// Counts the views that reach the space below.
class counting_space final : public space {
 public:
  explicit counting_space(space& below) : below_(below) {}
  void submit(view v) noexcept override {
    ++views;
    below_.submit(std::move(v));
  }
  uint64_t views = 0;

 private:
  space& below_;
};

struct inline_packet : packet_state {
  using packet_state::packet_state;
};
outcome run_now(space& s, direction d, std::byte* buf, uint64_t address, uint64_t len) {
  inline_packet p(d, buf, address, len);
  EXPECT_TRUE(p.start(s));
  return p.result();
}

TEST(PacketCached, HitsMissesAndLruEviction) {
  auto mem = bytes(1024, 1);
  memory_space m(mem);
  counting_space below(m);
  cached_space c(below, {.page_bytes = 64, .pages = 2});
  std::byte buf[128];
  EXPECT_TRUE(run_now(c, direction::read, buf, 10, 100).all_ok());  // pages 0, 1 (two pieces, two fetches)
  EXPECT_EQ(0, std::memcmp(buf, mem.data() + 10, 100));
  EXPECT_EQ(below.views, 2u);
  EXPECT_TRUE(run_now(c, direction::read, buf, 0, 128).all_ok());  // both cached
  EXPECT_EQ(0, std::memcmp(buf, mem.data(), 100));
  EXPECT_EQ(below.views, 2u);
  EXPECT_EQ(c.stats().hits, 2u);
  // Page 2 evicts the least recently used: page 0 (page 1 was hit last).
  EXPECT_TRUE(run_now(c, direction::read, buf, 130, 4).all_ok());
  EXPECT_EQ(c.stats().evictions, 1u);
  EXPECT_TRUE(run_now(c, direction::read, buf, 70, 4).all_ok());  // page 1: still cached
  EXPECT_EQ(below.views, 3u);
  EXPECT_TRUE(run_now(c, direction::read, buf, 5, 4).all_ok());  // page 0: fetched again
  EXPECT_EQ(below.views, 4u);
  EXPECT_EQ(0, std::memcmp(buf, mem.data() + 5, 4));
  EXPECT_EQ(c.stats().misses, 4u);
}

TEST(PacketCached, FailedFetchKeepsPartialSuccessExact) {
  auto mem = bytes(100, 2);
  memory_space m(mem);
  cached_space c(m, {.page_bytes = 64, .pages = 4});
  std::vector<std::byte> buf(60);
  // [50,110): page 1 is [64,128) and only [64,100) exists.
  const outcome o = run_now(c, direction::read, buf.data(), 50, 60);
  EXPECT_EQ(o.failures().size(), 1u);
  EXPECT_EQ(o.failures()[0], (failed_range{{50, 10}, ec(errc::unmapped)}));
  EXPECT_EQ(0, std::memcmp(buf.data(), mem.data() + 50, 50));
  EXPECT_EQ(c.stats().bypassed, 1u);  // the failed page's reader went to the source
  // Not cached: asked again, it is fetched again.
  run_now(c, direction::read, buf.data(), 64, 4);
  EXPECT_EQ(c.stats().misses, 3u);
}

TEST(PacketCached, WritesGoThroughAndDropThePages) {
  auto mem = bytes(256, 3);
  memory_space m(mem);
  cached_space c(m, {.page_bytes = 64, .pages = 4});
  std::byte buf[8];
  run_now(c, direction::read, buf, 60, 8);  // caches pages 0 and 1
  std::byte fresh[8];
  std::memset(fresh, 0xab, sizeof fresh);
  EXPECT_TRUE(run_now(c, direction::write, fresh, 62, 8).all_ok());
  EXPECT_EQ(0, std::memcmp(mem.data() + 62, fresh, 8));
  EXPECT_TRUE(run_now(c, direction::read, buf, 60, 8).all_ok());
  EXPECT_EQ(0, std::memcmp(buf, mem.data() + 60, 8));
  EXPECT_EQ(c.stats().misses, 4u);
}

// Readers of one page in one turn share one fetch: one kernel operation.
TEST(PacketCached, ConcurrentReadersShareOneFetchOverAFile) {
  test::temp_dir dir;
  const auto data = bytes(8192, 4);
  file_space fs(model::make_file(dir.file("f"), data, O_RDONLY));
  cached_space c(fs, {.page_bytes = 4096, .pages = 4});
  std::vector<std::vector<std::byte>> bufs(16, std::vector<std::byte>(100));
  std::vector<read_request> reqs;
  for (uint64_t i = 0; i < 16; ++i) reqs.push_back({i * 200, bufs[i], {}});
  auto failed = test::run(read_all(c, reqs));
  ASSERT_TRUE(failed);
  EXPECT_EQ(*failed, 0u);
  for (uint64_t i = 0; i < 16; ++i) EXPECT_EQ(0, std::memcmp(bufs[i].data(), data.data() + i * 200, 100)) << i;
  EXPECT_EQ(fs.stats().kernel_ops, 1u);  // pages 0 (requests 0-19 of it) only: 16 * 200 < 4096
  EXPECT_EQ(c.stats().misses, 1u);
  EXPECT_EQ(c.stats().hits, 15u);
}

// Random reads and writes through a cache over a mapped/striped tree with a
// fault, compared with the model; every slot busy or not, pages any size.
TEST(PacketCached, RandomTrafficMatchesTheModel) {
  std::mt19937_64 rng(4242);
  for (int round = 0; round < 100; ++round) {
    model::tree t;
    t.stripe = 1 + rng() % 32;
    const std::size_t n = 1 + rng() % 3;
    for (std::size_t d = 0; d < n; ++d) t.disks.push_back(bytes(64 + rng() % 128, static_cast<unsigned>(d + round)));
    std::vector<memory_space> mems;
    mems.reserve(n);
    for (auto& d : t.disks) mems.emplace_back(d);
    const uint64_t lo = rng() % 64;
    t.faults.push_back({0, lo, lo + rng() % 20, make_error_code(std::errc::io_error)});
    model::faulty_space faulty(mems[0], t.faults[0].lo, t.faults[0].hi, t.faults[0].error);
    std::vector<space*> backends{&faulty};
    for (std::size_t d = 1; d < n; ++d) backends.push_back(&mems[d]);
    striped_space st(backends, t.stripe);
    mapped_space m;
    // Targets do not overlap: a cache cannot see a write through one alias
    // change the bytes behind another.
    uint64_t target = rng() % 8;
    for (uint64_t v = rng() % 8; v < 400;) {
      const uint64_t len = 1 + rng() % 60;
      ASSERT_TRUE(m.map(v, len, st, target));
      t.regions.push_back({v, len, target});
      v += len + rng() % 12;
      target += len + rng() % 8;
    }
    cached_space c(m, {.page_bytes = 1 + rng() % 80, .pages = 1 + rng() % 6});
    for (int q = 0; q < 30; ++q) {
      const uint64_t addr = rng() % 450, len = 1 + rng() % 100;
      std::vector<std::byte> buf(len, std::byte{0xee});
      if (rng() % 4 == 0) {
        for (auto& b : buf) b = static_cast<std::byte>(rng());
        const auto want = model::expect(t, addr, len);
        auto disks = t.disks;
        for (uint64_t i = 0; i < len; ++i) {
          const auto p = t.locate(addr + i);
          if (!p.error) disks[p.disk][p.offset] = buf[i];
        }
        const outcome o = run_now(c, direction::write, buf.data(), addr, len);
        ASSERT_STREQ(model::compare(o, want), "") << "round " << round << " write " << q;
        ASSERT_EQ(disks, t.disks) << "round " << round << " write " << q;
        continue;
      }
      const outcome o = run_now(c, direction::read, buf.data(), addr, len);
      ASSERT_STREQ(model::compare(o, model::expect(t, addr, len)), "") << "round " << round << " read " << q;
      for (uint64_t i = 0; i < len; ++i) {
        const auto p = t.locate(addr + i);
        ASSERT_EQ(buf[i], p.error ? std::byte{0xee} : t.disks[p.disk][p.offset]) << "round " << round << " byte " << i;
      }
    }
  }
}

// Readers waiting on a fetch when their frames are destroyed (runtime torn
// down): their views leave the cache, the fetch completes into the cache's
// own buffer, and the cache stays usable.
TEST(PacketCached, ReadersDestroyedWhileWaitingLetGo) {
  test::temp_dir dir;
  const auto data = bytes(16384, 5);
  file_space fs(model::make_file(dir.file("f"), data, O_RDONLY));
  cached_space c(fs, {.page_bytes = 4096, .pages = 2});
  for (int stage = 0; stage < 4; ++stage) {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    (*rt)->block_on([](cached_space& c, int stage) -> task<void> {
      for (uint64_t i = 0; i < 4; ++i) {
        runtime::current()->spawn([](cached_space& c, uint64_t i) -> task<void> {
          std::byte buf[64];  // in the frame that is destroyed
          outcome o = co_await read(c, (i % 2) * 4096 + i * 8, buf);
          (void)o;
        }(c, i)).detach();
      }
      for (int i = 0; i < stage; ++i) co_await yield();
    }(c, stage));
    rt->reset();
    c.invalidate();
  }
  // The fetches the dead readers started may still be marked as under way
  // only if their runtime died first; a fresh read must still work.
  std::vector<std::byte> buf(64);
  auto r = block(read_into(c, 12000, buf));
  ASSERT_TRUE(r);
  EXPECT_EQ(0, std::memcmp(buf.data(), data.data() + 12000, 64));
}

}  // namespace
