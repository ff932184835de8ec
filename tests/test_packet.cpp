// The packet layer without files: outcome bookkeeping, views, memory, mapped
// and striped spaces, and a randomized check against a byte-level model.
#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "packet_model.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace coil::packet;

std::error_code ec(errc e) { return make_error_code(e); }
std::error_code ec(std::errc e) { return make_error_code(e); }

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed * 7 + i / 251) & 0xff);
  return v;
}

// Runs one packet on a space that completes inline (no runtime needed).
struct inline_packet : packet_state {
  using packet_state::packet_state;
};
outcome read_now(space& s, uint64_t address, std::span<std::byte> buf) {
  inline_packet p(direction::read, buf.data(), address, buf.size());
  EXPECT_TRUE(p.start(s)) << "an inline space left the packet pending";
  return p.result();
}
outcome write_now(space& s, uint64_t address, std::span<const std::byte> buf) {
  inline_packet p(direction::write, const_cast<std::byte*>(buf.data()), address, buf.size());
  EXPECT_TRUE(p.start(s));
  return p.result();
}

std::vector<failed_range> failures(const outcome& o) { return {o.failures().begin(), o.failures().end()}; }

// Keeps views without ending them; dropping them must fail them.
class sink_space final : public space {
 public:
  void submit(view v) noexcept override { held.push_back(std::move(v)); }
  std::vector<view> held;
};

TEST(PacketOutcome, MergesSortsAndAnswers) {
  outcome o(100);
  EXPECT_TRUE(o.all_ok());
  EXPECT_EQ(o.ok_prefix(), 100u);
  EXPECT_FALSE(o.first_error());
  o.record_failure({50, 10}, ec(errc::unmapped));
  o.record_failure({10, 5}, ec(std::errc::io_error));
  o.record_failure({60, 5}, ec(errc::unmapped));  // touches [50,60), same error: merged
  o.record_failure({15, 5}, ec(errc::unmapped));  // touches [10,15) but another error: separate
  EXPECT_FALSE(o.all_ok());
  EXPECT_EQ(o.ok_prefix(), 10u);
  EXPECT_EQ(o.first_error(), ec(std::errc::io_error));
  EXPECT_EQ(o.failed_bytes(), 25u);
  EXPECT_EQ(o.ok_bytes(), 75u);
  const std::vector<failed_range> want{{{10, 5}, ec(std::errc::io_error)},
                                       {{15, 5}, ec(errc::unmapped)},
                                       {{50, 15}, ec(errc::unmapped)}};
  EXPECT_EQ(failures(o), want);
  std::vector<byte_range> ok;
  o.for_each_ok([&](byte_range r) { ok.push_back(r); });
  EXPECT_EQ(ok, (std::vector<byte_range>{{0, 10}, {20, 30}, {65, 35}}));
  EXPECT_FALSE(o.truncated());
}

TEST(PacketOutcome, FillsAGapBetweenTwoFailures) {
  outcome o(30);
  o.record_failure({0, 10}, ec(errc::unmapped));
  o.record_failure({20, 10}, ec(errc::unmapped));
  o.record_failure({10, 10}, ec(errc::unmapped));
  EXPECT_EQ(failures(o), (std::vector<failed_range>{{{0, 30}, ec(errc::unmapped)}}));
  EXPECT_EQ(o.ok_prefix(), 0u);
}

TEST(PacketOutcome, OverflowKeepsTheLowestAndExactHeadlines) {
  outcome o(1000);
  // Every other 10-byte block fails, recorded from the top down.
  for (int i = 20; i >= 0; --i) o.record_failure({static_cast<uint64_t>(i) * 20 + 5, 10}, ec(std::errc::io_error));
  EXPECT_TRUE(o.truncated());
  ASSERT_EQ(o.failures().size(), outcome::max_failures);
  for (std::size_t i = 0; i < outcome::max_failures; ++i) EXPECT_EQ(o.failures()[i].range.offset, i * 20 + 5);
  EXPECT_EQ(o.ok_prefix(), 5u);
  EXPECT_EQ(o.failed_bytes(), 210u);
  // Ok ranges are reported only where known: below the lowest dropped failure.
  EXPECT_EQ(o.known_until(), 165u);
  uint64_t last_end = 0;
  o.for_each_ok([&](byte_range r) { last_end = r.end(); });
  EXPECT_EQ(last_end, 165u);
}

