// udp_echo PORT|HOST:PORT            serve: send every datagram back to its sender
// udp_echo PORT|HOST:PORT --ping N   client: N datagrams to HOST:PORT (PORT alone:
//                                    127.0.0.1), check each echo
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "coil/coil.hpp"
#include "listen_address.hpp"

namespace {

using coil::net::socket_address;
using coil::net::udp_socket;

coil::task<int> serve(udp_socket& s) {
  std::vector<std::byte> buf(65536);
  for (;;) {
    socket_address from;
    auto r = co_await s.recv_from(buf, from);
    if (!r) {
      std::fprintf(stderr, "udp_echo: recv: %s\n", r.error().message().c_str());
      co_return 1;
    }
    auto w = co_await s.send_to(std::span(buf).first(r->size), from);
    if (!w) std::fprintf(stderr, "udp_echo: send to %s: %s\n", from.to_string().c_str(), w.error().message().c_str());
  }
}

coil::task<int> ping(udp_socket& s, long count) {
  int bad = 0;
  std::vector<std::byte> in(2048);
  for (long i = 0; i < count; ++i) {
    const std::string msg = "ping " + std::to_string(i);
    auto w = co_await s.send(std::as_bytes(std::span(msg.data(), msg.size())));
    if (!w) {
      std::fprintf(stderr, "udp_echo: send: %s\n", w.error().message().c_str());
      co_return 1;
    }
    // UDP may lose datagrams: wait a bounded time for each echo.
    auto r = co_await coil::with_timeout(s.recv(in), std::chrono::seconds(1));
    if (!r || std::string(reinterpret_cast<const char*>(in.data()), *r) != msg) ++bad;
  }
  std::printf("udp_echo: %ld sent, %ld echoed intact\n", count, count - bad);
  co_return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const bool client = argc == 4 && std::strcmp(argv[2], "--ping") == 0;
  if (argc != 2 && !client) {
    std::fprintf(stderr, "usage: udp_echo PORT|HOST:PORT [--ping N]\n");
    return 2;
  }
  auto where = listen_address(argv[1]);
  if (!where) {
    std::fprintf(stderr, "udp_echo: bad address or port %s\n", argv[1]);
    return 2;
  }
  if (client && std::strchr(argv[1], ':') == nullptr) where = socket_address::ipv4_loopback(where->port());
  auto rt = coil::runtime::create();
  if (!rt) return 1;
  auto s = client ? udp_socket::connect_to(*where) : udp_socket::bind(*where);
  if (!s) {
    std::fprintf(stderr, "udp_echo: %s\n", s.error().message().c_str());
    return 1;
  }
  if (client) return (*rt)->block_on(ping(*s, std::strtol(argv[3], nullptr, 10)));
  auto addr = s->local_address();
  std::printf("udp_echo: serving on %s\n", addr ? addr->to_string().c_str() : "?");
  std::fflush(stdout);
  return (*rt)->block_on(serve(*s));
}
