// Guide: sockets.md. A TCP echo over 127.0.0.1, UDP datagrams, Unix socket
// pairs, what closing a socket does to its pending operations, connecting by
// name, passing descriptors and waiting for readiness of other descriptors.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include <coil/coil.hpp>

#include "example_util.hpp"

using namespace std::chrono_literals;
namespace net = coil::net;

namespace {

using example::check;

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

// doc-begin: tcp
// One task per connection: echo until the peer closes.
coil::task<void> echo(net::tcp_stream s) {
  std::array<std::byte, 4096> buf;
  for (;;) {
    auto n = co_await s.recv(buf);
    if (!n || *n == 0) break;  // error, or end of stream
    auto sent = co_await s.send_all(std::span(buf).first(*n));
    if (!sent) break;
  }
  (void)co_await s.close();
}

coil::task<coil::result<void>> serve(net::tcp_listener& listener, int connections) {
  for (int i = 0; i < connections; ++i) {
    auto s = co_await listener.accept();
    if (!s) co_return coil::fail(s.error());  // EMFILE too: the connection stays queued
    coil::runtime::current()->spawn(echo(std::move(*s))).detach();
  }
  co_return {};
}

coil::task<coil::result<void>> tcp() {
  auto listener = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));  // port 0: any free
  if (!listener) co_return coil::fail(listener.error());
  auto where = listener->local_address();
  if (!where) co_return coil::fail(where.error());
  auto server = coil::runtime::current()->spawn(serve(*listener, 1));

  auto c = co_await net::tcp_stream::connect(*where, 1s);  // timed_out after 1 s
  if (!c) co_return coil::fail(c.error());
  (void)c->set_nodelay(true);
  auto sent = co_await c->send_all(bytes("ping"));
  if (!sent) co_return sent;
  std::array<std::byte, 4> back;
  auto got = co_await c->recv_exact(back);  // errc::unexpected_eof if the stream ends first
  if (!got) co_return got;
  check(std::memcmp(back.data(), "ping", 4) == 0, "echo");
  co_return co_await server;
}
// doc-end: tcp

// doc-begin: udp
coil::task<coil::result<void>> udp() {
  auto a = net::udp_socket::bind(net::socket_address::ipv4_loopback(0));
  auto b = net::udp_socket::bind(net::socket_address::ipv4_loopback(0));
  if (!a || !b) co_return coil::fail(a ? b.error() : a.error());
  auto to = b->local_address();
  if (!to) co_return coil::fail(to.error());
  auto s = co_await a->send_to(bytes("datagram"), *to);  // one send, one datagram
  if (!s) co_return coil::fail(s.error());

  std::array<std::byte, 4> small;
  net::socket_address from;
  auto d = co_await b->recv_from(small, from);
  if (!d) co_return coil::fail(d.error());
  // The datagram was 8 bytes: the rest is gone, and recv_from says so.
  check(d->size == 4 && d->truncated && from == *a->local_address(), "recv_from");
  co_return {};
}
// doc-end: udp

// doc-begin: multishot
// One multishot accept for every connection; each connection's data arrives
// in buffers of one shared ring, so an idle connection holds no buffer.
coil::task<void> echo_multishot(net::tcp_stream s, coil::buffer_ring& ring) {
  auto rx = s.recv_multishot(ring);
  for (;;) {
    auto b = co_await rx.next();  // an rx_buffer lent by the ring
    if (!b || b->empty()) break;  // error, or end of stream
    auto sent = co_await s.send_all(b->bytes());
    if (!sent) break;
  }  // each buffer goes back to the ring when its rx_buffer is destroyed
}

coil::task<coil::result<void>> serve_multishot(net::tcp_listener& listener, int connections) {
  auto ring = coil::buffer_ring::create(coil::runtime::current()->driver(), 64, 4096);
  if (!ring) co_return coil::fail(ring.error());
  auto incoming = listener.incoming();
  std::vector<coil::join_handle<void>> conns;
  for (int i = 0; i < connections; ++i) {
    auto s = co_await incoming.next();  // EMFILE comes as a value; next() accepts again
    if (!s) co_return coil::fail(s.error());
    conns.push_back(coil::runtime::current()->spawn(echo_multishot(std::move(*s), **ring)));
  }
  for (auto& c : conns) co_await c;
  co_return {};
}
// doc-end: multishot

coil::task<coil::result<void>> multishot() {
  auto listener = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
  if (!listener) co_return coil::fail(listener.error());
  auto where = listener->local_address();
  if (!where) co_return coil::fail(where.error());
  auto server = coil::runtime::current()->spawn(serve_multishot(*listener, 2));
  for (int i = 0; i < 2; ++i) {
    auto c = co_await net::tcp_stream::connect(*where);
    if (!c) co_return coil::fail(c.error());
    auto sent = co_await c->send_zc(bytes("zero"));  // zero-copy where io_uring has it
    if (!sent) co_return coil::fail(sent.error());
    std::array<std::byte, 4> back;
    auto got = co_await c->recv_exact(back);
    if (!got) co_return got;
    check(std::memcmp(back.data(), "zero", 4) == 0, "multishot echo");
    (void)co_await c->close();
  }
  co_return co_await server;
}

