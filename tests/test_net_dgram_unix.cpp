// UDP and Unix-domain sockets: datagram boundaries, truncation, sender
// addresses, connected datagrams, sendmsg/recvmsg, Unix listeners on paths
// and abstract names.
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <string>
#include <vector>

#include "test_net_util.hpp"

namespace coil {
namespace {

using net::socket_address;
using net::udp_socket;
using test::bytes_of;
using test::text_of;

TEST(NetUdp, DatagramBoundariesAreKept) {
  auto a = udp_socket::bind(socket_address::ipv4_loopback(0));
  auto b = udp_socket::bind(socket_address::ipv4_loopback(0));
  ASSERT_TRUE(a && b);
  auto a_addr = a->local_address();
  auto b_addr = b->local_address();
  ASSERT_TRUE(a_addr && b_addr);
  test::run([&]() -> task<void> {
    const std::vector<size_t> sizes = {1, 0, 1000, 7, 60000, 2};
    std::vector<std::vector<std::byte>> sent;
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::vector<std::byte> d(sizes[i], std::byte(i + 1));
      auto n = co_await a->send_to(d, *b_addr);
      CO_ASSERT_OK(n);
      EXPECT_EQ(*n, sizes[i]);
      sent.push_back(std::move(d));
    }
    std::vector<std::byte> buf(65536);
    for (size_t i = 0; i < sizes.size(); ++i) {
      socket_address from;
      auto r = co_await b->recv_from(buf, from);
      CO_ASSERT_OK(r);
      EXPECT_EQ(r->size, sizes[i]) << "datagram " << i;
      EXPECT_FALSE(r->truncated);
      EXPECT_TRUE(std::equal(sent[i].begin(), sent[i].end(), buf.begin()));
      EXPECT_TRUE(from == *a_addr) << from.to_string() << " vs " << a_addr->to_string();
    }
    // A datagram longer than the buffer is cut, and says so; the rest is gone.
    auto n = co_await a->send_to(bytes_of("0123456789"), *b_addr);
    CO_ASSERT_OK(n);
    auto n2 = co_await a->send_to(bytes_of("next"), *b_addr);
    CO_ASSERT_OK(n2);
    std::array<std::byte, 4> small{};
    socket_address from;
    auto r = co_await b->recv_from(small, from);
    CO_ASSERT_OK(r);
    EXPECT_EQ(r->size, 4u);
    EXPECT_TRUE(r->truncated);
    EXPECT_EQ(text_of(small), "0123");
    auto r2 = co_await b->recv_from(small, from);
    CO_ASSERT_OK(r2);
    EXPECT_EQ(text_of(small), "next");
    EXPECT_FALSE(r2->truncated);
  }());
}

TEST(NetUdp, ConnectedSendRecvAndMsg) {
  auto server = udp_socket::bind(socket_address::ipv4_loopback(0), {.reuse_addr = true});
  ASSERT_TRUE(server);
  auto server_addr = server->local_address();
  ASSERT_TRUE(server_addr);
  auto client = udp_socket::connect_to(*server_addr);
  ASSERT_TRUE(client) << client.error().message();
  auto peer = client->peer_address();
  ASSERT_TRUE(peer && *peer == *server_addr);
  test::run([&]() -> task<void> {
    auto n = co_await client->send(bytes_of("ping"));
    CO_ASSERT_OK(n);
    std::array<std::byte, 16> buf{};
    socket_address from;
    auto r = co_await server->recv_from(buf, from);
    CO_ASSERT_OK(r);
    EXPECT_EQ(text_of(std::span(buf).first(r->size)), "ping");
    // Reply with sendmsg: two iovecs, one datagram.
    char p1[] = "po", p2[] = "ng!";
    iovec iov[] = {{p1, 2}, {p2, 3}};
    msghdr msg{};
    msg.msg_name = from.native();
    msg.msg_namelen = from.size();
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    auto s = co_await server->sendmsg(msg);
    CO_ASSERT_OK(s);
    EXPECT_EQ(*s, 5u);
    // Receive it with recvmsg scattered over two buffers.
    char q1[3] = {}, q2[8] = {};
    iovec riov[] = {{q1, 3}, {q2, 8}};
    msghdr rmsg{};
    rmsg.msg_iov = riov;
    rmsg.msg_iovlen = 2;
    auto g = co_await client->recvmsg(rmsg);
    CO_ASSERT_OK(g);
    EXPECT_EQ(*g, 5u);
    EXPECT_EQ(std::string(q1, 3) + std::string(q2, 2), "pong!");
    // A connected socket filters: datagrams from elsewhere are dropped.
    auto other = udp_socket::open();
    CO_ASSERT_OK(other);
    auto cl_addr = client->local_address();
    CO_ASSERT_OK(cl_addr);
    auto o = co_await other->send_to(bytes_of("intruder"), *cl_addr);
    CO_ASSERT_OK(o);
    auto f = co_await server->send_to(bytes_of("friend"), *cl_addr);
    CO_ASSERT_OK(f);
    auto got = co_await client->recv(buf);
    CO_ASSERT_OK(got);
    EXPECT_EQ(text_of(std::span(buf).first(*got)), "friend");
    // Dissolving the association.
    auto d = client->connect(socket_address{});
    EXPECT_TRUE(d);
    EXPECT_TRUE(test::fails_with(client->peer_address(), std::errc::not_connected));
  }());
}

TEST(NetUdp, SendToUnreachablePortIsRefusedOnConnectedSocket) {
  socket_address dead;
  {
    auto s = udp_socket::bind(socket_address::ipv4_loopback(0));
    ASSERT_TRUE(s);
    dead = *s->local_address();
  }
  auto c = udp_socket::connect_to(dead);
  ASSERT_TRUE(c);
  test::run([&]() -> task<void> {
    auto n = co_await c->send(bytes_of("x"));
    CO_ASSERT_OK(n);
    std::array<std::byte, 4> b{};
    // The ICMP port-unreachable surfaces on the next operation.
    auto r = co_await c->recv(b);
    EXPECT_TRUE(test::fails_with(r, std::errc::connection_refused));
  }());
}

TEST(NetUnix, StreamListenerOnPathAndAbstractName) {
  test::temp_dir dir;
  auto path = socket_address::unix_path(dir.file("s.sock"));
  ASSERT_TRUE(path);
  auto abstract = socket_address::unix_abstract("coil-test-" + std::to_string(::getpid()));
  ASSERT_TRUE(abstract);
  for (const socket_address& addr : {*path, *abstract}) {
    SCOPED_TRACE(addr.to_string());
    auto l = net::unix_listener::bind(addr);
    ASSERT_TRUE(l) << l.error().message();
    auto local = l->local_address();
    ASSERT_TRUE(local);
    EXPECT_TRUE(*local == addr) << local->to_string();
    test::run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        socket_address peer;
        auto s = co_await l->accept(peer);
        CO_ASSERT_OK(s);
        EXPECT_TRUE(peer.is_unix());
        EXPECT_TRUE(peer.is_unnamed());
        std::array<std::byte, 5> b{};
        auto r = co_await s->recv_exact(b);
        CO_ASSERT_OK(r);
        auto w = co_await s->send_all(b);
        CO_ASSERT_OK(w);
      };
      auto client = [&]() -> task<void> {
        auto s = co_await net::unix_stream::connect(addr);
        CO_ASSERT_OK(s);
        auto w = co_await s->send_all(bytes_of("unix!"));
        CO_ASSERT_OK(w);
        std::array<std::byte, 5> b{};
        auto r = co_await s->recv_exact(b);
        CO_ASSERT_OK(r);
        EXPECT_EQ(text_of(b), "unix!");
      };
      co_await when_all(server(), client());
    }());
  }
  // A path that exists is taken.
  EXPECT_TRUE(test::fails_with(net::unix_listener::bind(*path), std::errc::address_in_use));
}

