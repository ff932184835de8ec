// Name resolution (net/resolve.hpp) and connecting by name or address list.
// Names come from /etc/hosts only ("localhost"), never from DNS.
#include <algorithm>
#include <string>
#include <vector>

#include "test_net_util.hpp"

namespace coil {
namespace {

using net::resolve_errc;
using net::resolve_options;
using net::socket_address;

bool contains(const std::vector<socket_address>& v, const socket_address& a) {
  return std::find(v.begin(), v.end(), a) != v.end();
}

TEST(NetResolve, IpLiteralsResolveInPlace) {
  auto v4 = net::resolve_now("127.0.0.1", 80);
  ASSERT_TRUE(v4) << v4.error().message();
  ASSERT_EQ(v4->size(), 1u);
  EXPECT_EQ((*v4)[0], socket_address::ipv4_loopback(80));
  test::run([]() -> task<void> {
    auto v6 = co_await net::resolve("::1", 443);
    CO_ASSERT_OK(v6);
    CO_ASSERT_TRUE(v6->size() == 1u);
    EXPECT_EQ((*v6)[0], socket_address::ipv6_loopback(443));
  }());
}

TEST(NetResolve, LocalhostComesFromTheHostsFile) {
  test::run([]() -> task<void> {
    resolve_options v4;
    v4.family = AF_INET;
    auto a = co_await net::resolve("localhost", 8080, v4);
    CO_ASSERT_OK(a);
    EXPECT_TRUE(contains(*a, socket_address::ipv4_loopback(8080))) << (*a)[0].to_string();
    for (const socket_address& x : *a) {
      EXPECT_TRUE(x.is_ipv4()) << x.to_string();
      EXPECT_EQ(x.port(), 8080);
    }
    // Socket type "any" lists each address once per type; resolve keeps one.
    v4.socktype = 0;
    auto any = co_await net::resolve("localhost", 8080, v4);
    CO_ASSERT_OK(any);
    EXPECT_EQ(any->size(), a->size());
    // Unspecified family: whatever the file has, IPv4 loopback among it.
    auto both = co_await net::resolve("localhost", 1);
    CO_ASSERT_OK(both);
    EXPECT_TRUE(contains(*both, socket_address::ipv4_loopback(1)));
  }());
}

TEST(NetResolve, FailuresAreResolveErrors) {
  resolve_options numeric;
  numeric.numeric_only = true;
  auto named = net::resolve_now("localhost", 80, numeric);
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error(), resolve_errc::host_not_found);
  EXPECT_STREQ(named.error().category().name(), "coil.resolve");
  EXPECT_FALSE(named.error().message().empty());

  // A literal of the other family than asked for has no address.
  resolve_options v4;
  v4.family = AF_INET;
  auto wrong = net::resolve_now("::1", 80, v4);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), resolve_errc::host_not_found) << wrong.error().message();

  resolve_options bad;
  bad.family = 12345;
  auto fam = net::resolve_now("localhost", 80, bad);
  ASSERT_FALSE(fam);
  EXPECT_EQ(fam.error(), resolve_errc::bad_family) << fam.error().message();
  bad = {};
  bad.socktype = 12345;
  auto type = net::resolve_now("localhost", 80, bad);
  ASSERT_FALSE(type);
  EXPECT_EQ(type.error(), resolve_errc::bad_socktype) << type.error().message();

  test::run([]() -> task<void> {
    resolve_options numeric;
    numeric.numeric_only = true;
    auto r = co_await net::resolve("localhost", 80, numeric);
    CO_EXPECT_FAIL(r, resolve_errc::host_not_found);
  }());
}

TEST(NetResolve, EmptyHostIsLoopbackOrTheWildcardToBind) {
  resolve_options opts;
  opts.family = AF_INET;
  auto loop = net::resolve_now("", 7, opts);
  ASSERT_TRUE(loop) << loop.error().message();
  EXPECT_EQ((*loop)[0], socket_address::ipv4_loopback(7));
  opts.passive = true;
  auto any = net::resolve_now("", 7, opts);
  ASSERT_TRUE(any) << any.error().message();
  EXPECT_EQ((*any)[0], socket_address::ipv4_any(7));
}

