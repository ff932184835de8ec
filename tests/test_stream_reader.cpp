// buffered_reader over sockets, pipes and files: lines and delimiters split
// across reads, limits, ends of stream, read_exact, peek, cancellation.
#include <chrono>
#include <string>
#include <vector>

#include "test_stream_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using test::text_of;

std::string str(std::span<const std::byte> b) { return std::string(text_of(b)); }

task<void> lines_bytewise(net::unix_stream& reader_end, net::unix_stream& writer_end) {
  test::one_byte_reader<net::unix_stream> one{&reader_end};
  buffered_reader r(one, 64);
  auto feed = test::feed_bytewise(writer_end, "GET / HTTP/1.1\r\nHost: x\n\r\nlast|tail|", true);
  auto read = [](buffered_reader<test::one_byte_reader<net::unix_stream>>& r) -> task<void> {
    auto l1 = co_await r.read_line(100);
    CO_ASSERT_OK(l1);
    EXPECT_EQ(*l1, "GET / HTTP/1.1");
    auto l2 = co_await r.read_line(100);
    CO_ASSERT_OK(l2);
    EXPECT_EQ(*l2, "Host: x");
    auto l3 = co_await r.read_line(100);
    CO_ASSERT_OK(l3);
    EXPECT_EQ(*l3, "");
    auto u1 = co_await r.read_until('|', 100);
    CO_ASSERT_OK(u1);
    EXPECT_EQ(str(*u1), "last|");
    auto u2 = co_await r.read_until(std::byte{'|'}, 100);
    CO_ASSERT_OK(u2);
    EXPECT_EQ(str(*u2), "tail|");
    auto end = co_await r.read_line(100);
    EXPECT_TRUE(test::fails_with(end, errc::end_of_stream));
  };
  co_await when_all(std::move(feed), read(r));
}

TEST(StreamReader, LinesAndDelimitersSplitAcrossOneByteReads) {
  auto [a, b] = test::stream_pair();
  test::run(lines_bytewise(a, b));
}

task<void> line_over_max(net::unix_stream& a, net::unix_stream& b) {
  buffered_reader r(a, 64);
  auto sent = co_await b.send_all(std::string(200, 'x'));
  CO_ASSERT_OK(sent);
  auto l = co_await r.read_line(32);
  EXPECT_TRUE(test::fails_with(l, errc::too_long));
  EXPECT_LE(r.buffered().size(), 64u);
  EXPECT_GE(r.buffered().size(), 32u);  // what was looked at stays for the caller
  EXPECT_EQ(r.capacity(), 64u);
  // A limit above the capacity is the capacity: still no growth.
  auto l2 = co_await r.read_line(1 << 20);
  EXPECT_TRUE(test::fails_with(l2, errc::too_long));
  EXPECT_EQ(r.buffered().size(), 64u);
  // The data is still there to consume in place.
  r.consume(64);
  auto rest = co_await r.peek(10);
  CO_ASSERT_OK(rest);
  EXPECT_EQ(str(rest->first(10)), std::string(10, 'x'));
}

TEST(StreamReader, DelimiterAbsentUntilMaxIsTooLongWithoutGrowth) {
  auto [a, b] = test::stream_pair();
  test::run(line_over_max(a, b));
}

task<void> ends_mid_line(net::unix_stream& a, net::unix_stream& b, std::string text) {
  buffered_reader r(a, 64);
  auto sent = co_await b.send_all(text);
  CO_ASSERT_OK(sent);
  auto s = co_await b.shutdown_write();
  CO_ASSERT_OK(s);
  auto l = co_await r.read_line(64);
  if (text.empty()) {
    EXPECT_TRUE(test::fails_with(l, errc::end_of_stream));
  } else {
    EXPECT_TRUE(test::fails_with(l, errc::unexpected_eof));
  }
}

TEST(StreamReader, PeerClosingMidLineIsUnexpectedEof) {
  auto [a, b] = test::stream_pair();
  test::run(ends_mid_line(a, b, "half a li"));
}

TEST(StreamReader, PeerClosingBetweenLinesIsEndOfStream) {
  auto [a, b] = test::stream_pair();
  test::run(ends_mid_line(a, b, ""));
}

task<void> sends_in_pieces(net::unix_stream& s, std::string data, size_t piece) {
  for (size_t i = 0; i < data.size(); i += piece) {
    auto r = co_await s.send_all(std::string_view(data).substr(i, piece));
    EXPECT_TRUE(r);
    co_await coil::nop();
  }
  auto r = co_await s.shutdown_write();
  EXPECT_TRUE(r);
}

