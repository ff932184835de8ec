// TCP on 127.0.0.1: connect/accept, stream operations, options, integrity of
// a large transfer, peer resets, timeouts.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nettle/sha2.h>
#include <signal.h>

#include <array>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "test_net_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using net::socket_address;
using net::tcp_listener;
using net::tcp_stream;
using test::bytes_of;
using test::text_of;

TEST(NetTcp, ConnectAcceptEchoAndAddresses) {
  auto lb = test::listen_loopback();
  auto& listener = lb.listener;
  auto& addr = lb.addr;
  EXPECT_NE(addr.port(), 0);
  test::run([&]() -> task<void> {
    auto server = [&]() -> task<result<std::string>> {
      socket_address peer;
      auto s = co_await listener.accept(peer);
      if (!s) co_return fail(s.error());
      EXPECT_TRUE(peer.is_ipv4());
      auto pa = s->peer_address();
      EXPECT_TRUE(pa && *pa == peer);
      std::array<std::byte, 64> buf{};
      auto n = co_await s->recv(buf);
      if (!n) co_return fail(n.error());
      auto w = co_await s->send_all(std::span(buf).first(*n));
      if (!w) co_return fail(w.error());
      co_return std::string(text_of(std::span(buf).first(*n)));
    };
    auto client = [&]() -> task<result<std::string>> {
      auto s = co_await tcp_stream::connect(addr);
      if (!s) co_return fail(s.error());
      auto pa = s->peer_address();
      EXPECT_TRUE(pa && *pa == addr);
      auto la = s->local_address();
      EXPECT_TRUE(la && la->is_ipv4() && la->port() != 0);
      auto w = co_await s->send_all(bytes_of("hello coil"));
      if (!w) co_return fail(w.error());
      std::array<std::byte, 10> back{};
      auto r = co_await s->recv_exact(back);
      if (!r) co_return fail(r.error());
      co_return std::string(text_of(back));
    };
    auto [srv, cli] = co_await when_all(server(), client());
    EXPECT_TRUE(srv && *srv == "hello coil") << (srv ? *srv : srv.error().message());
    EXPECT_TRUE(cli && *cli == "hello coil") << (cli ? *cli : cli.error().message());
  }());
}

TEST(NetTcp, Ipv6Loopback) {
  auto l = tcp_listener::bind(socket_address::ipv6_loopback(0));
  if (!l && (l.error() == std::errc::address_not_available || l.error() == std::errc::address_family_not_supported))
    GTEST_SKIP() << "no IPv6 loopback here";
  ASSERT_TRUE(l) << l.error().message();
  auto addr = l->local_address();
  ASSERT_TRUE(addr && addr->is_ipv6());
  test::run([&]() -> task<void> {
    auto server = [&]() -> task<result<void>> {
      auto s = co_await l->accept();
      if (!s) co_return fail(s.error());
      co_return co_await s->send_all(bytes_of("v6"));
    };
    auto client = [&]() -> task<result<std::string>> {
      auto s = co_await tcp_stream::connect(*addr);
      if (!s) co_return fail(s.error());
      std::array<std::byte, 2> b{};
      auto r = co_await s->recv_exact(b);
      if (!r) co_return fail(r.error());
      co_return std::string(text_of(b));
    };
    auto [srv, cli] = co_await when_all(server(), client());
    EXPECT_TRUE(srv);
    EXPECT_TRUE(cli && *cli == "v6");
  }());
}