TEST(NetUnix, DatagramPairAndBoundSockets) {
  test::temp_dir dir;
  test::run([&]() -> task<void> {
    auto p = net::unix_datagram::pair();
    CO_ASSERT_OK(p);
    for (std::string_view m : {"a", "", "three"}) {
      auto n = co_await p->first.send(bytes_of(m));
      CO_ASSERT_OK(n);
    }
    std::array<std::byte, 16> b{};
    for (std::string_view m : {"a", "", "three"}) {
      auto n = co_await p->second.recv(b);
      CO_ASSERT_OK(n);
      EXPECT_EQ(text_of(std::span(b).first(*n)), m);
    }

    auto server_addr = socket_address::unix_path(dir.file("d.sock"));
    auto client_addr = socket_address::unix_path(dir.file("c.sock"));
    CO_ASSERT_OK(server_addr);
    CO_ASSERT_OK(client_addr);
    auto server = net::unix_datagram::bind(*server_addr);
    auto client = net::unix_datagram::bind(*client_addr);
    CO_ASSERT_OK(server);
    CO_ASSERT_OK(client);
    auto n = co_await client->send_to(bytes_of("hello"), *server_addr);
    CO_ASSERT_OK(n);
    socket_address from;
    auto r = co_await server->recv_from(b, from);
    CO_ASSERT_OK(r);
    EXPECT_EQ(r->size, 5u);
    EXPECT_TRUE(from == *client_addr) << from.to_string();
    auto back = co_await server->send_to(bytes_of("world"), from);
    CO_ASSERT_OK(back);
    auto r2 = co_await client->recv(b);
    CO_ASSERT_OK(r2);
    EXPECT_EQ(text_of(std::span(b).first(*r2)), "world");

    // An unbound sender has no address (Linux reports length 0).
    auto anon = net::unix_datagram::unbound();
    CO_ASSERT_OK(anon);
    auto a = co_await anon->send_to(bytes_of("?"), *server_addr);
    CO_ASSERT_OK(a);
    auto r3 = co_await server->recv_from(b, from);
    CO_ASSERT_OK(r3);
    EXPECT_TRUE(from.family() == AF_UNSPEC || from.is_unnamed()) << from.to_string();
    // Nobody at that path.
    auto gone = socket_address::unix_path(dir.file("nobody.sock"));
    auto e = co_await anon->send_to(bytes_of("?"), *gone);
    EXPECT_TRUE(test::fails_with(e, std::errc::no_such_file_or_directory));
  }());
}