// Pieces of failed runs arriving out of order merge later: once a failure
// was dropped, the list stays exact below it even if merges free room.
TEST(PacketOutcome, DroppedFailuresBoundWhatIsKnown) {
  outcome o(1000);
  const auto io = ec(std::errc::io_error);
  for (uint64_t i = 0; i < 8; ++i) o.record_failure({i * 100, 10}, io);  // full
  o.record_failure({850, 10}, io);                                       // dropped
  EXPECT_EQ(o.known_until(), 850u);
  o.record_failure({10, 90}, io);  // fills [10,100): [0,10)+[10,100)+[100,110) merge, one slot frees
  EXPECT_EQ(o.failures().size(), 7u);
  o.record_failure({900, 10}, io);  // above the dropped one: still not listed
  EXPECT_EQ(o.failures().size(), 7u);
  o.record_failure({800, 5}, io);  // below it: listed
  EXPECT_EQ(o.failures().size(), 8u);
  EXPECT_EQ(o.failures().back().range, (byte_range{800, 5}));
  EXPECT_EQ(o.failed_bytes(), 8 * 10u + 10 + 90 + 10 + 5);
  EXPECT_TRUE(o.truncated());
}

TEST(PacketMemory, ReadWriteAndPastTheEnd) {
  auto mem = pattern(64, 1);
  memory_space s(mem);
  std::vector<std::byte> buf(32);
  auto o = read_now(s, 8, buf);
  EXPECT_TRUE(o.all_ok());
  EXPECT_EQ(0, std::memcmp(buf.data(), mem.data() + 8, 32));

  // [48,80): 16 bytes exist, 16 do not.
  std::fill(buf.begin(), buf.end(), std::byte{0});
  o = read_now(s, 48, buf);
  EXPECT_EQ(o.ok_prefix(), 16u);
  EXPECT_EQ(failures(o), (std::vector<failed_range>{{{16, 16}, ec(errc::unmapped)}}));
  EXPECT_EQ(0, std::memcmp(buf.data(), mem.data() + 48, 16));

  const auto src = pattern(8, 9);
  o = write_now(s, 60, src);
  EXPECT_EQ(failures(o), (std::vector<failed_range>{{{4, 4}, ec(errc::unmapped)}}));
  EXPECT_EQ(0, std::memcmp(mem.data() + 60, src.data(), 4));
  o = read_now(s, 1000, buf);
  EXPECT_EQ(o.failed_bytes(), 32u);
  EXPECT_EQ(o.first_error(), ec(errc::unmapped));
  EXPECT_TRUE(read_now(s, 3, {}).all_ok());  // empty packet
}

TEST(PacketView, DroppedViewsFailAsCancelled) {
  sink_space sink;
  std::vector<std::byte> buf(16);
  inline_packet p(direction::read, buf.data(), 0, buf.size());
  EXPECT_FALSE(p.start(sink));
  ASSERT_EQ(sink.held.size(), 1u);
  view head = sink.held[0].take_front(4);
  head.done();
  EXPECT_FALSE(p.finished());
  sink.held.clear();
  EXPECT_TRUE(p.finished());
  EXPECT_EQ(failures(p.result()), (std::vector<failed_range>{{{4, 12}, ec(std::errc::operation_canceled)}}));
}

TEST(PacketMapped, HolesAndRemapping) {
  auto a = pattern(100, 2), b = pattern(100, 3);
  memory_space ma(a), mb(b);
  mapped_space m;
  ASSERT_TRUE(m.map(10, 20, ma, 50));   // [10,30) -> a[50,70)
  ASSERT_TRUE(m.map(40, 10, mb, 0));    // [40,50) -> b[0,10)
  ASSERT_TRUE(m.map(50, 5, ma, 0));     // [50,55) -> a[0,5), adjacent to the previous region
  EXPECT_TRUE(test::fails_with(m.map(45, 10, mb, 0), std::errc::invalid_argument));  // overlaps
  EXPECT_TRUE(test::fails_with(m.map(0, 11, mb, 0), std::errc::invalid_argument));
  EXPECT_TRUE(test::fails_with(m.map(70, 0, mb, 0), std::errc::invalid_argument));
  EXPECT_TRUE(test::fails_with(m.unmap(11), std::errc::no_such_file_or_directory));

  std::vector<std::byte> buf(60, std::byte{0xee});
  auto o = read_now(m, 0, buf);  // [0,60)
  const std::vector<failed_range> want{{{0, 10}, ec(errc::unmapped)},
                                       {{30, 10}, ec(errc::unmapped)},
                                       {{55, 5}, ec(errc::unmapped)}};
  EXPECT_EQ(failures(o), want);
  EXPECT_EQ(o.ok_prefix(), 0u);
  EXPECT_EQ(o.ok_bytes(), 35u);
  EXPECT_EQ(0, std::memcmp(buf.data() + 10, a.data() + 50, 20));
  EXPECT_EQ(0, std::memcmp(buf.data() + 40, b.data(), 10));
  EXPECT_EQ(0, std::memcmp(buf.data() + 50, a.data(), 5));
  EXPECT_EQ(buf[0], std::byte{0xee});  // failed bytes are left alone

  ASSERT_TRUE(m.unmap(40));
  o = read_now(m, 35, std::span(buf).first(20));  // [35,55): hole [35,50), then a[0,5)
  EXPECT_EQ(failures(o), (std::vector<failed_range>{{{0, 15}, ec(errc::unmapped)}}));
}