// doc-begin: close
coil::task<coil::result<void>> close_cancels() {
  auto p = net::unix_stream::pair();
  if (!p) co_return coil::fail(p.error());
  auto& [left, right] = *p;
  std::array<std::byte, 8> buf;
  auto reader = coil::runtime::current()->spawn(
      [](net::unix_stream& s, std::span<std::byte> b) -> coil::task<coil::result<size_t>> {
        co_return co_await s.recv(b);
      }(left, buf));
  co_await coil::yield();
  check(left.pending() == 1, "pending recv");
  // Cancels the recv and waits until the kernel is done with it, then closes:
  // a descriptor number reused later can never be read by the old recv.
  auto closed = co_await left.close();
  auto r = co_await reader;
  check(closed && !r && r.error() == std::errc::operation_canceled, "close cancels");
  co_return {};
}
// doc-end: close

// doc-begin: names
coil::task<coil::result<void>> by_name() {
  auto listener = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
  if (!listener) co_return coil::fail(listener.error());
  const uint16_t port = listener->local_address()->port();
  // getaddrinfo on the blocking pool; IP literals resolve in place.
  auto addrs = co_await net::resolve("localhost", port);
  if (!addrs) co_return coil::fail(addrs.error());  // e.g. net::resolve_errc::host_not_found
  check(!addrs->empty(), "resolve");
  // Resolves, then tries each address in turn, each attempt bounded by 1 s.
  auto c = co_await net::tcp_stream::connect("localhost", port, 1s);
  if (!c) co_return coil::fail(c.error());
  auto accepted = co_await listener->accept();
  check(static_cast<bool>(accepted), "accepted by name");
  co_return {};
}
// doc-end: names

// doc-begin: fds
coil::task<coil::result<void>> pass_fd() {
  auto p = net::unix_stream::pair();
  if (!p) co_return coil::fail(p.error());
  auto& [left, right] = *p;
  coil::unique_fd original(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  const int to_pass[] = {original.get()};
  auto sent = co_await left.send_with_fds(bytes("f"), to_pass);  // at least one byte
  if (!sent) co_return coil::fail(sent.error());
  std::array<std::byte, 1> data;
  std::array<coil::unique_fd, 2> fds;  // room for two
  auto got = co_await right.recv_with_fds(data, fds);
  if (!got) co_return coil::fail(got.error());
  check(got->fds == 1 && !got->truncated && fds[0].valid(), "passed a descriptor");
  auto who = right.peer_credentials();  // SO_PEERCRED: pid, uid, gid
  check(who && who->pid == ::getpid(), "peer credentials");
  co_return {};
}
// doc-end: fds

// doc-begin: readiness
// A descriptor that other code reads and writes itself (here an eventfd, as
// a library's wake-up fd would be): coil only says when it is ready.
coil::task<coil::result<uint64_t>> wait_for_wakeup(int efd) {
  for (;;) {
    auto ready = co_await coil::wait_readable(efd);  // POLLIN, POLLHUP, ...
    if (!ready) co_return coil::fail(ready.error());
    uint64_t count;
    if (::read(efd, &count, sizeof count) == sizeof count) co_return count;
    if (errno != EAGAIN) co_return coil::fail(coil::errno_code(errno));
    // Someone else took it first: wait again.
  }
}

coil::task<coil::result<void>> readiness() {
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) co_return coil::fail(coil::errno_code(errno));
  auto waiter = coil::runtime::current()->spawn(wait_for_wakeup(efd));
  auto slept = co_await coil::sleep_for(1ms);
  const uint64_t three = 3;
  check(slept && ::write(efd, &three, sizeof three) == sizeof three, "wake");
  auto got = co_await waiter;
  // Cancel or finish every wait before closing a descriptor coil did not open.
  ::close(efd);
  check(got && *got == 3, "woken with 3");
  co_return {};
}
// doc-end: readiness

coil::task<void> run_all() {
  auto t = co_await tcp();
  if (!t) std::fprintf(stderr, "tcp: %s\n", t.error().message().c_str());
  check(static_cast<bool>(t), "tcp");
  auto u = co_await udp();
  check(static_cast<bool>(u), "udp");
  auto c = co_await close_cancels();
  check(static_cast<bool>(c), "close");
  auto n = co_await by_name();
  if (!n) std::fprintf(stderr, "by name: %s\n", n.error().message().c_str());
  check(static_cast<bool>(n), "by name");
  auto f = co_await pass_fd();
  check(static_cast<bool>(f), "pass fd");
  auto r = co_await readiness();
  check(static_cast<bool>(r), "readiness");
  auto m = co_await multishot();
  if (!m) std::fprintf(stderr, "multishot: %s\n", m.error().message().c_str());
  check(static_cast<bool>(m), "multishot");
}

}  // namespace

int main() {
  auto rt = coil::runtime::create();
  if (!rt) return 1;
  (*rt)->block_on(run_all());
  return example::exit_code();
}