TEST(NetTcp, EndOfStreamAndShutdown) {
  auto lb = test::listen_loopback();
  auto& listener = lb.listener;
  auto& addr = lb.addr;
  test::run([&]() -> task<void> {
    auto server = [&]() -> task<void> {
      auto s = co_await listener.accept();
      CO_ASSERT_OK(s);
      std::array<std::byte, 8> buf{};
      auto r = co_await s->recv_exact(std::span(buf).first(3));
      CO_ASSERT_OK(r);
      auto n = co_await s->recv(buf);  // the client shut down its side: end of stream
      CO_ASSERT_OK(n);
      EXPECT_EQ(*n, 0u);
      auto w = co_await s->send_all(bytes_of("bye"));  // our direction still works
      CO_ASSERT_OK(w);
      auto c = co_await s->close();
      EXPECT_TRUE(c);
      EXPECT_FALSE(s->is_open());
    };
    auto client = [&]() -> task<void> {
      auto s = co_await tcp_stream::connect(addr);
      CO_ASSERT_OK(s);
      auto w = co_await s->send_all(bytes_of("abc"));
      CO_ASSERT_OK(w);
      auto sd = co_await s->shutdown(net::shutdown_how::write);
      CO_ASSERT_OK(sd);
      std::array<std::byte, 3> back{};
      auto r = co_await s->recv_exact(back);
      CO_ASSERT_OK(r);
      EXPECT_EQ(text_of(back), "bye");
      // More than is left: unexpected_eof, with what did arrive in place.
      std::array<std::byte, 4> more{};
      auto e = co_await s->recv_exact(more);
      EXPECT_TRUE(test::fails_with(e, errc::unexpected_eof));
    };
    co_await when_all(server(), client());
  }());
}

TEST(NetTcp, VectoredSendAndRecv) {
  auto lb = test::listen_loopback();
  auto& listener = lb.listener;
  auto& addr = lb.addr;
  test::run([&]() -> task<void> {
    auto server = [&]() -> task<void> {
      auto s = co_await listener.accept();
      CO_ASSERT_OK(s);
      char a[3], b[1], c[7];
      const iovec iov[] = {{a, sizeof(a)}, {b, 0}, {b, sizeof(b)}, {c, sizeof(c)}};
      auto r = co_await s->recvv_exact(iov);
      CO_ASSERT_OK(r);
      EXPECT_EQ(std::string(a, 3) + std::string(b, 1) + std::string(c, 7), "vectored io");
      char one[16];
      const iovec single[] = {{one, sizeof(one)}};
      auto n = co_await s->recvv(single);  // a plain vectored recv after the end of data
      CO_ASSERT_OK(n);
      EXPECT_EQ(*n, 0u);
    };
    auto client = [&]() -> task<void> {
      auto s = co_await tcp_stream::connect(addr);
      CO_ASSERT_OK(s);
      char p1[] = "vec", p2[] = "tored", p3[] = " io";
      const iovec iov[] = {{p1, 3}, {p2, 5}, {p3, 3}};
      auto n = co_await s->sendv(std::span(iov).first(1));
      CO_ASSERT_OK(n);
      EXPECT_EQ(*n, 3u);
      auto r = co_await s->sendv_all(std::span(iov).subspan(1));
      CO_ASSERT_OK(r);
      auto c = co_await s->close();
      EXPECT_TRUE(c);
    };
    co_await when_all(server(), client());
  }());
}

TEST(NetTcp, Options) {
  auto lb = test::listen_loopback({.backlog = 8, .reuse_addr = true, .reuse_port = true});
  auto& listener = lb.listener;
  auto& addr = lb.addr;
  auto ra = listener.get_option(SOL_SOCKET, SO_REUSEADDR);
  ASSERT_TRUE(ra);
  EXPECT_NE(*ra, 0);
  auto rp = listener.get_option(SOL_SOCKET, SO_REUSEPORT);
  ASSERT_TRUE(rp);
  EXPECT_NE(*rp, 0);
  // A second listener on the same port, as one per core would.
  auto twin = tcp_listener::bind(addr, {.reuse_port = true});
  EXPECT_TRUE(twin) << twin.error().message();
  // Without SO_REUSEPORT the port is taken.
  auto taken = tcp_listener::bind(addr, {.reuse_port = false});
  EXPECT_TRUE(test::fails_with(taken, std::errc::address_in_use));

  test::run([&]() -> task<void> {
    auto s = co_await tcp_stream::connect(addr);
    CO_ASSERT_OK(s);
    auto nd = s->set_nodelay(true);
    EXPECT_TRUE(nd);
    auto ndv = s->nodelay();
    EXPECT_TRUE(ndv && *ndv);
    auto nd2 = s->set_nodelay(false);
    EXPECT_TRUE(nd2);
    ndv = s->nodelay();
    EXPECT_TRUE(ndv && !*ndv);
    auto ka = s->set_keepalive(true, 30, 5, 3);
    EXPECT_TRUE(ka);
    auto kav = s->keepalive();
    EXPECT_TRUE(kav && *kav);
    auto idle = s->get_option(IPPROTO_TCP, TCP_KEEPIDLE);
    EXPECT_TRUE(idle && *idle == 30);
    auto sb = s->set_send_buffer_size(64 * 1024);
    EXPECT_TRUE(sb);
    auto sbv = s->send_buffer_size();
    EXPECT_TRUE(sbv && *sbv >= 64 * 1024);  // Linux doubles it
    auto rb = s->set_recv_buffer_size(64 * 1024);
    EXPECT_TRUE(rb);
    auto rbv = s->recv_buffer_size();
    EXPECT_TRUE(rbv && *rbv >= 64 * 1024);
    EXPECT_FALSE(s->take_error());
    auto bad = s->set_option(SOL_SOCKET, 0x7fff, 1);
    EXPECT_TRUE(test::fails_with(bad, std::errc::no_protocol_option));
  }());
}

