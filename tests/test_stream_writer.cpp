// buffered_writer: gathering small writes into one send, large writes in one
// gathered send with the buffered bytes, flush errors as values; string
// forms of send, send_all and write_all_at.
#include <signal.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "test_stream_util.hpp"

namespace coil {
namespace {

// Sends (send + sendmsg) this runtime's driver has been given so far.
uint64_t sends_so_far() {
  const auto& io = runtime::current()->driver().stats();
  return io.of(IORING_OP_SEND).pushed + io.of(IORING_OP_SENDMSG).pushed + io.eager;
}

// Bytes queued at s, read without waiting (all of it arrives in one recv
// when it went out in one send).
std::string take_queued(int fd) {
  std::string out(1 << 20, '\0');
  const ssize_t n = ::recv(fd, out.data(), out.size(), MSG_DONTWAIT);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

task<void> gathers(net::unix_stream& a, net::unix_stream& b) {
  buffered_writer w(a, 4096);
  const uint64_t before = sends_so_far();
  std::string want;
  for (int i = 0; i < 100; ++i) {
    // Appended, not `"w" + ...`: g++ 12 -O3 warns falsely (-Wrestrict) on that form.
    std::string piece = "w";
    piece += std::to_string(i);
    piece += ';';
    want += piece;
    auto r = co_await w.write(piece);
    CO_ASSERT_OK(r);
    EXPECT_EQ(r.bytes_done(), piece.size());
  }
  EXPECT_EQ(sends_so_far(), before);  // nothing sent yet
  EXPECT_EQ(take_queued(b.fd()), "");
  EXPECT_EQ(w.buffered().size(), want.size());
  auto f = co_await w.flush();
  CO_ASSERT_OK(f);
  EXPECT_EQ(f.bytes_done(), want.size());
  EXPECT_EQ(sends_so_far(), before + 1);
  EXPECT_EQ(take_queued(b.fd()), want);  // one contiguous read
  auto again = co_await w.flush();       // nothing buffered: no send
  CO_ASSERT_OK(again);
  EXPECT_EQ(sends_so_far(), before + 1);
}

TEST(StreamWriter, GathersSmallWritesIntoOneSend) {
  auto [a, b] = test::stream_pair();
  test::run(gathers(a, b));
}

task<void> large_write(net::unix_stream& a, net::unix_stream& b) {
  buffered_writer w(a, 1024);
  auto h = co_await w.write("header:");
  CO_ASSERT_OK(h);
  std::string big(100000, 'b');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  const uint64_t before = sends_so_far();
  auto reader = test::drain(b);
  auto write_then_close = [](buffered_writer<net::unix_stream>& w, const std::string& big,
                             uint64_t before) -> task<void> {
    auto r = co_await w.write(big);
    CO_ASSERT_OK(r);
    EXPECT_EQ(r.bytes_done(), big.size());
    EXPECT_TRUE(w.buffered().empty());
    // One gathered send when the socket takes it all; more only if it is short.
    EXPECT_GE(sends_so_far(), before + 1);
    auto t = co_await w.write(":trailer");
    CO_ASSERT_OK(t);
    auto s = co_await w.shutdown_write();
    CO_ASSERT_OK(s);
  };
  auto [got, done] = co_await when_all(std::move(reader), write_then_close(w, big, before));
  (void)done;
  EXPECT_EQ(got, "header:" + big + ":trailer");
}

TEST(StreamWriter, LargeWriteGoesOutWithBufferedBytesInOrder) {
  auto [a, b] = test::stream_pair();
  test::run(large_write(a, b));
}

task<void> one_gathered_send(net::unix_stream& a, net::unix_stream& b) {
  buffered_writer w(a, 64);
  auto h = co_await w.write("0123456789");
  CO_ASSERT_OK(h);
  const uint64_t before = sends_so_far();
  auto r = co_await w.write(std::string(100, 'z'));  // does not fit: buffered + new in one sendmsg
  CO_ASSERT_OK(r);
  EXPECT_EQ(sends_so_far(), before + 1);
  EXPECT_EQ(take_queued(b.fd()), "0123456789" + std::string(100, 'z'));
}

TEST(StreamWriter, WriteThatDoesNotFitIsOneGatheredSend) {
  auto [a, b] = test::stream_pair();
  test::run(one_gathered_send(a, b));
}

task<void> flush_to_closed_peer(net::tcp_stream& s) {
  buffered_writer w(s, 1 << 16);
  std::error_code err;
  // The peer is gone: the first send may still be accepted (the RST comes
  // back after it), a later one fails with EPIPE or ECONNRESET, as a value.
  for (int i = 0; i < 100 && !err; ++i) {
    auto r = co_await w.write(std::string(1000, 'x'));
    if (!r) {
      err = r.error();
      break;
    }
    auto f = co_await w.flush();
    if (!f) err = f.error();
    co_await sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(err == std::errc::broken_pipe || err == std::errc::connection_reset) << err.message();
  // Unsent bytes stay buffered after the error.
  EXPECT_FALSE(w.buffered().empty());
}

task<void> closed_peer(net::tcp_listener& l, net::socket_address addr) {
  auto c = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(c);
  {
    auto peer = co_await l.accept();
    CO_ASSERT_OK(peer);
    (void)peer->set_linger_reset();
  }  // closed: the client's sends get a reset
  co_await flush_to_closed_peer(*c);
}

TEST(StreamWriter, FlushToClosedPeerIsAnErrorValue) {
  auto lb = test::listen_loopback();
  test::run(closed_peer(lb.listener, lb.addr));
}

task<void> string_forms(net::unix_stream& a, net::unix_stream& b, std::string path) {
  const std::string s = "string;";
  const std::string_view sv = "view;";
  const std::vector<char> v = {'v', 'e', 'c', ';'};
  auto r1 = co_await a.send("literal;");
  CO_ASSERT_OK(r1);
  EXPECT_EQ(*r1, 8u);  // no NUL byte
  auto r2 = co_await a.send(s);
  CO_ASSERT_OK(r2);
  auto r3 = co_await a.send_all(sv);
  CO_ASSERT_OK(r3);
  auto r4 = co_await a.send_all(std::span<const char>(v));
  CO_ASSERT_OK(r4);
  auto r5 = co_await a.send_all(v);
  CO_ASSERT_OK(r5);
  EXPECT_EQ(take_queued(b.fd()), "literal;string;view;vec;vec;");
  auto f = co_await file::create(path.c_str());
  CO_ASSERT_OK(f);
  auto w = co_await f->write_all_at("file text", 0);
  CO_ASSERT_OK(w);
  auto w2 = co_await f->write_all_at(s, 9);
  CO_ASSERT_OK(w2);
  std::string back(16, '\0');
  auto rb = co_await f->read_exact_at(std::as_writable_bytes(std::span(back)), 0);
  CO_ASSERT_OK(rb);
  EXPECT_EQ(back, "file textstring;");
}

TEST(StreamWriter, SendAndWriteTakeStrings) {
  auto [a, b] = test::stream_pair();
  test::temp_dir dir;
  test::run(string_forms(a, b, dir.file("text")));
}

}  // namespace
}  // namespace coil
