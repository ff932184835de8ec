// copy and copy_bidirectional: 64 MiB over TCP checked with SHA-256 (through
// a buffer and with splice), half-close in both directions, pipes.
#include <nettle/sha2.h>
#include <signal.h>

#include <array>
#include <string>
#include <vector>

#include "test_stream_util.hpp"

namespace coil {
namespace {

using digest = std::array<uint8_t, SHA256_DIGEST_SIZE>;

// Deterministic bytes: chunk i of the stream is a function of i.
void fill_chunk(std::vector<std::byte>& buf, uint64_t i) {
  uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;
  for (auto& b : buf) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x);
  }
}

task<digest> send_hashed(net::tcp_stream& s, size_t total) {
  sha256_ctx h;
  sha256_init(&h);
  std::vector<std::byte> buf(256 * 1024);
  for (uint64_t i = 0, done = 0; done < total; ++i) {
    fill_chunk(buf, i);
    const size_t n = std::min(buf.size(), total - done);
    sha256_update(&h, n, reinterpret_cast<const uint8_t*>(buf.data()));
    auto r = co_await s.send_all(std::span(buf).first(n));
    EXPECT_TRUE(r) << r.error().message();
    if (!r) break;
    done += n;
  }
  auto sh = co_await s.shutdown_write();
  EXPECT_TRUE(sh);
  digest d;
  sha256_digest(&h, d.size(), d.data());
  co_return d;
}

task<std::pair<digest, size_t>> recv_hashed(net::tcp_stream& s) {
  sha256_ctx h;
  sha256_init(&h);
  std::vector<std::byte> buf(128 * 1024);
  size_t total = 0;
  for (;;) {
    auto n = co_await s.recv(buf);
    EXPECT_TRUE(n) << n.error().message();
    if (!n || *n == 0) break;
    sha256_update(&h, *n, reinterpret_cast<const uint8_t*>(buf.data()));
    total += *n;
  }
  digest d;
  sha256_digest(&h, d.size(), d.data());
  co_return std::pair{d, total};
}

// client -> (proxy_in) copy (proxy_out) -> sink
task<void> copy_64mib(net::tcp_listener& l, net::socket_address addr, copy_options o) {
  constexpr size_t total = 64u << 20;
  auto client = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(client);
  auto proxy_in = co_await l.accept();
  CO_ASSERT_OK(proxy_in);
  auto proxy_out = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(proxy_out);
  auto sink = co_await l.accept();
  CO_ASSERT_OK(sink);
  auto copier = [](net::tcp_stream& from, net::tcp_stream& to, copy_options o) -> task<transfer_result> {
    transfer_result r = co_await copy(from, to, o);
    auto sh = co_await to.shutdown_write();
    EXPECT_TRUE(sh);
    co_return r;
  };
  auto [sent, got, copied] =
      co_await when_all(send_hashed(*client, total), recv_hashed(*sink), copier(*proxy_in, *proxy_out, o));
  EXPECT_TRUE(copied) << copied.error().message();
  EXPECT_EQ(copied.bytes_done(), total);
  EXPECT_EQ(got.second, total);
  EXPECT_EQ(sent, got.first) << "bytes differ";
}

TEST(StreamCopy, Copy64MiBOverTcpByteForByte) {
  auto lb = test::listen_loopback();
  test::run(copy_64mib(lb.listener, lb.addr, copy_options{}));
}

TEST(StreamCopy, Copy64MiBOverTcpWithSplice) {
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ign, &old), 0);
  auto lb = test::listen_loopback();
  test::run(copy_64mib(lb.listener, lb.addr, copy_options{.buffer_size = 64 * 1024, .splice = true}));
  ::sigaction(SIGPIPE, &old, nullptr);
}

// a_peer <-> a ==copy_bidirectional== b <-> b_peer. first_ends says which
// peer finishes sending first; the other keeps talking after that.
task<void> half_close(bool a_side_first) {
  auto [a_peer, a] = test::stream_pair();
  auto [b, b_peer] = test::stream_pair();
  auto talk = [](net::unix_stream& first, net::unix_stream& second) -> task<void> {
    // first says its piece and ends its stream; second still gets it, sees
    // the end, and answers over the half-open connection.
    auto s = co_await first.send_all("request");
    CO_ASSERT_OK(s);
    auto sh = co_await first.shutdown_write();
    CO_ASSERT_OK(sh);
    std::string heard = co_await test::drain(second);
    EXPECT_EQ(heard, "request");
    auto r = co_await second.send_all("a long answer after the end");
    CO_ASSERT_OK(r);
    auto sh2 = co_await second.shutdown_write();
    CO_ASSERT_OK(sh2);
    std::string answer = co_await test::drain(first);
    EXPECT_EQ(answer, "a long answer after the end");
  };
  auto proxy = [](net::unix_stream& a, net::unix_stream& b) -> task<bidirectional_result> {
    co_return co_await copy_bidirectional(a, b, copy_options{.buffer_size = 4});
  };
  auto [r, done] = a_side_first ? co_await when_all(proxy(a, b), talk(a_peer, b_peer))
                                : co_await when_all(proxy(a, b), talk(b_peer, a_peer));
  (void)done;
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_EQ((a_side_first ? r.a_to_b : r.b_to_a).bytes_done(), 7u);
  EXPECT_EQ((a_side_first ? r.b_to_a : r.a_to_b).bytes_done(), 27u);
}