TEST(NetTcp, ListenerIsNonBlockingAndAcceptStillWaits) {
  auto lb = test::listen_loopback();
  auto& listener = lb.listener;
  auto& addr = lb.addr;
  EXPECT_NE(::fcntl(listener.fd(), F_GETFL) & O_NONBLOCK, 0);
  test::run([&]() -> task<void> {
    auto late_client = [&]() -> task<result<tcp_stream>> {
      auto s = co_await sleep_for(20ms);
      if (!s) co_return fail(s.error());
      co_return co_await tcp_stream::connect(addr);
    };
    auto acceptor = [&]() -> task<result<tcp_stream>> { co_return co_await listener.accept(); };
    auto [acc, cli] = co_await when_all(acceptor(), late_client());
    EXPECT_TRUE(acc) << acc.error().message();
    EXPECT_TRUE(cli);
    // Accepted and connected streams are in blocking mode (see socket.hpp).
    EXPECT_TRUE(acc && (::fcntl(acc->fd(), F_GETFL) & O_NONBLOCK) == 0);
    EXPECT_TRUE(cli && (::fcntl(cli->fd(), F_GETFL) & O_NONBLOCK) == 0);
    EXPECT_TRUE(acc && (::fcntl(acc->fd(), F_GETFD) & FD_CLOEXEC) != 0);
  }());
}

TEST(NetTcp, ConnectRefused) {
  // A port that was just free: nobody listens there.
  socket_address addr;
  {
    auto [l, a] = test::listen_loopback();
    addr = a;
  }
  test::run([&]() -> task<void> {
    auto s = co_await tcp_stream::connect(addr);
    EXPECT_TRUE(test::fails_with(s, std::errc::connection_refused));
    auto u = co_await tcp_stream::connect(*socket_address::unix_path("/nonexistent"));
    EXPECT_TRUE(test::fails_with(u, std::errc::address_family_not_supported));
  }());
}

// A listener with a full accept queue drops further SYNs, so a connect to it
// hangs in SYN_SENT: the timeout must end it.
TEST(NetTcp, ConnectTimeout) {
  auto lb = test::listen_loopback({.backlog = 0});
  auto& addr = lb.addr;
  std::vector<unique_fd> fillers;
  for (int i = 0; i < 8; ++i) {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    (void)::connect(fd.get(), addr.native(), addr.size());
    fillers.push_back(std::move(fd));
  }
  test::run([&]() -> task<void> {
    const auto t0 = std::chrono::steady_clock::now();
    auto s = co_await tcp_stream::connect(addr, 150ms);
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(test::fails_with(s, std::errc::timed_out));
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 900ms);  // before the first SYN retransmission would help
  }());
}

// The peer goes away while we send: EPIPE or ECONNRESET as values, never a
// SIGPIPE (the default action would kill this test binary).
TEST(NetTcp, PeerResetMidSendIsAValue) {
  for (bool rst : {true, false}) {
    SCOPED_TRACE(rst ? "peer resets" : "peer closes");
    auto lb = test::listen_loopback();
    auto& listener = lb.listener;
    auto& addr = lb.addr;
    test::run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        auto s = co_await listener.accept();
        CO_ASSERT_OK(s);
        std::array<std::byte, 1000> buf{};
        auto r = co_await s->recv_exact(buf);
        CO_ASSERT_OK(r);
        if (rst) {
          auto l = s->set_linger_reset();
          EXPECT_TRUE(l);
        }
        auto c = co_await s->close();  // unread data pending: the kernel resets anyway
        EXPECT_TRUE(c);
      };
      auto client = [&]() -> task<void> {
        auto s = co_await tcp_stream::connect(addr);
        CO_ASSERT_OK(s);
        std::vector<std::byte> chunk(64 * 1024);
        result<void> w;
        for (int i = 0; i < 10'000 && w; ++i) w = co_await s->send_all(chunk);
        EXPECT_FALSE(w) << "sending to a closed peer kept succeeding";
        if (!w) {
          EXPECT_TRUE(w.error() == std::errc::broken_pipe || w.error() == std::errc::connection_reset)
              << w.error().message();
        }
      };
      co_await when_all(server(), client());
    }());
  }
}