TEST(NetResolve, SplitHostPort) {
  struct ok_case {
    const char* text;
    const char* host;
    uint16_t port;
  };
  for (const ok_case& c : {ok_case{"localhost:80", "localhost", 80}, ok_case{"10.0.0.1:65535", "10.0.0.1", 65535},
                           ok_case{"[::1]:0", "::1", 0}, ok_case{"[fe80::1%eth0]:22", "fe80::1%eth0", 22},
                           ok_case{":8080", "", 8080}}) {
    SCOPED_TRACE(c.text);
    auto hp = net::split_host_port(c.text);
    ASSERT_TRUE(hp);
    EXPECT_EQ(hp->host, c.host);
    EXPECT_EQ(hp->port, c.port);
  }
  for (const char* bad : {"localhost", "localhost:", "localhost:65536", "localhost:8x", "localhost:-1", "::1:80",
                          "[::1]80", "[::1", "host:+80"}) {
    SCOPED_TRACE(bad);
    auto hp = net::split_host_port(bad);
    ASSERT_FALSE(hp);
    EXPECT_EQ(hp.error(), std::errc::invalid_argument);
  }
}

// Accepts one connection and echoes one byte on it.
task<void> echo_one(net::tcp_listener& l) {
  auto c = co_await l.accept();
  CO_ASSERT_OK(c);
  std::byte b{};
  auto r = co_await c->recv_exact(std::span(&b, 1));
  CO_ASSERT_OK(r);
  auto w = co_await c->send_all(std::span<const std::byte>(&b, 1));
  CO_ASSERT_OK(w);
}

task<void> ping(net::tcp_stream& s) {
  const std::byte out{42};
  auto w = co_await s.send_all(std::span<const std::byte>(&out, 1));
  CO_ASSERT_OK(w);
  std::byte in{};
  auto r = co_await s.recv_exact(std::span(&in, 1));
  CO_ASSERT_OK(r);
  EXPECT_EQ(in, out);
}

TEST(NetResolve, ConnectByName) {
  test::run([]() -> task<void> {
    auto [l, addr] = test::listen_loopback();
    auto server = runtime::current()->spawn(echo_one(l));
    // "localhost" may list ::1 first where the hosts file has it: that
    // attempt is refused (the listener is IPv4) and the next one connects.
    auto s = co_await net::tcp_stream::connect("localhost", addr.port(), std::chrono::seconds(5));
    CO_ASSERT_OK(s);
    co_await ping(*s);
    co_await std::move(server);
  }());
}

TEST(NetResolve, ConnectTriesAddressesInTurn) {
  test::run([]() -> task<void> {
    // A port nobody listens on: bound, then closed.
    socket_address refused;
    {
      auto gone = test::listen_loopback();
      refused = gone.addr;
    }
    auto [l, addr] = test::listen_loopback();
    auto server = runtime::current()->spawn(echo_one(l));
    // (Lists built apart from the co_await: g++ 12 rejects an initializer
    // list's array inside one.)
    std::vector<socket_address> second_works{refused, addr};
    auto s = co_await net::tcp_stream::connect(std::move(second_works), std::chrono::seconds(5));
    CO_ASSERT_OK(s);
    auto peer = s->peer_address();
    CO_ASSERT_OK(peer);
    EXPECT_EQ(*peer, addr);
    co_await ping(*s);
    co_await std::move(server);

    // All refused: the last attempt's error. None: host_not_found.
    std::vector<socket_address> all_refused{refused, refused};
    auto none = co_await net::tcp_stream::connect(std::move(all_refused), std::chrono::seconds(5));
    CO_EXPECT_FAIL(std::move(none), std::errc::connection_refused);
    auto empty = co_await net::tcp_stream::connect(std::vector<socket_address>{}, std::chrono::seconds(5));
    CO_EXPECT_FAIL(std::move(empty), resolve_errc::host_not_found);
    auto unknown = co_await net::tcp_stream::connect("no such host", 80);
    CO_EXPECT_FAIL(std::move(unknown), resolve_errc::host_not_found);
  }());
}

}  // namespace
}  // namespace coil
