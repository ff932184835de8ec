// TLS streams (coil/tls): coil against coil, against openssl s_server and
// s_client and curl; certificate failures, truncation, garbage, timeouts,
// cancellation mid-handshake, resumption and many handshakes at once.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "coil/stream.hpp"
#include "coil/tls/stream.hpp"
#include "test_net_util.hpp"
#include "test_tls_util.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
namespace net = coil::net;
namespace tls = coil::tls;
using coil::result;
using coil::task;
using coil::test::bytes_of;
using coil::test::test_pki;

namespace {

tls::context server_ctx(tls::context_options o = {}) {
  const auto& p = test_pki::get();
  if (o.certificate_chain_file.empty()) o.certificate_chain_file = p.cert;
  if (o.private_key_file.empty()) o.private_key_file = p.key;
  auto c = tls::context::server(o);
  EXPECT_TRUE(c) << c.error().message();
  return c ? std::move(*c) : tls::context{};
}

tls::context client_ctx(tls::context_options o = {}) {
  if (o.ca_file.empty()) o.ca_file = test_pki::get().ca;
  auto c = tls::context::client(o);
  EXPECT_TRUE(c) << c.error().message();
  return c ? std::move(*c) : tls::context{};
}

// Serves one TLS connection: echoes what it reads until close_notify, then
// answers with its own. The handshake's outcome lands in *hs.
task<void> echo_one(net::tcp_listener& l, const tls::context& ctx, result<void>* hs) {
  auto c = co_await l.accept();
  if (!c) {
    *hs = coil::fail(c.error());
    co_return;
  }
  auto s = tls::stream<net::tcp_stream>::server(ctx, std::move(*c));
  if (!s) {
    *hs = coil::fail(s.error());
    co_return;
  }
  *hs = co_await s->handshake();
  if (!*hs) co_return;
  std::vector<std::byte> buf(16 << 10);
  for (;;) {
    auto n = co_await s->read_some(buf);
    if (!n || *n == 0) break;
    auto w = co_await s->write_all(std::span(buf).first(*n));
    if (!w) break;
  }
  (void)co_await s->shutdown();
}

// Reads until the stream ends (or `want` bytes); what arrived.
task<result<std::string>> read_n(tls::stream<net::tcp_stream>& s, size_t want) {
  std::string out;
  std::vector<std::byte> buf(4096);
  while (out.size() < want) {
    auto n = co_await s.read_some(buf);
    if (!n) co_return coil::fail(n.error());
    if (*n == 0) break;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  co_return out;
}

task<void> client_round_trip(net::socket_address addr, const tls::context& ctx, std::string name,
                             std::string* version, bool* reused) {
  auto tcp = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(tcp);
  auto s = tls::stream<net::tcp_stream>::client(ctx, std::move(*tcp), {.server_name = name});
  CO_ASSERT_OK(s);
  auto h = co_await s->handshake();
  CO_ASSERT_OK(h);
  *version = std::string(s->protocol_version());
  std::string msg(100'000, 'x');
  for (size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<char>('a' + i % 26);
  auto w = co_await s->write_all(msg);
  CO_ASSERT_OK(w);
  auto back = co_await read_n(*s, msg.size());
  CO_ASSERT_OK(back);
  EXPECT_EQ(*back, msg);
  auto sd = co_await s->shutdown();
  CO_ASSERT_OK(sd);
  // The server answers close_notify with its own: a clean end, read as 0.
  std::vector<std::byte> buf(16);
  auto end = co_await s->read_some(buf);
  CO_ASSERT_OK(end);
  EXPECT_EQ(*end, 0u);
  if (reused != nullptr) *reused = s->session_reused();
}

task<void> coil_pair(const tls::context& sctx, const tls::context& cctx, std::string name, std::string* version,
                     result<void>* hs, bool* reused = nullptr) {
  auto [l, addr] = coil::test::listen_loopback();
  auto srv = coil::runtime::current()->spawn(echo_one(l, sctx, hs));
  co_await client_round_trip(addr, cctx, std::move(name), version, reused);
  co_await std::move(srv);
}

}  // namespace

TEST(Tls, EchoBetweenCoilClientAndServerOnTls13) {
  COIL_REQUIRE_PKI();
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  std::string version;
  result<void> hs = coil::fail(std::errc::io_error);
  coil::test::run(coil_pair(sctx, cctx, "localhost", &version, &hs));
  EXPECT_TRUE(hs) << hs.error().message();
  EXPECT_EQ(version, "TLSv1.3");
}

TEST(Tls, Tls12WhenEitherSideCapsIt) {
  COIL_REQUIRE_PKI();
  auto sctx = server_ctx({.max_version = tls::version::tls1_2});
  auto cctx = client_ctx();
  std::string version;
  result<void> hs = coil::fail(std::errc::io_error);
  coil::test::run(coil_pair(sctx, cctx, "127.0.0.1", &version, &hs));
  EXPECT_TRUE(hs) << hs.error().message();
  EXPECT_EQ(version, "TLSv1.2");
}

TEST(Tls, SecondConnectionResumesTheSession) {
  COIL_REQUIRE_PKI();
  for (auto v : {tls::version::tls1_2, tls::version::tls1_3}) {
    auto sctx = server_ctx({.max_version = v});
    auto cctx = client_ctx();  // one client context: it remembers the session
    std::string version;
    result<void> hs = coil::fail(std::errc::io_error);
    bool first = true, second = false;
    coil::test::run(coil_pair(sctx, cctx, "localhost", &version, &hs, &first));
    coil::test::run(coil_pair(sctx, cctx, "localhost", &version, &hs, &second));
    EXPECT_FALSE(first) << version;
    EXPECT_TRUE(second) << version;
  }
}

namespace {

// A client handshake against a server using `cert`; the client's error.
task<void> handshake_against(std::string cert, std::string key, tls::context_options copts, std::string name,
                             result<void>* client_hs, result<void>* server_hs) {
  auto sctx = server_ctx({.certificate_chain_file = cert, .private_key_file = key});
  auto cctx = copts.ca_file == "-" ? tls::context{} : client_ctx(copts);
  auto [l, addr] = coil::test::listen_loopback();
  auto srv = coil::runtime::current()->spawn(echo_one(l, sctx, server_hs));
  auto tcp = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(tcp);
  auto s = tls::stream<net::tcp_stream>::client(cctx, std::move(*tcp), {.server_name = name});
  CO_ASSERT_OK(s);
  *client_hs = co_await s->handshake();
  (void)co_await s->next_layer().close();
  co_await std::move(srv);
}

}  // namespace

TEST(Tls, CertificateFailuresAreX509Codes) {
  COIL_REQUIRE_PKI();
  const auto& p = test_pki::get();
  struct refusal {
    std::string cert, key, name;
    int want;
  } cases[] = {
      {p.cert, p.key, "example.com", X509_V_ERR_HOSTNAME_MISMATCH},
      {p.cert, p.key, "127.0.0.2", X509_V_ERR_IP_ADDRESS_MISMATCH},
      {p.expired, p.key, "localhost", X509_V_ERR_CERT_HAS_EXPIRED},
      {p.self_signed, p.self_key, "localhost", X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT},
  };
  for (const auto& c : cases) {
    result<void> client_hs, server_hs;
    coil::test::run(handshake_against(c.cert, c.key, {}, c.name, &client_hs, &server_hs));
    ASSERT_FALSE(client_hs) << c.name;
    EXPECT_EQ(client_hs.error().category(), tls::x509_category()) << client_hs.error().message();
    EXPECT_EQ(client_hs.error().value(), c.want) << client_hs.error().message();
    EXPECT_FALSE(server_hs);  // the client's alert ends the server's handshake too
  }
  // The same certificate with verification off: accepted.
  result<void> client_hs, server_hs;
  coil::test::run(handshake_against(p.self_signed, p.self_key, {.verify_peer = false}, "", &client_hs, &server_hs));
  EXPECT_TRUE(client_hs) << client_hs.error().message();
}

TEST(Tls, AVerifyingClientNeedsAName) {
  COIL_REQUIRE_PKI();
  auto cctx = client_ctx();
  auto [l, addr] = coil::test::listen_loopback();
  auto s = tls::stream<net::tcp_stream>::client(cctx, net::tcp_stream{}, {});
  EXPECT_TRUE(coil::test::fails_with(s, tls::errc::no_server_name));
  auto none = tls::stream<net::tcp_stream>::client(tls::context{}, net::tcp_stream{}, {.server_name = "x"});
  EXPECT_TRUE(coil::test::fails_with(none, tls::errc::no_context));
  EXPECT_FALSE(tls::context::server({}));  // a server needs a certificate and key
  auto bad = tls::context::server({.certificate_chain_file = "/nonexistent", .private_key_file = "/nonexistent"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), std::errc::no_such_file_or_directory) << bad.error().message();
}

namespace {

// The server side of a misbehaving peer: accepts one connection and does
// `what` with it.
enum class peer_does { close_after_hello, send_garbage, stay_silent, truncate_after_echo, oversized_record };

task<void> bad_server(net::tcp_listener& l, peer_does what, const tls::context* ctx) {
  auto c = co_await l.accept();
  if (!c) co_return;
  switch (what) {
    case peer_does::close_after_hello: {
      // Reads the ClientHello (so the close is a FIN, not a reset) and ends.
      std::vector<std::byte> buf(4096);
      (void)co_await c->recv(buf);
      break;
    }
    case peer_does::send_garbage: {
      std::vector<std::byte> buf(4096);
      (void)co_await c->recv(buf);
      (void)co_await c->send_all(bytes_of("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
      break;
    }
    case peer_does::stay_silent: {
      // Reads the ClientHello and whatever follows, answering nothing,
      // until the client goes away.
      std::vector<std::byte> buf(4096);
      for (;;) {
        auto n = co_await c->recv(buf);
        if (!n || *n == 0) break;
      }
      break;
    }
    case peer_does::oversized_record: {
      // A handshake record header announcing 65,535 bytes (TLS allows
      // 16,384 plus a little), then a stream of filler.
      std::vector<std::byte> buf(4096);
      (void)co_await c->recv(buf);
      std::vector<std::byte> rec(1 << 16, std::byte{0x41});
      rec[0] = std::byte{0x16};
      rec[1] = std::byte{0x03};
      rec[2] = std::byte{0x03};
      rec[3] = std::byte{0xff};
      rec[4] = std::byte{0xff};
      (void)co_await c->send_all(rec);
      break;
    }
    case peer_does::truncate_after_echo: {
      auto s = tls::stream<net::tcp_stream>::server(*ctx, std::move(*c));
      if (!s) co_return;
      auto h = co_await s->handshake();  // bound first: g++ 12 and co_await in a condition
      if (!h) co_return;
      (void)co_await s->write_all("partial");
      // No close_notify: the TCP connection just ends.
      (void)co_await s->next_layer().close();
      co_return;
    }
  }
  (void)co_await c->close();
}

task<void> client_against_bad_server(peer_does what, result<void>* hs, result<std::string>* data) {
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  auto [l, addr] = coil::test::listen_loopback();
  auto srv = coil::runtime::current()->spawn(bad_server(l, what, &sctx));
  auto tcp = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(tcp);
  auto s = tls::stream<net::tcp_stream>::client(cctx, std::move(*tcp), {.server_name = "localhost"});
  CO_ASSERT_OK(s);
  *hs = co_await coil::with_timeout(s->handshake(), 300ms);
  if (*hs && data != nullptr) *data = co_await read_n(*s, 1 << 20);
  (void)co_await s->next_layer().close();
  co_await std::move(srv);
}

}  // namespace

TEST(Tls, PeerClosingDuringTheHandshakeIsHandshakeEof) {
  COIL_REQUIRE_PKI();
  result<void> hs;
  coil::test::run(client_against_bad_server(peer_does::close_after_hello, &hs, nullptr));
  EXPECT_TRUE(coil::test::fails_with(hs, tls::errc::handshake_eof));
}

TEST(Tls, GarbageInsteadOfTlsIsAnOpenSslError) {
  COIL_REQUIRE_PKI();
  result<void> hs;
  coil::test::run(client_against_bad_server(peer_does::send_garbage, &hs, nullptr));
  ASSERT_FALSE(hs);
  EXPECT_EQ(hs.error().category(), tls::openssl_category());
  EXPECT_EQ(ERR_GET_REASON(static_cast<unsigned long>(hs.error().value())), SSL_R_WRONG_VERSION_NUMBER)
      << hs.error().message();
  EXPECT_EQ(hs.error().message(), "wrong version number");
}

TEST(Tls, ASilentPeerTimesTheHandshakeOut) {
  COIL_REQUIRE_PKI();
  result<void> hs;
  coil::test::run(client_against_bad_server(peer_does::stay_silent, &hs, nullptr));
  EXPECT_TRUE(coil::test::fails_with(hs, std::errc::timed_out));
}

TEST(Tls, AnOversizedRecordIsRefusedWithoutBuffering) {
  COIL_REQUIRE_PKI();
  result<void> hs;
  coil::test::run(client_against_bad_server(peer_does::oversized_record, &hs, nullptr));
  ASSERT_FALSE(hs);
  EXPECT_EQ(hs.error().category(), tls::openssl_category()) << hs.error().message();
  EXPECT_EQ(ERR_GET_REASON(static_cast<unsigned long>(hs.error().value())), SSL_R_PACKET_LENGTH_TOO_LONG)
      << hs.error().message();
}

TEST(Tls, EndWithoutCloseNotifyIsTruncation) {
  COIL_REQUIRE_PKI();
  result<void> hs;
  result<std::string> data;
  coil::test::run(client_against_bad_server(peer_does::truncate_after_echo, &hs, &data));
  ASSERT_TRUE(hs) << hs.error().message();
  EXPECT_TRUE(coil::test::fails_with(data, tls::errc::truncated));
}

TEST(Tls, GarbageToAServerFailsItsHandshake) {
  COIL_REQUIRE_PKI();
  auto sctx = server_ctx();
  result<void> hs;
  auto body = [](const tls::context& ctx, result<void>* hs) -> task<void> {
    auto [l, addr] = coil::test::listen_loopback();
    auto srv = coil::runtime::current()->spawn(echo_one(l, ctx, hs));
    auto c = co_await net::tcp_stream::connect(addr);
    CO_ASSERT_OK(c);
    (void)co_await c->send_all(bytes_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    co_await std::move(srv);
  };
  coil::test::run(body(sctx, &hs));
  ASSERT_FALSE(hs);
  EXPECT_EQ(hs.error().category(), tls::openssl_category()) << hs.error().message();
}

namespace {

// A read that times out (nothing sent yet) leaves the stream usable.
task<void> read_times_out_then_works(const tls::context& sctx, const tls::context& cctx) {
  auto [l, addr] = coil::test::listen_loopback();
  auto late_echo = [](net::tcp_listener& l, const tls::context& ctx) -> task<void> {
    auto c = co_await l.accept();
    CO_ASSERT_OK(c);
    auto s = co_await tls::accept(ctx, std::move(*c));
    CO_ASSERT_OK(s);
    (void)co_await coil::sleep_for(100ms);
    (void)co_await s->write_all("late");
    (void)co_await s->shutdown();
  };
  auto srv = coil::runtime::current()->spawn(late_echo(l, sctx));
  auto tcp = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(tcp);
  auto s = tls::stream<net::tcp_stream>::client(cctx, std::move(*tcp), {.server_name = "localhost"});
  CO_ASSERT_OK(s);
  auto h = co_await s->handshake();
  CO_ASSERT_OK(h);
  std::vector<std::byte> buf(64);
  auto early = co_await coil::with_timeout(s->read_some(buf), 10ms);
  EXPECT_TRUE(coil::test::fails_with(early, std::errc::timed_out));
  auto rest = co_await read_n(*s, 4);
  CO_ASSERT_OK(rest);
  EXPECT_EQ(*rest, "late");
  co_await std::move(srv);
}

}  // namespace

TEST(Tls, ATimedOutReadLeavesTheStreamUsable) {
  COIL_REQUIRE_PKI();
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  coil::test::run(read_times_out_then_works(sctx, cctx));
}

namespace {

task<void> handshake_then_abandon(net::socket_address addr, const tls::context* ctx, bool cancel) {
  auto tcp = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(tcp);
  auto s = tls::stream<net::tcp_stream>::client(*ctx, std::move(*tcp), {.server_name = "localhost"});
  CO_ASSERT_OK(s);
  auto hs = s->handshake();
  if (cancel) {
    // The handshake waits for a server that never answers; the caller's
    // cancellation ends it.
    auto r = co_await coil::with_timeout(std::move(hs), 50ms);
    EXPECT_TRUE(coil::test::fails_with(r, std::errc::timed_out));
  }
  // Else the unawaited handshake task and the stream are destroyed here.
}

}  // namespace

TEST(Tls, AbandoningAHandshakeMidFlightIsSafe) {
  COIL_REQUIRE_PKI();
  auto cctx = client_ctx();
  for (bool cancel : {true, false}) {
    auto body = [](const tls::context* ctx, bool cancel) -> task<void> {
      auto [l, addr] = coil::test::listen_loopback();
      auto srv = coil::runtime::current()->spawn(bad_server(l, peer_does::stay_silent, nullptr));
      co_await handshake_then_abandon(addr, ctx, cancel);
      co_await std::move(srv);  // the client's socket closed with it
    };
    coil::test::run(body(&cctx, cancel));
  }
}

namespace {

task<void> many_handshakes(const tls::context& sctx, const tls::context& cctx, int n, int* ok) {
  auto [l, addr] = coil::test::listen_loopback({.backlog = 4096});
  auto accept_all = [](net::tcp_listener& l, const tls::context& ctx, int n, int* ok) -> task<void> {
    std::vector<coil::join_handle<void>> conns;
    std::vector<result<void>> hs(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) conns.push_back(coil::runtime::current()->spawn(echo_one(l, ctx, &hs[static_cast<size_t>(i)])));
    for (auto& c : conns) co_await std::move(c);
    for (auto& h : hs) *ok += h ? 1 : 0;
  };
  auto one = [](net::socket_address addr, const tls::context& ctx) -> task<bool> {
    auto tcp = co_await net::tcp_stream::connect(addr);
    if (!tcp) co_return false;
    auto s = tls::stream<net::tcp_stream>::client(ctx, std::move(*tcp), {.server_name = "localhost"});
    if (!s) co_return false;
    auto h = co_await s->handshake();
    if (!h) co_return false;
    auto w = co_await s->write_all("ping");
    if (!w) co_return false;
    auto back = co_await read_n(*s, 4);
    if (!back || *back != "ping") co_return false;
    auto sd = co_await s->shutdown();
    co_return static_cast<bool>(sd);
  };
  auto srv = coil::runtime::current()->spawn(accept_all(l, sctx, n, ok));
  std::vector<coil::join_handle<bool>> clients;
  for (int i = 0; i < n; ++i) clients.push_back(coil::runtime::current()->spawn(one(addr, cctx)));
  for (auto& c : clients) {
    const bool fine = co_await std::move(c);
    if (fine) ++*ok;
  }
  co_await std::move(srv);
}

}  // namespace

TEST(Tls, AThousandConcurrentHandshakes) {
  COIL_REQUIRE_PKI();
  coil::test::fd_limit lim;
  ASSERT_TRUE(lim.raise_to(4096));
  auto sctx = server_ctx();
  auto cctx = client_ctx({.resumption = false});
  const int fds_before = coil::test::open_fds();
  int ok = 0;
  coil::test::run(many_handshakes(sctx, cctx, 1000, &ok));
  EXPECT_EQ(ok, 2000);  // every server and every client side
  EXPECT_EQ(coil::test::open_fds(), fds_before);
}

// ---- programs nobody here wrote ----------------------------------------------

namespace {

// openssl s_server -rev answers each line reversed.
task<void> talk_to_s_server(uint16_t port, const tls::context* ctx, std::string* reversed, std::string* version,
                            bool* reused) {
  auto s = co_await tls::connect(*ctx, "localhost", port);
  CO_ASSERT_OK(s);
  *version = std::string(s->protocol_version());
  *reused = s->session_reused();
  auto w = co_await s->write_all("hello coil\n");
  CO_ASSERT_OK(w);
  std::string got;
  std::vector<std::byte> buf(256);
  while (got.find('\n') == std::string::npos) {
    auto n = co_await s->read_some(buf);
    CO_ASSERT_OK(n);
    if (*n == 0) break;
    got.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  *reversed = got;
  (void)co_await s->shutdown();
}

}  // namespace

TEST(Tls, CoilClientAgainstOpensslSServer) {
  COIL_REQUIRE_PKI();
  const auto& p = test_pki::get();
  for (std::string flag : {"-tls1_2", "-tls1_3"}) {
    const uint16_t port = coil::test::free_port();
    coil::test::child srv({"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", p.cert,
                           "-key", p.key, "-rev", flag});
    ASSERT_TRUE(srv.started());
    ASSERT_NE(srv.read_until("ACCEPT").find("ACCEPT"), std::string::npos);
    auto cctx = client_ctx();
    for (int round = 0; round < 2; ++round) {
      std::string reversed, version;
      bool reused = false;
      coil::test::run(talk_to_s_server(port, &cctx, &reversed, &version, &reused));
      EXPECT_EQ(reversed.substr(0, 10), "lioc olleh") << flag;
      EXPECT_EQ(version, flag == "-tls1_2" ? "TLSv1.2" : "TLSv1.3");
      EXPECT_EQ(reused, round == 1) << flag << " round " << round;
    }
  }
}

namespace {

// A server thread with its own runtime: accepts `n` TLS connections and
// runs `serve` on each.
template <class Fn>
class server_thread {
 public:
  server_thread(tls::context ctx, int n, Fn serve) : ctx_(std::move(ctx)) {
    auto l = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
    EXPECT_TRUE(l);
    port_ = l->local_address()->port();
    thread_ = std::thread([this, n, serve, l = std::move(*l)]() mutable {
      coil::test::run(run(l, ctx_, n, serve));
    });
  }
  ~server_thread() { thread_.join(); }
  uint16_t port() const { return port_; }
  int handshakes() const { return ok_; }

 private:
  task<void> run(net::tcp_listener& l, const tls::context& ctx, int n, Fn serve) {
    for (int i = 0; i < n; ++i) {
      auto c = co_await l.accept();
      if (!c) co_return;
      auto s = co_await tls::accept(ctx, std::move(*c));
      if (!s) continue;
      ++ok_;
      co_await serve(*s);
    }
  }
  tls::context ctx_;
  uint16_t port_ = 0;
  int ok_ = 0;
  std::thread thread_;
};

// Echoes until the peer's close_notify (or end), then sends its own.
task<void> echo_stream(tls::stream<net::tcp_stream>& s) {
  std::vector<std::byte> buf(4096);
  for (;;) {
    auto n = co_await s.read_some(buf);
    if (!n || *n == 0) break;
    auto w = co_await s.write_all(std::span(buf).first(*n));
    if (!w) break;
  }
  (void)co_await s.shutdown();
}

// Answers one HTTP request with a fixed body.
task<void> https_hello(tls::stream<net::tcp_stream>& s) {
  std::string req;
  std::vector<std::byte> buf(4096);
  while (req.find("\r\n\r\n") == std::string::npos) {
    auto n = co_await s.read_some(buf);
    if (!n || *n == 0) co_return;
    req.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  (void)co_await s.write_all(
      "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello coil\n");
  (void)co_await s.shutdown();
}

}  // namespace

TEST(Tls, OpensslSClientAgainstCoilServerWithResumption) {
  COIL_REQUIRE_PKI();
  const auto& p = test_pki::get();
  const std::string sess = p.dir + "/s_client.sess";
  for (std::string flag : {"-tls1_2", "-tls1_3"}) {
    ::unlink(sess.c_str());
    server_thread srv(server_ctx(), 2, echo_stream);
    for (int round = 0; round < 2; ++round) {
      std::vector<std::string> argv = {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(srv.port()),
                                       "-CAfile", p.ca, "-verify_return_error", "-servername", "localhost",
                                       flag};
      argv.push_back(round == 0 ? "-sess_out" : "-sess_in");
      argv.push_back(sess);
      coil::test::child cl(argv);
      ASSERT_TRUE(cl.started());
      cl.write_stdin("echo me\n");
      cl.read_until("echo me\n");
      std::string out;
      (void)cl.finish(&out);  // at stdin's end s_client sends close_notify and exits
      EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
      EXPECT_NE(out.find(round == 0 ? "New," : "Reused,"), std::string::npos) << flag << "\n" << out;
      EXPECT_NE(out.find("echo me\n"), std::string::npos) << out;
    }
  }
}

TEST(Tls, CurlFetchesFromACoilHttpsServer) {
  COIL_REQUIRE_PKI();
  const auto& p = test_pki::get();
  server_thread srv(server_ctx({.alpn = {"http/1.1"}}), 2, https_hello);
  for (std::string tls_flag : {"--tlsv1.2 --tls-max 1.2", "--tlsv1.3"}) {
    std::string out;
    coil::test::child curl({"sh", "-c",
                            "curl -sS --cacert " + p.ca + " " + tls_flag + " https://localhost:" +
                                std::to_string(srv.port()) + "/ -w ' %{http_code} %{ssl_verify_result}'"});
    const int st = curl.finish(&out);
    EXPECT_EQ(st, 0) << out;
    EXPECT_EQ(out, "hello coil\n 200 0");
  }
}

TEST(Tls, CurlRefusesTheWrongHostAndAnExpiredCertificate) {
  COIL_REQUIRE_PKI();
  const auto& p = test_pki::get();
  {
    // The certificate names localhost and 127.0.0.1, not this name.
    server_thread srv(server_ctx(), 1, https_hello);
    std::string out;
    coil::test::child curl({"curl", "-sS", "--cacert", p.ca, "--resolve",
                            "wrong.example:" + std::to_string(srv.port()) + ":127.0.0.1",
                            "https://wrong.example:" + std::to_string(srv.port()) + "/"});
    EXPECT_NE(curl.finish(&out), 0) << out;
    EXPECT_NE(out.find("wrong.example"), std::string::npos) << out;
  }
  {
    server_thread srv(server_ctx({.certificate_chain_file = p.expired}), 1, https_hello);
    std::string out;
    coil::test::child curl({"curl", "-sS", "--cacert", p.ca, "https://localhost:" + std::to_string(srv.port()) + "/"});
    EXPECT_NE(curl.finish(&out), 0) << out;
    EXPECT_NE(out.find("expired"), std::string::npos) << out;
  }
}

// tls::stream is a byte stream: the stream toolkit works over it unchanged.
static_assert(coil::byte_stream<tls::stream<net::tcp_stream>>);
static_assert(coil::half_closable<tls::stream<net::tcp_stream>>);

namespace {

// The server writes lines in pieces through a buffered_writer; the client
// reads them back with a buffered_reader, both over TLS.
task<void> lines_over_tls(const tls::context& sctx, const tls::context& cctx, std::vector<std::string>* got) {
  auto [l, addr] = coil::test::listen_loopback();
  auto writer = [](net::tcp_listener& l, const tls::context& ctx) -> task<void> {
    auto c = co_await l.accept();
    CO_ASSERT_OK(c);
    auto s = co_await tls::accept(ctx, std::move(*c));
    CO_ASSERT_OK(s);
    coil::buffered_writer w(*s, 256);
    for (int i = 0; i < 50; ++i) {
      auto r = co_await w.write("line " + std::to_string(i) + "\r\n");
      CO_ASSERT_OK(r);
    }
    auto f = co_await w.flush();
    CO_ASSERT_OK(f);
    auto sd = co_await s->shutdown();
    CO_ASSERT_OK(sd);
  };
  auto srv = coil::runtime::current()->spawn(writer(l, sctx));
  auto tcp = co_await net::tcp_stream::connect(addr);
  CO_ASSERT_OK(tcp);
  auto s = tls::stream<net::tcp_stream>::client(cctx, std::move(*tcp), {.server_name = "localhost"});
  CO_ASSERT_OK(s);
  auto h = co_await s->handshake();
  CO_ASSERT_OK(h);
  coil::buffered_reader r(*s, 64);
  for (;;) {
    auto line = co_await r.read_line(32);
    if (!line) {
      EXPECT_TRUE(coil::test::fails_with(line, coil::errc::end_of_stream));
      break;
    }
    got->emplace_back(*line);
  }
  co_await std::move(srv);
}

}  // namespace

TEST(Tls, BufferedReaderAndWriterOverTls) {
  COIL_REQUIRE_PKI();
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  std::vector<std::string> got;
  coil::test::run(lines_over_tls(sctx, cctx, &got));
  ASSERT_EQ(got.size(), 50u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], "line " + std::to_string(i));
}
