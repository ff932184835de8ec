// udp_echo PORT|HOST:PORT            serve: send every datagram back to its sender (in batches)
// udp_echo PORT|HOST:PORT --ping N   client: N datagrams to HOST:PORT in bursts of 8
//                                    (PORT alone: 127.0.0.1), check each echo
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "args.hpp"
#include "coil/coil.hpp"
#include "listen_address.hpp"

namespace {

using coil::net::socket_address;
using coil::net::udp_socket;

// Echoes in batches: recv_batch waits for one datagram and takes the ones
// queued behind it with one recvmmsg; send_batch returns them all with
// sendmmsg.
coil::task<int> serve(udp_socket& s) {
  constexpr std::size_t batch = 16;
  std::vector<std::vector<std::byte>> bufs(batch, std::vector<std::byte>(65536));  // any datagram fits
  std::vector<coil::net::incoming_datagram> in(batch);
  std::vector<coil::net::outgoing_datagram> out(batch);
  for (std::size_t k = 0; k < batch; ++k) in[k].buf = bufs[k];
  for (;;) {
    auto n = co_await s.recv_batch(in);
    if (!n) {
      std::fprintf(stderr, "udp_echo: recv: %s\n", n.error().message().c_str());
      co_return 1;
    }
    for (std::size_t k = 0; k < *n; ++k) {
      out[k].data = std::span(bufs[k]).first(in[k].size);
      out[k].to = &in[k].from;
    }
    auto w = co_await s.send_batch(std::span(out).first(*n));
    (void)w;  // only cancellation fails the call; each datagram says how it went
    for (std::size_t k = 0; k < *n; ++k) {
      if (out[k].error) {
        std::fprintf(stderr, "udp_echo: send to %s: %s\n", in[k].from.to_string().c_str(),
                     out[k].error.message().c_str());
      }
    }
  }
}

// Sends in bursts of up to 8 (so the server gets batches to take) and checks
// every echo, in order.
coil::task<int> ping(udp_socket& s, long count) {
  constexpr std::size_t burst = 8;
  long bad = 0;
  std::vector<std::string> msgs(burst);
  std::vector<std::vector<std::byte>> bufs(burst, std::vector<std::byte>(2048));
  std::vector<coil::net::outgoing_datagram> out(burst);
  std::vector<coil::net::incoming_datagram> in(burst);
  for (std::size_t k = 0; k < burst; ++k) in[k].buf = bufs[k];
  for (long i = 0; i < count;) {
    const std::size_t n = std::min<std::size_t>(burst, static_cast<std::size_t>(count - i));
    for (std::size_t k = 0; k < n; ++k) {
      msgs[k] = "ping " + std::to_string(i + static_cast<long>(k));
      out[k].data = std::as_bytes(std::span(msgs[k].data(), msgs[k].size()));
    }
    auto w = co_await s.send_batch(std::span(out).first(n));
    if (!w || *w != n) {
      std::error_code e = w ? std::error_code{} : w.error();
      for (std::size_t k = 0; k < n && !e; ++k) e = out[k].error;
      std::fprintf(stderr, "udp_echo: send: %s\n", e.message().c_str());
      co_return 1;
    }
    std::size_t got = 0;
    while (got < n) {
      // UDP may lose datagrams: wait a bounded time for each echo.
      auto r = co_await coil::with_timeout(s.recv_batch(std::span(in).subspan(got, n - got)), std::chrono::seconds(1));
      if (!r && r.error() != std::errc::timed_out) {
        // ECONNREFUSED: an ICMP error says nothing listens there.
        std::fprintf(stderr, "udp_echo: recv: %s\n", r.error().message().c_str());
        co_return 1;
      }
      if (!r) break;
      got += *r;
    }
    for (std::size_t k = 0; k < n; ++k) {
      const bool intact = k < got && std::string(reinterpret_cast<const char*>(bufs[k].data()), in[k].size) == msgs[k];
      bad += intact ? 0 : 1;
    }
    i += static_cast<long>(n);
  }
  std::printf("udp_echo: %ld sent, %ld echoed intact\n", count, count - bad);
  co_return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage_line = "udp_echo PORT|HOST:PORT [--ping N (1-10000000)]";
  const bool client = argc == 4 && std::strcmp(argv[2], "--ping") == 0;
  if (argc != 2 && !client) return usage(usage_line);
  const auto count = client ? parse_count(argv[3], 1, 10'000'000) : std::optional<long long>(0);
  if (!count) return usage(usage_line);
  auto where = listen_address(argv[1]);
  if (!where) {
    std::fprintf(stderr, "udp_echo: bad address or port %s\n", argv[1]);
    return usage(usage_line);
  }
  if (client && std::strchr(argv[1], ':') == nullptr) where = socket_address::ipv4_loopback(where->port());
  auto rt = coil::runtime::create();
  if (!rt) return 1;
  auto s = client ? udp_socket::connect_to(*where) : udp_socket::bind(*where);
  if (!s) {
    std::fprintf(stderr, "udp_echo: %s\n", s.error().message().c_str());
    return 1;
  }
  if (client) return (*rt)->block_on(ping(*s, static_cast<long>(*count)));
  auto addr = s->local_address();
  std::printf("udp_echo: serving on %s\n", addr ? addr->to_string().c_str() : "?");
  std::fflush(stdout);
  return (*rt)->block_on(serve(*s));
}