TEST(NetOps, SocketOpCreatesASocket) {
  test::run([&]() -> task<void> {
    auto fd = co_await op_awaiter<ops::socket>(ops::socket{.domain = AF_INET, .type = SOCK_DGRAM, .protocol = 0});
    CO_ASSERT_OK(fd);
    EXPECT_TRUE(fd->valid());
    EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
    auto bad = co_await op_awaiter<ops::socket>(ops::socket{.domain = 12345, .type = SOCK_DGRAM, .protocol = 0});
    EXPECT_TRUE(test::fails_with(bad, std::errc::address_family_not_supported));
  }());
}

// The readiness half of the op contract, called directly as a fallback
// driver would: never blocks with nowait, -EAGAIN when it would.
TEST(NetOps, PerformNowaitNeverBlocks) {
  auto lb = test::listen_loopback();
  // accept: nothing pending.
  EXPECT_EQ((ops::accept{lb.listener.fd(), nullptr, nullptr, 0}.perform(true)), -EAGAIN);
  // connect: starts, then reports the outcome on a later call.
  unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ops::connect con{c.get(), lb.addr.native(), lb.addr.size()};
  int32_t r = con.perform(true);
  for (int i = 0; i < 1000 && r == -EAGAIN; ++i) {
    ::usleep(1000);
    r = con.perform(true);
  }
  EXPECT_EQ(r, 0);
  EXPECT_EQ(::fcntl(c.get(), F_GETFL) & O_NONBLOCK, 0) << "connect left the socket non-blocking";
  const int a = ops::accept{lb.listener.fd(), nullptr, nullptr, 0}.perform(true);
  ASSERT_GE(a, 0);
  unique_fd accepted(a);
  // recv on an empty blocking socket, send into a full one.
  char buf[64];
  EXPECT_EQ((ops::recv{accepted.get(), buf, sizeof(buf), 0}.perform(true)), -EAGAIN);
  std::vector<char> big(1 << 20);
  int32_t s = 0;
  while (s >= 0) s = ops::send{c.get(), big.data(), static_cast<uint32_t>(big.size()), 0}.perform(true);
  EXPECT_EQ(s, -EAGAIN);
  iovec iov{buf, sizeof(buf)};
  EXPECT_EQ((ops::sendv{c.get(), &iov, 1}.perform(true)), -EAGAIN);
  // Peer gone: EPIPE as a value (MSG_NOSIGNAL), not a signal.
  accepted.reset();
  s = 0;
  for (int i = 0; i < 100 && s != -EPIPE && s != -ECONNRESET; ++i) {
    s = ops::send{c.get(), buf, sizeof(buf), 0}.perform(true);
    if (s == -EAGAIN) ::usleep(1000);
  }
  EXPECT_TRUE(s == -EPIPE || s == -ECONNRESET) << s;
  // A refused connect reports the handshake's error.
  socket_address dead;
  {
    auto t = test::listen_loopback();
    dead = t.addr;
  }
  unique_fd d(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ops::connect dc{d.get(), dead.native(), dead.size()};
  r = dc.perform(true);
  for (int i = 0; i < 1000 && r == -EAGAIN; ++i) {
    ::usleep(1000);
    r = dc.perform(true);
  }
  EXPECT_EQ(r, -ECONNREFUSED);
}

}  // namespace
}  // namespace coil