task<void> exact_reads(buffered_reader<net::unix_stream>& r, std::string want) {
  std::string got(want.size(), '\0');
  auto whole = std::as_writable_bytes(std::span(got));
  // A small read (through the buffer), then one larger than the capacity
  // (straight into the caller's memory), then the rest.
  auto a = co_await r.read_exact(whole.first(5));
  CO_ASSERT_OK(a);
  EXPECT_EQ(a.bytes_done(), 5u);
  auto b = co_await r.read_exact(whole.subspan(5, 3000));
  CO_ASSERT_OK(b);
  auto c = co_await r.read_exact(whole.subspan(3005));
  CO_ASSERT_OK(c);
  EXPECT_EQ(got, want);
  std::byte more[4];
  auto d = co_await r.read_exact(more);
  EXPECT_TRUE(test::fails_with(d, errc::end_of_stream));
}

TEST(StreamReader, ReadExactAcrossManySmallSends) {
  auto [a, b] = test::stream_pair();
  std::string data;
  for (int i = 0; data.size() < 7000; ++i) data += std::to_string(i) + ",";
  buffered_reader r(a, 256);
  test::run(when_all(sends_in_pieces(b, data, 7), exact_reads(r, data)));
}

task<void> exact_then_eof(net::unix_stream& a, net::unix_stream& b) {
  buffered_reader r(a, 16);
  auto s = co_await b.send_all("abcdef");
  CO_ASSERT_OK(s);
  auto sh = co_await b.shutdown_write();
  CO_ASSERT_OK(sh);
  std::byte buf[10];
  auto e = co_await r.read_exact(buf);
  EXPECT_TRUE(test::fails_with(e, errc::unexpected_eof));
  EXPECT_EQ(e.bytes_done(), 6u);
  EXPECT_EQ(str(std::span(buf).first(6)), "abcdef");
}

TEST(StreamReader, ReadExactShortIsUnexpectedEofWithTheCount) {
  auto [a, b] = test::stream_pair();
  test::run(exact_then_eof(a, b));
}

task<void> peeks(net::unix_stream& a, net::unix_stream& b) {
  test::one_byte_reader<net::unix_stream> one{&a};
  buffered_reader r(one, 32);
  auto s = co_await b.send_all("0123456789");
  CO_ASSERT_OK(s);
  auto p = co_await r.peek(4);  // one byte per read: four reads
  CO_ASSERT_OK(p);
  EXPECT_EQ(p->size(), 4u);
  EXPECT_EQ(str(*p), "0123");
  r.consume(2);
  EXPECT_EQ(str(r.buffered()), "23");
  auto p2 = co_await r.peek(8);
  CO_ASSERT_OK(p2);
  EXPECT_EQ(str(*p2), "23456789");
  auto big = co_await r.peek(33);
  EXPECT_TRUE(test::fails_with(big, errc::too_long));
  auto sh = co_await b.shutdown_write();
  CO_ASSERT_OK(sh);
  auto past = co_await r.peek(9);
  EXPECT_TRUE(test::fails_with(past, errc::unexpected_eof));
  EXPECT_EQ(str(r.buffered()), "23456789");  // still there
  r.consume(8);
  auto none = co_await r.peek(1);
  EXPECT_TRUE(test::fails_with(none, errc::end_of_stream));
  auto f = co_await r.fill();
  CO_ASSERT_OK(f);
  EXPECT_EQ(*f, 0u);
}

TEST(StreamReader, PeekConsumeAndFill) {
  auto [a, b] = test::stream_pair();
  test::run(peeks(a, b));
}

task<void> parse_in_place(net::unix_stream& a, net::unix_stream& b) {
  buffered_reader r(a, 8);
  auto s = co_await b.send_all("12345678");
  CO_ASSERT_OK(s);
  auto f = co_await r.fill();
  CO_ASSERT_OK(f);
  EXPECT_EQ(r.buffered().size(), *f);
  while (r.buffered().size() < 8) {
    auto more = co_await r.fill();
    CO_ASSERT_OK(more);
  }
  auto full = co_await r.fill();  // no room left
  EXPECT_TRUE(test::fails_with(full, errc::too_long));
  r.consume(6);
  auto s2 = co_await b.send_all("9abcdef");
  CO_ASSERT_OK(s2);
  auto p = co_await r.peek(8);  // the 2 left move to the front
  CO_ASSERT_OK(p);
  EXPECT_EQ(str(p->first(8)), "789abcde");
}

TEST(StreamReader, FillCompactsAndNeverGrows) {
  auto [a, b] = test::stream_pair();
  test::run(parse_in_place(a, b));
}

task<void> read_some_forms(net::unix_stream& a, net::unix_stream& b) {
  buffered_reader r(a, 16);
  static_assert(byte_reader<buffered_reader<net::unix_stream>>);
  auto s = co_await b.send_all("line\nrest");
  CO_ASSERT_OK(s);
  auto sh = co_await b.shutdown_write();
  CO_ASSERT_OK(sh);
  auto l = co_await r.read_line(16);
  CO_ASSERT_OK(l);
  EXPECT_EQ(*l, "line");
  std::byte buf[2];
  auto n = co_await r.read_some(buf);
  CO_ASSERT_OK(n);
  EXPECT_EQ(*n, 2u);
  // The reader stacks: a buffered reader over a buffered reader.
  buffered_reader outer(r, 4);
  std::string rest;
  for (;;) {
    std::byte one[3];
    auto k = co_await outer.read_some(one);
    CO_ASSERT_OK(k);
    if (*k == 0) break;
    rest += str(std::span(one).first(*k));
  }
  EXPECT_EQ(rest, "st");
}