TEST(PacketStriped, AddressingMatchesTheFormula) {
  std::vector<std::vector<std::byte>> disks(3, std::vector<std::byte>(64));
  std::vector<memory_space> spaces;
  spaces.reserve(3);
  for (auto& d : disks) spaces.emplace_back(d);
  striped_space st({&spaces[0], &spaces[1], &spaces[2]}, 8);
  const auto src = pattern(150, 4);
  auto o = write_now(st, 3, src);
  EXPECT_TRUE(o.all_ok());
  for (uint64_t i = 0; i < src.size(); ++i) {
    const uint64_t a = 3 + i, stripe = a / 8;
    ASSERT_EQ(disks[stripe % 3][(stripe / 3) * 8 + a % 8], src[i]) << "byte " << i;
  }
  std::vector<std::byte> back(150);
  EXPECT_TRUE(read_now(st, 3, back).all_ok());
  EXPECT_EQ(back, src);
  // Past the disks' end: each disk holds 64 bytes, so the space holds 192.
  o = read_now(st, 180, std::span(back).first(20));
  EXPECT_EQ(failures(o), (std::vector<failed_range>{{{12, 8}, ec(errc::unmapped)}}));
}

// Random mapped-over-striped-over-memory trees with injected failures,
// checked byte by byte against the naive model in packet_model.hpp.
TEST(PacketModel, RandomMapsRequestsAndFailures) {
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 200; ++round) {
    model::tree t;
    const std::size_t n_disks = 1 + rng() % 4;
    t.stripe = 1 + rng() % 16;
    const uint64_t disk_size = 32 + rng() % 64;
    for (std::size_t i = 0; i < n_disks; ++i) t.disks.push_back(pattern(disk_size, static_cast<unsigned>(i + round)));
    std::vector<memory_space> mems;
    mems.reserve(n_disks);
    for (auto& d : t.disks) mems.emplace_back(d);
    // One disk fails a random range of its addresses.
    const std::size_t bad = rng() % n_disks;
    const uint64_t lo = rng() % disk_size;
    t.faults.push_back({bad, lo, lo + rng() % 16, ec(std::errc::io_error)});
    model::faulty_space faulty(mems[bad], t.faults[0].lo, t.faults[0].hi, t.faults[0].error);
    std::vector<space*> backends;
    for (std::size_t i = 0; i < n_disks; ++i) backends.push_back(i == bad ? static_cast<space*>(&faulty) : &mems[i]);
    striped_space st(backends, t.stripe);
    mapped_space m;
    uint64_t v = rng() % 8;
    while (v < 256) {
      const uint64_t len = 1 + rng() % 40, target = rng() % (n_disks * disk_size + 20);
      ASSERT_TRUE(m.map(v, len, st, target));
      t.regions.push_back({v, len, target});
      v += len + (rng() % 3 == 0 ? rng() % 20 : 0);
    }
    for (int q = 0; q < 20; ++q) {
      const uint64_t addr = rng() % 300, len = 1 + rng() % 120;
      std::vector<std::byte> buf(len, std::byte{0x5a});
      const outcome o = read_now(m, addr, buf);
      for (uint64_t i = 0; i < len; ++i) {
        const auto p = t.locate(addr + i);
        ASSERT_EQ(buf[i], p.error ? std::byte{0x5a} : t.disks[p.disk][p.offset]) << "round " << round << " byte " << i;
      }
      ASSERT_STREQ(model::compare(o, model::expect(t, addr, len)), "") << "round " << round << " query " << q;
    }
  }
}

TEST(PacketAsync, AwaitingInlineSpacesAndHelpers) {
  auto mem = pattern(64, 5);
  memory_space s(mem);
  test::run([&]() -> task<void> {
    std::byte buf[16];
    outcome o = co_await read(s, 4, buf);
    EXPECT_TRUE(o.all_ok());
    EXPECT_EQ(0, std::memcmp(buf, mem.data() + 4, 16));
    auto v = co_await read_value<uint32_t>(s, 8);
    CO_ASSERT_OK(v);
    uint32_t want;
    std::memcpy(&want, mem.data() + 8, 4);
    EXPECT_EQ(*v, want);
    auto past = co_await read_value<uint64_t>(s, 60);
    EXPECT_TRUE(test::fails_with(past, errc::unmapped));
    auto into = co_await read_into(s, 100, buf);
    EXPECT_TRUE(test::fails_with(into, errc::unmapped));
  }());
}

}  // namespace
