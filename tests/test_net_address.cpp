// socket_address: parse/format round trips, errors, Unix and abstract forms.
#include <arpa/inet.h>
#include <sys/un.h>

#include <string>

#include "test_net_util.hpp"

namespace coil {
namespace {

using net::socket_address;

TEST(NetAddress, ParseFormatRoundTrips) {
  for (const char* text : {"127.0.0.1:80", "0.0.0.0:0", "255.255.255.255:65535", "10.1.2.3:8080", "[::1]:80", "[::]:0",
                           "[2001:db8::1]:443", "[fe80::1%1]:22", "[::ffff:1.2.3.4]:9"}) {
    SCOPED_TRACE(text);
    auto a = socket_address::parse(text);
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_EQ(a->to_string(), text);
    auto b = socket_address::parse(a->to_string());
    ASSERT_TRUE(b);
    EXPECT_TRUE(*a == *b);
  }
}

TEST(NetAddress, FieldsAndConstructors) {
  auto a = socket_address::parse("192.168.1.20:5353");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_ipv4());
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->port(), 5353);
  EXPECT_EQ(a->size(), sizeof(sockaddr_in));
  const auto* sin = reinterpret_cast<const sockaddr_in*>(a->native());
  EXPECT_EQ(ntohl(sin->sin_addr.s_addr), 0xC0A80114u);
  a->set_port(1);
  EXPECT_EQ(a->to_string(), "192.168.1.20:1");

  EXPECT_EQ(socket_address::ipv4_loopback(7).to_string(), "127.0.0.1:7");
  EXPECT_EQ(socket_address::ipv4_any(0).to_string(), "0.0.0.0:0");
  EXPECT_EQ(socket_address::ipv6_loopback(7).to_string(), "[::1]:7");
  EXPECT_EQ(socket_address::ipv6_any(9).to_string(), "[::]:9");
  EXPECT_TRUE(socket_address::ipv6_loopback(7).is_ipv6());
  EXPECT_EQ(socket_address::ipv6_loopback(7).size(), sizeof(sockaddr_in6));

  auto ip = socket_address::parse_ip("::1", 99);
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->to_string(), "[::1]:99");
  auto lo = socket_address::parse_ip("lo", 1);
  EXPECT_FALSE(lo);
  auto scoped = socket_address::parse_ip("fe80::2%lo", 1);  // interface names resolve to their index
  ASSERT_TRUE(scoped);
  EXPECT_NE(scoped->to_string().find('%'), std::string::npos);

  socket_address none;
  EXPECT_EQ(none.family(), AF_UNSPEC);
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(none.to_string(), "");
  EXPECT_EQ(none.port(), 0);
  EXPECT_TRUE(none == socket_address{});
  EXPECT_FALSE(none == socket_address::ipv4_any(0));
  EXPECT_FALSE(socket_address::ipv4_loopback(1) == socket_address::ipv4_loopback(2));
}

TEST(NetAddress, ParseErrors) {
  for (const char* text : {"",
                           "127.0.0.1",
                           "127.0.0.1:",
                           ":80",
                           "127.0.0.1:65536",
                           "127.0.0.1:-1",
                           "127.0.0.1:80x",
                           "127.0.0.1:+80",
                           "127.0.0.1: 80",
                           "1.2.3:80",
                           "1.2.3.4.5:80",
                           "256.0.0.1:80",
                           "localhost:80",
                           "::1:80",
                           "[::1]",
                           "[::1]80",
                           "[::1:80",
                           "[1.2.3.4]:80",
                           "[::g]:80",
                           "[fe80::1%]:80",
                           "[fe80::1%nosuchif0]:80",
                           "127.0.0.1:123456"}) {
    SCOPED_TRACE(text);
    auto a = socket_address::parse(text);
    EXPECT_TRUE(test::fails_with(a, std::errc::invalid_argument));
  }
}

TEST(NetAddress, UnixPathsAndAbstractNames) {
  auto p = socket_address::unix_path("/tmp/coil.sock");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->is_unix());
  EXPECT_FALSE(p->is_abstract());
  EXPECT_EQ(p->to_string(), "/tmp/coil.sock");
  auto q = socket_address::parse("/tmp/coil.sock");
  ASSERT_TRUE(q);
  EXPECT_TRUE(*p == *q);

  auto a = socket_address::unix_abstract("coil-test");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_abstract());
  EXPECT_EQ(a->to_string(), "@coil-test");
  auto b = socket_address::parse("@coil-test");
  ASSERT_TRUE(b);
  EXPECT_TRUE(*a == *b);
  EXPECT_FALSE(*a == *p);
  EXPECT_EQ(a->port(), 0);

  const std::string longest(sizeof(sockaddr_un::sun_path) - 1, 'x');
  EXPECT_TRUE(socket_address::unix_path(longest));
  EXPECT_TRUE(test::fails_with(socket_address::unix_path(longest + "x"), std::errc::filename_too_long));
  EXPECT_TRUE(socket_address::unix_abstract(longest));
  EXPECT_TRUE(test::fails_with(socket_address::unix_abstract(longest + "x"), std::errc::filename_too_long));
  EXPECT_TRUE(test::fails_with(socket_address::unix_path(""), std::errc::invalid_argument));
  EXPECT_TRUE(test::fails_with(socket_address::unix_path(std::string("a\0b", 3)), std::errc::invalid_argument));
}

TEST(NetAddress, FromNative) {
  const auto v4 = socket_address::ipv4({1, 2, 3, 4}, 5);
  auto copy = socket_address::from_native(v4.native(), v4.size());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(*copy == v4);
  EXPECT_TRUE(test::fails_with(socket_address::from_native(nullptr, 0), std::errc::invalid_argument));
  EXPECT_TRUE(test::fails_with(socket_address::from_native(v4.native(), socket_address::capacity() + 1),
                                   std::errc::invalid_argument));
}

}  // namespace
}  // namespace coil