TEST(StreamReader, ReadSomeAndStacking) {
  auto [a, b] = test::stream_pair();
  test::run(read_some_forms(a, b));
}

task<void> pipe_lines(file& rd, file& wr) {
  buffered_writer w(wr, 64);
  for (int i = 0; i < 100; ++i) {
    auto r = co_await w.write("line " + std::to_string(i) + "\n");
    CO_ASSERT_OK(r);
  }
  auto f = co_await w.flush();
  CO_ASSERT_OK(f);
  auto c = co_await wr.close();
  CO_ASSERT_OK(c);
  buffered_reader r(rd, 4096);
  for (int i = 0; i < 100; ++i) {
    auto l = co_await r.read_line(64);
    CO_ASSERT_OK(l);
    EXPECT_EQ(*l, "line " + std::to_string(i));
  }
  auto end = co_await r.read_line(64);
  EXPECT_TRUE(test::fails_with(end, errc::end_of_stream));
}

TEST(StreamReader, PipeAsStream) {
  auto [rd, wr] = test::file_pipe();
  test::run(pipe_lines(rd, wr));
}

task<void> cursor_round_trip(std::string path) {
  auto f = co_await file::create(path.c_str());
  CO_ASSERT_OK(f);
  static_assert(vectored_writer<file_cursor> && byte_reader<file_cursor>);
  file_cursor wc(*f, 100);
  buffered_writer w(wc, 16);
  std::string want;
  for (int i = 0; i < 50; ++i) {
    std::string rec = "record " + std::to_string(i) + "\n";
    want += rec;
    auto r = co_await w.write(rec);
    CO_ASSERT_OK(r);
  }
  auto fl = co_await w.flush();
  CO_ASSERT_OK(fl);
  EXPECT_EQ(wc.offset(), 100 + want.size());
  auto size = co_await f->size();
  CO_ASSERT_OK(size);
  EXPECT_EQ(*size, 100 + want.size());
  file_cursor rc(*f, 100);
  buffered_reader r(rc, 32);
  std::string got;
  for (;;) {
    auto l = co_await r.read_line(32);
    if (!l) {
      EXPECT_TRUE(test::fails_with(l, errc::end_of_stream));
      break;
    }
    got += std::string(*l) + "\n";
  }
  EXPECT_EQ(got, want);
}

TEST(StreamReader, FileCursorAsStream) {
  test::temp_dir dir;
  test::run(cursor_round_trip(dir.file("records")));
}

task<void> cancelled_read(net::unix_stream& a, net::unix_stream& b) {
  buffered_reader r(a, 64);
  // Nothing arrives: the timeout cancels the read in flight.
  auto t = co_await with_timeout(r.read_line(64), 20ms);
  EXPECT_TRUE(test::fails_with(t, std::errc::timed_out));
  EXPECT_TRUE(r.buffered().empty());
  // The reader is still usable afterwards.
  auto s = co_await b.send_all("after\n");
  CO_ASSERT_OK(s);
  auto l = co_await r.read_line(64);
  CO_ASSERT_OK(l);
  EXPECT_EQ(*l, "after");
}

TEST(StreamReader, TimeoutCancelsReadInFlight) {
  auto [a, b] = test::stream_pair();
  test::run(cancelled_read(a, b));
}

task<void> reader_task(buffered_reader<net::unix_stream>& r, bool& finished) {
  auto l = co_await r.read_line(64);
  (void)l;
  finished = true;
}

// The reader's task is destroyed with the runtime while its read is in
// flight (three frames deep: the task, read_line, fill): the read is
// cancelled and waited for before any frame goes, then the reader's buffer
// is freed (ASan checks that the kernel never writes into it afterwards).
TEST(StreamReader, DestroyingReaderTaskMidReadIsSafe) {
  auto [a, b] = test::stream_pair();
  bool finished = false;
  {
    buffered_reader r(a, 64);
    {
      auto rt = runtime::create();
      ASSERT_TRUE(rt);
      (*rt)->spawn(reader_task(r, finished)).detach();
      (*rt)->block_on([]() -> task<void> { co_await yield(); }());
      EXPECT_EQ(a.pending(), 1u);
    }
    EXPECT_EQ(a.pending(), 0u);
  }
  EXPECT_FALSE(finished);
  ASSERT_EQ(::send(b.fd(), "late\n", 5, MSG_NOSIGNAL), 5);
}

}  // namespace
}  // namespace coil
