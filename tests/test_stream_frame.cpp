// Length-prefixed frames: both widths and byte orders, the maximum size and
// one past it, frames larger than the reader's buffer, ends mid-frame.
#include <string>
#include <vector>

#include "test_stream_util.hpp"

namespace coil {
namespace {

using test::text_of;

constexpr frame_prefix all_prefixes[] = {frame_prefix::u16_be, frame_prefix::u16_le, frame_prefix::u32_be,
                                         frame_prefix::u32_le};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + 3);
  return s;
}

task<void> round_trip(net::unix_stream& a, net::unix_stream& b, frame_format f) {
  buffered_writer w(a, 512);
  test::one_byte_reader<net::unix_stream> one{&b};
  buffered_reader r(one, f.max_size + 4);
  const std::vector<size_t> sizes = {0, 1, 0x0102, f.max_size};
  auto write_all_frames = [](buffered_writer<net::unix_stream>& w, frame_format f,
                             std::vector<size_t> sizes) -> task<void> {
    for (size_t n : sizes) {
      auto r = co_await write_frame(w, f, pattern(n));
      CO_ASSERT_OK(r);
      EXPECT_EQ(r.bytes_done(), n + f.prefix_size());
    }
    auto s = co_await w.shutdown_write();
    CO_ASSERT_OK(s);
  };
  auto read_all_frames = [](buffered_reader<test::one_byte_reader<net::unix_stream>>& r, frame_format f,
                            std::vector<size_t> sizes) -> task<void> {
    for (size_t n : sizes) {
      auto p = co_await read_frame(r, f);
      CO_ASSERT_OK(p);
      EXPECT_EQ(std::string(text_of(*p)), pattern(n));
    }
    auto end = co_await read_frame(r, f);
    EXPECT_TRUE(test::fails_with(end, errc::end_of_stream));
  };
  co_await when_all(write_all_frames(w, f, sizes), read_all_frames(r, f, sizes));
}

TEST(StreamFrame, RoundTripBothWidthsAndByteOrdersAtTheMaximum) {
  for (frame_prefix p : all_prefixes) {
    auto [a, b] = test::stream_pair();
    test::run(round_trip(a, b, frame_format{p, 1000}));
  }
}

task<void> wire_bytes(net::unix_stream& a, net::unix_stream& b, frame_prefix p, std::string want) {
  buffered_writer w(a, 64);
  auto r = co_await write_frame(w, frame_format{p, 0x1000}, std::string(0x0102, 'p'));
  CO_ASSERT_OK(r);
  auto f = co_await w.flush();
  CO_ASSERT_OK(f);
  std::string head(want.size(), '\0');
  auto got = co_await b.recv_exact(std::as_writable_bytes(std::span(head)));
  CO_ASSERT_OK(got);
  EXPECT_EQ(head, want);
}

TEST(StreamFrame, PrefixBytesOnTheWire) {
  const std::pair<frame_prefix, std::string> cases[] = {
      {frame_prefix::u16_be, std::string("\x01\x02", 2)},
      {frame_prefix::u16_le, std::string("\x02\x01", 2)},
      {frame_prefix::u32_be, std::string("\x00\x00\x01\x02", 4)},
      {frame_prefix::u32_le, std::string("\x02\x01\x00\x00", 4)},
  };
  for (const auto& [p, want] : cases) {
    auto [a, b] = test::stream_pair();
    test::run(wire_bytes(a, b, p, want));
  }
}

