// Guide: streams.md. A line protocol over TCP with buffered_reader and
// buffered_writer, length-prefixed frames, a proxy with copy_bidirectional,
// and a file read as a stream.
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include <coil/coil.hpp>

#include "example_util.hpp"

using namespace std::chrono_literals;
namespace net = coil::net;

namespace {

using example::check;

// doc-begin: lines
// A line protocol: each request line gets "ok <line>" back. Lines longer
// than 1 KiB end the connection; the reader's 4 KiB buffer never grows.
coil::task<void> serve_lines(net::tcp_stream s) {
  coil::buffered_reader in(s, 4096);
  coil::buffered_writer out(s, 4096);
  for (;;) {
    auto line = co_await in.read_line(1024);  // a view into in's buffer
    if (!line) break;  // errc::end_of_stream, unexpected_eof, too_long, or a socket error
    auto w = co_await out.write("ok " + std::string(*line) + "\n");
    if (!w) break;
    // Answer once no more requests are buffered: pipelined requests share one send.
    if (!in.buffered().empty()) continue;
    auto f = co_await out.flush();
    if (!f) break;
  }
  (void)co_await s.close();
}

coil::task<coil::result<void>> lines() {
  auto listener = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
  if (!listener) co_return coil::fail(listener.error());
  auto c = co_await net::tcp_stream::connect(*listener->local_address());
  if (!c) co_return coil::fail(c.error());
  auto s = co_await listener->accept();
  if (!s) co_return coil::fail(s.error());
  coil::runtime::current()->spawn(serve_lines(std::move(*s))).detach();

  auto sent = co_await c->send_all("hello\r\nworld\n");  // strings go as they are
  if (!sent) co_return coil::fail(sent.error());
  coil::buffered_reader replies(*c, 4096);
  auto first = co_await replies.read_line(1024);
  if (!first) co_return coil::fail(first.error());
  check(*first == "ok hello", "first reply");
  auto second = co_await replies.read_line(1024);
  if (!second) co_return coil::fail(second.error());
  check(*second == "ok world", "second reply");
  co_return {};
}
// doc-end: lines

// doc-begin: frames
// Messages with a 4-byte big-endian length; at most 64 KiB each.
constexpr coil::frame_format format{coil::frame_prefix::u32_be, 64 * 1024};

coil::task<coil::result<void>> frames() {
  auto pair = net::unix_stream::pair();
  if (!pair) co_return coil::fail(pair.error());
  auto& [a, b] = *pair;
  coil::buffered_writer out(a);
  for (std::string_view m : {"first", "second", ""}) {
    auto w = co_await coil::write_frame(out, format, m);  // buffered
    if (!w) co_return coil::fail(w.error());
  }
  auto f = co_await out.flush();  // all three in one send
  if (!f) co_return coil::fail(f.error());
  (void)co_await a.shutdown_write();

  coil::buffered_reader in(b);
  int count = 0;
  for (;;) {
    auto m = co_await coil::read_frame(in, format);  // a view into in's buffer
    if (!m && m.error() == coil::errc::end_of_stream) break;  // a clean end between frames
    if (!m) co_return coil::fail(m.error());  // unexpected_eof mid-frame, too_long
    ++count;
  }
  check(count == 3, "three frames");
  co_return {};
}
// doc-end: frames

// doc-begin: proxy
// Relays one client to an upstream server both ways. When either side ends
// its stream, the other side's write half is shut down and the other
// direction goes on.
coil::task<void> relay(net::tcp_stream client, net::socket_address upstream) {
  auto server = co_await net::tcp_stream::connect(upstream);
  if (!server) co_return;
  coil::bidirectional_result r = co_await coil::copy_bidirectional(client, *server);
  std::printf("relayed %zu bytes up, %zu down%s%s\n", r.a_to_b.bytes_done(), r.b_to_a.bytes_done(),
              r ? "" : ": ", r ? "" : r.error().message().c_str());
}
// doc-end: proxy

coil::task<void> upstream_echo(net::tcp_listener& l) {
  auto s = co_await l.accept();
  if (!s) co_return;
  auto r = co_await coil::copy(*s, *s);  // echoes until the end of the stream
  (void)r;
  (void)co_await s->shutdown_write();
}

coil::task<coil::result<void>> proxy() {
  auto up = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
  auto front = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
  if (!up || !front) co_return coil::fail(std::errc::address_not_available);
  auto echo = coil::runtime::current()->spawn(upstream_echo(*up));
  auto c = co_await net::tcp_stream::connect(*front->local_address());
  if (!c) co_return coil::fail(c.error());
  auto accepted = co_await front->accept();
  if (!accepted) co_return coil::fail(accepted.error());
  auto relayed = coil::runtime::current()->spawn(relay(std::move(*accepted), *up->local_address()));
  auto sent = co_await c->send_all("through the proxy");
  if (!sent) co_return coil::fail(sent.error());
  (void)co_await c->shutdown_write();
  coil::buffered_reader in(*c, 64);
  auto back = co_await in.peek(17);
  check(back && std::string_view(reinterpret_cast<const char*>(back->data()), 17) == "through the proxy", "echoed");
  co_await relayed;
  co_await echo;
  co_return {};
}

// doc-begin: file
// A file as a stream from an offset: file_cursor advances by what each read
// or write moved. (coil::file itself is a stream at the kernel's file
// position: pipes, FIFOs, character devices.)
coil::task<coil::result<int>> count_lines(const char* path) {
  auto f = co_await coil::file::open(path);
  if (!f) co_return coil::fail(f.error());
  coil::file_cursor cursor(*f, 0);
  coil::buffered_reader in(cursor, 64 * 1024);
  int n = 0;
  for (;;) {
    auto line = co_await in.read_line(in.capacity());
    if (!line && line.error() == coil::errc::end_of_stream) co_return n;
    if (!line) co_return coil::fail(line.error());
    ++n;
  }
}
// doc-end: file

coil::task<coil::result<void>> file_lines() {
  example::temp_dir dir;
  const std::string path = dir.path() + "/lines";
  auto f = co_await coil::file::create(path.c_str());
  if (!f) co_return coil::fail(f.error());
  auto w = co_await f->write_all_at("one\ntwo\nthree\n", 0);
  if (!w) co_return coil::fail(w.error());
  auto n = co_await count_lines(path.c_str());
  if (!n) co_return coil::fail(n.error());
  check(*n == 3, "three lines");
  co_return {};
}

coil::task<void> run_all() {
  auto l = co_await lines();
  if (!l) std::fprintf(stderr, "lines: %s\n", l.error().message().c_str());
  check(static_cast<bool>(l), "lines");
  auto f = co_await frames();
  if (!f) std::fprintf(stderr, "frames: %s\n", f.error().message().c_str());
  check(static_cast<bool>(f), "frames");
  auto p = co_await proxy();
  if (!p) std::fprintf(stderr, "proxy: %s\n", p.error().message().c_str());
  check(static_cast<bool>(p), "proxy");
  auto c = co_await file_lines();
  if (!c) std::fprintf(stderr, "file: %s\n", c.error().message().c_str());
  check(static_cast<bool>(c), "file");
}

}  // namespace

int main() {
  auto rt = coil::runtime::create();
  if (!rt) return 1;
  (*rt)->block_on(run_all());
  return example::exit_code();
}
