// UDP datagrams over loopback, 64 per iteration, sent and received: one
// co_await per datagram, coil's batches (sendmmsg/recvmmsg from the loop),
// and raw sendmmsg/recvmmsg as the floor. Items are datagrams.
#include <sys/socket.h>

#include <array>
#include <vector>

#include "coil/net/udp.hpp"
#include "micro.hpp"

namespace coil_micro {
namespace {

namespace net = coil::net;
constexpr std::size_t per_iteration = 64;
constexpr std::size_t datagram_bytes = 64;

struct udp_link {
  net::udp_socket tx, rx;
  net::socket_address to;
};

bool open_link(udp_link& l) {
  auto tx = net::udp_socket::bind(net::socket_address::ipv4_loopback(0));
  auto rx = net::udp_socket::bind(net::socket_address::ipv4_loopback(0));
  if (!tx || !rx) return false;
  auto to = rx->local_address();
  if (!to) return false;
  l = {std::move(*tx), std::move(*rx), *to};
  return true;
}

coil::task<void> each_body(benchmark::State& state) {
  udp_link l;
  if (!open_link(l)) co_return state.SkipWithError("udp sockets");
  std::array<std::byte, datagram_bytes> out{}, in{};
  net::socket_address from;
  for (auto _ : state) {
    for (std::size_t i = 0; i < per_iteration; ++i) {
      auto s = co_await l.tx.send_to(out, l.to);
      if (!s) co_return state.SkipWithError("send_to");
    }
    for (std::size_t i = 0; i < per_iteration; ++i) {
      auto r = co_await l.rx.recv_from(in, from);
      if (!r) co_return state.SkipWithError("recv_from");
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * per_iteration));
}
void BM_udp_one_await_per_datagram(benchmark::State& state) { run(each_body(state)); }
BENCHMARK(BM_udp_one_await_per_datagram);

coil::task<void> batch_body(benchmark::State& state) {
  udp_link l;
  if (!open_link(l)) co_return state.SkipWithError("udp sockets");
  std::array<std::byte, datagram_bytes> payload{};
  std::vector<std::array<std::byte, datagram_bytes>> bufs(per_iteration);
  std::vector<net::outgoing_datagram> out(per_iteration);
  std::vector<net::incoming_datagram> in(per_iteration);
  for (std::size_t i = 0; i < per_iteration; ++i) {
    out[i].data = payload;
    out[i].to = &l.to;
    in[i].buf = bufs[i];
  }
  for (auto _ : state) {
    auto s = co_await l.tx.send_batch(out);
    if (!s || *s != per_iteration) co_return state.SkipWithError("send_batch");
    std::size_t got = 0;
    while (got < per_iteration) {
      auto r = co_await l.rx.recv_batch(std::span(in).subspan(got));
      if (!r) co_return state.SkipWithError("recv_batch");
      got += *r;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * per_iteration));
}
void BM_udp_batch(benchmark::State& state) { run(batch_body(state)); }
BENCHMARK(BM_udp_batch);

void BM_udp_raw_mmsg(benchmark::State& state) {
  udp_link l;
  if (!open_link(l)) return state.SkipWithError("udp sockets");
  std::array<std::byte, datagram_bytes> payload{};
  std::vector<std::array<std::byte, datagram_bytes>> bufs(per_iteration);
  std::vector<iovec> out_iov(per_iteration), in_iov(per_iteration);
  std::vector<mmsghdr> out(per_iteration), in(per_iteration);
  for (std::size_t i = 0; i < per_iteration; ++i) {
    out_iov[i] = {payload.data(), payload.size()};
    out[i].msg_hdr.msg_iov = &out_iov[i];
    out[i].msg_hdr.msg_iovlen = 1;
    out[i].msg_hdr.msg_name = const_cast<sockaddr*>(l.to.native());
    out[i].msg_hdr.msg_namelen = l.to.size();
    in_iov[i] = {bufs[i].data(), bufs[i].size()};
    in[i].msg_hdr.msg_iov = &in_iov[i];
    in[i].msg_hdr.msg_iovlen = 1;
  }
  for (auto _ : state) {
    std::size_t sent = 0, got = 0;
    while (sent < per_iteration) {
      const int n = ::sendmmsg(l.tx.fd(), out.data() + sent, static_cast<unsigned>(per_iteration - sent), 0);
      if (n <= 0) return state.SkipWithError("sendmmsg");
      sent += static_cast<std::size_t>(n);
    }
    while (got < per_iteration) {
      const int n = ::recvmmsg(l.rx.fd(), in.data() + got, static_cast<unsigned>(per_iteration - got), 0, nullptr);
      if (n <= 0) return state.SkipWithError("recvmmsg");
      got += static_cast<std::size_t>(n);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * per_iteration));
}
BENCHMARK(BM_udp_raw_mmsg);

}  // namespace
}  // namespace coil_micro