TEST(StreamCopy, BidirectionalHalfCloseFromA) { test::run(half_close(true)); }
TEST(StreamCopy, BidirectionalHalfCloseFromB) { test::run(half_close(false)); }

task<void> pipe_to_socket(file& rd, file& wr, net::unix_stream& a, net::unix_stream& b) {
  static_assert(byte_reader<file> && vectored_writer<file>);
  auto producer = [](file& wr) -> task<void> {
    for (int i = 0; i < 1000; ++i) {
      auto r = co_await wr.write_all_at("chunk " + std::to_string(i) + "\n", ops::current_position);
      CO_ASSERT_OK(r);
    }
    auto c = co_await wr.close();
    CO_ASSERT_OK(c);
  };
  auto mover = [](file& rd, net::unix_stream& a) -> task<void> {
    auto r = co_await copy(rd, a, copy_options{.buffer_size = 100});
    CO_ASSERT_OK(r);
    auto sh = co_await a.shutdown_write();
    CO_ASSERT_OK(sh);
  };
  auto [x, got, y] = co_await when_all(producer(wr), test::drain(b), mover(rd, a));
  std::string want;
  for (int i = 0; i < 1000; ++i) want += "chunk " + std::to_string(i) + "\n";
  EXPECT_EQ(got, want);
}

TEST(StreamCopy, PipeToSocket) {
  auto [rd, wr] = test::file_pipe();
  auto [a, b] = test::stream_pair();
  test::run(pipe_to_socket(rd, wr, a, b));
}

task<void> copy_read_error(net::tcp_listener& l, net::socket_address addr) {
  // The source resets: copy stops with ECONNRESET and reports what it moved.
  auto src_peer = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(src_peer);
  auto src = co_await l.accept();
  CO_ASSERT_OK(src);
  auto [dst, dst_peer] = test::stream_pair();
  auto s = co_await src_peer->send_all("12345");
  CO_ASSERT_OK(s);
  auto lin = src_peer->set_linger_reset();
  (void)lin;
  auto c = co_await src_peer->close();
  (void)c;
  auto r = co_await copy(*src, dst);
  EXPECT_TRUE(test::fails_with(r, std::errc::connection_reset));
  EXPECT_LE(r.bytes_done(), 5u);
}

TEST(StreamCopy, SourceResetIsAnErrorValue) {
  auto lb = test::listen_loopback();
  test::run(copy_read_error(lb.listener, lb.addr));
}

// One side resets while the other side's peer stays silent: the error ends
// both directions (the idle one is cancelled) and comes back with the bytes.
task<void> reset_while_other_idle(net::tcp_listener& l, net::socket_address addr) {
  auto a_peer = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(a_peer);
  auto a = co_await l.accept();
  CO_ASSERT_OK(a);
  auto [b, b_peer] = test::stream_pair();
  auto s = co_await a_peer->send_all("12345");
  CO_ASSERT_OK(s);
  auto lin = a_peer->set_linger_reset();
  (void)lin;
  auto c = co_await a_peer->close();
  (void)c;
  bidirectional_result r = co_await copy_bidirectional(*a, b);
  EXPECT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::connection_reset) << r.error().message();
  EXPECT_TRUE(test::fails_with(r.a_to_b, std::errc::connection_reset));
  EXPECT_TRUE(test::fails_with(r.b_to_a, std::errc::operation_canceled));
  EXPECT_LE(r.a_to_b.bytes_done(), 5u);
  EXPECT_EQ(r.b_to_a.bytes_done(), 0u);
  // b's peer got what was copied before the reset, then the end of stream.
  std::string got = co_await test::drain(b_peer);
  EXPECT_EQ(got, std::string("12345").substr(0, r.a_to_b.bytes_done()));
}

TEST(StreamCopy, BidirectionalErrorCancelsTheIdleDirection) {
  auto lb = test::listen_loopback();
  test::run(reset_while_other_idle(lb.listener, lb.addr));
}

// A copy waiting for bytes that never come is cancelled by a timeout, with
// splice too (io_uring runs it on an io-wq worker, blocked in the socket
// until the cancel interrupts it); the streams stay usable.
task<void> cancel_waiting_copy(bool splice) {
  auto [a_peer, a] = test::stream_pair();
  auto [b, b_peer] = test::stream_pair();
  auto r = co_await with_timeout(copy(a, b, copy_options{.buffer_size = 4096, .splice = splice}),
                                 std::chrono::milliseconds(20));
  EXPECT_TRUE(test::fails_with(r, std::errc::timed_out));
  EXPECT_EQ(a.pending(), 0u);
  auto s = co_await a_peer.send_all("still here");
  CO_ASSERT_OK(s);
  std::byte buf[10];
  auto got = co_await a.recv_exact(buf);
  CO_ASSERT_OK(got);
  EXPECT_EQ(std::string(test::text_of(buf)), "still here");
}

TEST(StreamCopy, TimeoutCancelsAWaitingCopy) {
  test::run(cancel_waiting_copy(false));
  test::run(cancel_waiting_copy(true));
}

}  // namespace
}  // namespace coil