TEST(NetTcp, UnixStreamPairPeerClosedGivesEpipe) {
  test::run([&]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto c = co_await p->second.close();
    EXPECT_TRUE(c);
    auto w = co_await p->first.send(bytes_of("x"));
    EXPECT_TRUE(test::fails_with(w, std::errc::broken_pipe));
    std::array<std::byte, 4> b{};
    auto r = co_await p->first.recv(b);
    EXPECT_TRUE(r && *r == 0);
  }());
}

// ---- integrity: 256 MiB through a connection with a 4 KiB send buffer ----------

struct xorshift {
  uint64_t s;
  void fill(std::span<std::byte> out) {
    for (size_t i = 0; i + 8 <= out.size(); i += 8) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      std::memcpy(out.data() + i, &s, 8);
    }
  }
};

std::string hex(const uint8_t* d, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[d[i] >> 4];
    s += digits[d[i] & 15];
  }
  return s;
}

TEST(NetTcp, Sha256Of256MiBWithTinySendBuffer) {
  constexpr size_t total = size_t{256} << 20;
  constexpr size_t chunk = size_t{1} << 20;
  auto lb = test::listen_loopback();
  auto& listener = lb.listener;
  auto& addr = lb.addr;
  std::string sent_digest, recv_digest;
  size_t received = 0;
  test::run([&]() -> task<void> {
    auto sender = [&]() -> task<void> {
      auto s = co_await tcp_stream::connect(addr);
      CO_ASSERT_OK(s);
      auto sb = s->set_send_buffer_size(4096);
      CO_ASSERT_OK(sb);
      sha256_ctx ctx;
      sha256_init(&ctx);
      std::vector<std::byte> buf(chunk);
      xorshift rng{0x9E3779B97F4A7C15ull};
      for (size_t off = 0; off < total; off += chunk) {
        rng.fill(buf);
        sha256_update(&ctx, buf.size(), reinterpret_cast<const uint8_t*>(buf.data()));
        auto w = co_await s->send_all(buf);
        CO_ASSERT_OK(w);
      }
      uint8_t d[SHA256_DIGEST_SIZE];
      sha256_digest(&ctx, sizeof(d), d);
      sent_digest = hex(d, sizeof(d));
      auto c = co_await s->close();
      EXPECT_TRUE(c);
    };
    auto receiver = [&]() -> task<void> {
      auto s = co_await listener.accept();
      CO_ASSERT_OK(s);
      sha256_ctx ctx;
      sha256_init(&ctx);
      std::vector<std::byte> buf(256 * 1024);
      for (;;) {
        auto n = co_await s->recv(buf);
        CO_ASSERT_OK(n);
        if (*n == 0) break;
        // With a send buffer this small the sender has about one segment in
        // flight; without an immediate ACK each one waits for the delayed-ACK
        // timer (minutes for 256 MiB instead of about a second).
        (void)s->set_option(IPPROTO_TCP, TCP_QUICKACK, 1);
        sha256_update(&ctx, *n, reinterpret_cast<const uint8_t*>(buf.data()));
        received += *n;
      }
      uint8_t d[SHA256_DIGEST_SIZE];
      sha256_digest(&ctx, sizeof(d), d);
      recv_digest = hex(d, sizeof(d));
    };
    co_await when_all(sender(), receiver());
  }());
  EXPECT_EQ(received, total);
  EXPECT_EQ(sent_digest.size(), 64u);
  EXPECT_EQ(recv_digest, sent_digest);
}

}  // namespace
}  // namespace coil
