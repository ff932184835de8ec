// echo_server PORT [--mode plain]
//
// A TCP echo server on 0.0.0.0:PORT: one task per connection, each looping
// recv -> send_all until the peer closes. "plain" uses one recv buffer per
// connection (multishot recv with a provided-buffer ring is a later mode).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "coil/coil.hpp"

namespace {

coil::task<void> serve(coil::net::tcp_stream s) {
  (void)s.set_nodelay(true);
  std::vector<std::byte> buf(16 << 10);
  for (;;) {
    auto n = co_await s.recv(buf);
    if (!n || *n == 0) break;  // peer closed, or reset
    auto w = co_await s.send_all(std::span(buf).first(*n));
    if (!w) break;
  }
  (void)co_await s.close();
}

coil::task<int> run(coil::net::tcp_listener& listener) {
  for (;;) {
    auto s = co_await listener.accept();
    if (!s) {
      // EMFILE/ENFILE: the connection waits in the backlog; try again shortly.
      if (s.error() == std::errc::too_many_files_open || s.error() == std::errc::too_many_files_open_in_system) {
        auto z = co_await coil::sleep_for(std::chrono::milliseconds(10));
        (void)z;
        continue;
      }
      std::fprintf(stderr, "echo_server: accept: %s\n", s.error().message().c_str());
      co_return 1;
    }
    coil::runtime::current()->spawn(serve(std::move(*s))).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (argc == 4 && std::strcmp(argv[3], "plain") != 0) || argc == 3 || argc > 4) {
    std::fprintf(stderr, "usage: echo_server PORT [--mode plain]\n");
    return 2;
  }
  const long port = std::strtol(argv[1], nullptr, 10);
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "echo_server: bad port %s\n", argv[1]);
    return 2;
  }
  auto listener = coil::net::tcp_listener::bind(coil::net::socket_address::ipv4_any(static_cast<uint16_t>(port)));
  if (!listener) {
    std::fprintf(stderr, "echo_server: bind: %s\n", listener.error().message().c_str());
    return 1;
  }
  auto rt = coil::runtime::create();
  if (!rt) {
    std::fprintf(stderr, "echo_server: %s\n", rt.error().message().c_str());
    return 1;
  }
  auto addr = listener->local_address();
  std::printf("echo_server: listening on %s\n", addr ? addr->to_string().c_str() : "?");
  std::fflush(stdout);
  return (*rt)->block_on(run(*listener));
}