task<void> oversized(net::unix_stream& a, net::unix_stream& b) {
  const frame_format f{frame_prefix::u32_be, 100};
  buffered_writer w(a, 64);
  // Writing: one past the maximum fails before anything is written.
  auto over = co_await write_frame(w, f, std::string(101, 'o'));
  EXPECT_TRUE(test::fails_with(over, errc::too_long));
  EXPECT_EQ(over.bytes_done(), 0u);
  EXPECT_TRUE(w.buffered().empty());
  // The u16 width bounds a frame too, whatever max_size says.
  buffered_writer w16(a, 64);
  auto wide = co_await write_frame(w16, frame_format{frame_prefix::u16_le, 1 << 20}, std::string(0x10000, 'w'));
  EXPECT_TRUE(test::fails_with(wide, errc::too_long));
  EXPECT_TRUE(w16.buffered().empty());
  // Reading: a prefix announcing 101 bytes is refused with nothing read
  // into memory (only 4 bytes of the "frame" were sent).
  auto s = co_await a.send_all(std::string("\x00\x00\x00\x65", 4));
  CO_ASSERT_OK(s);
  buffered_reader r(b, 1024);
  auto got = co_await read_frame(r, f);
  EXPECT_TRUE(test::fails_with(got, errc::too_long));
  std::byte out[1000];
  auto into = co_await read_frame_into(r, f, out);
  EXPECT_TRUE(test::fails_with(into, errc::too_long));
  // A huge announced length (4 GiB - 1) is refused the same way.
  buffered_reader r2(b, 1024);
  auto s2 = co_await a.send_all(std::string("\xff\xff\xff\xff", 4));
  CO_ASSERT_OK(s2);
  auto huge = co_await read_frame(r2, frame_format{frame_prefix::u32_be, ~size_t{0}});
  EXPECT_TRUE(test::fails_with(huge, errc::too_long));
}

TEST(StreamFrame, OversizedFrameIsTooLongAndNothingAllocated) {
  auto [a, b] = test::stream_pair();
  test::run(oversized(a, b));
}

task<void> larger_than_buffer(net::unix_stream& a, net::unix_stream& b) {
  const frame_format f{frame_prefix::u16_be, 5000};
  buffered_writer w(a, 64);
  const std::string big = pattern(3000);
  auto reader = [](net::unix_stream& b, frame_format f, std::string big) -> task<void> {
    buffered_reader r(b, 256);
    auto small = co_await read_frame(r, f);  // fits the buffer: a view
    CO_ASSERT_OK(small);
    EXPECT_EQ(std::string(text_of(*small)), "hi");
    auto view = co_await read_frame(r, f);  // 3000 bytes do not fit 256
    EXPECT_TRUE(test::fails_with(view, errc::too_long));
    std::vector<std::byte> out(4000);
    auto into = co_await read_frame_into(r, f, out);
    CO_ASSERT_OK(into);
    EXPECT_EQ(std::string(text_of(*into)), big);
  };
  auto writer = [](buffered_writer<net::unix_stream>& w, frame_format f, std::string big) -> task<void> {
    auto r1 = co_await write_frame(w, f, "hi");
    CO_ASSERT_OK(r1);
    auto r2 = co_await write_frame(w, f, big);
    CO_ASSERT_OK(r2);
    auto fl = co_await w.flush();
    CO_ASSERT_OK(fl);
  };
  co_await when_all(reader(b, f, big), writer(w, f, big));
}

TEST(StreamFrame, FrameLargerThanTheReaderFillsTheCallersBuffer) {
  auto [a, b] = test::stream_pair();
  test::run(larger_than_buffer(a, b));
}

task<void> ends_inside(net::unix_stream& a, net::unix_stream& b, std::string sent, errc want, bool into) {
  auto s = co_await a.send_all(sent);
  CO_ASSERT_OK(s);
  auto sh = co_await a.shutdown_write();
  CO_ASSERT_OK(sh);
  buffered_reader r(b, 64);
  const frame_format f{frame_prefix::u32_le, 32};
  if (into) {
    std::byte out[32];
    auto got = co_await read_frame_into(r, f, out);
    EXPECT_TRUE(test::fails_with(got, want)) << sent.size();
  } else {
    auto got = co_await read_frame(r, f);
    EXPECT_TRUE(test::fails_with(got, want)) << sent.size();
  }
}

TEST(StreamFrame, PeerClosingMidFrameIsUnexpectedEof) {
  const errc eof = errc::unexpected_eof;
  for (bool into : {false, true}) {
    for (const std::string& sent : {std::string("\x0a", 1), std::string("\x0a\x00\x00\x00", 4),
                                    std::string("\x0a\x00\x00\x00" "abcde", 9)}) {
      auto [a, b] = test::stream_pair();
      test::run(ends_inside(a, b, sent, eof, into));
    }
    auto [a, b] = test::stream_pair();
    test::run(ends_inside(a, b, "", errc::end_of_stream, into));
  }
}

}  // namespace
}  // namespace coil
