// Datagram batches (send_batch / recv_batch): boundaries and order kept,
// per-datagram errors, a full socket waited out through the ring, and
// cancellation.
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "test_net_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using net::incoming_datagram;
using net::outgoing_datagram;

// Datagram i: its length varies, every byte says i.
std::vector<char> payload(size_t i) { return std::vector<char>(1 + (i * 37) % 900, static_cast<char>('a' + i % 26)); }

// Receives `count` datagrams with recv_batch (batches of up to `per_call`)
// and checks each against payload(i), in order; returns how many calls it took.
task<size_t> receive_all(net::datagram_socket& s, size_t count, size_t per_call, const net::socket_address* from) {
  std::vector<std::vector<std::byte>> bufs(per_call, std::vector<std::byte>(2048));
  std::vector<incoming_datagram> in(per_call);
  for (size_t k = 0; k < per_call; ++k) in[k].buf = bufs[k];
  size_t got = 0, calls = 0;
  while (got < count) {
    auto n = co_await with_timeout(s.recv_batch(std::span(in).first(std::min(per_call, count - got))), 5s);
    ++calls;
    if (!n) {
      ADD_FAILURE() << "recv_batch: " << n.error().message() << " after " << got;
      co_return calls;
    }
    EXPECT_GE(*n, 1u);
    for (size_t k = 0; k < *n; ++k, ++got) {
      const std::vector<char> want = payload(got);
      EXPECT_EQ(in[k].size, want.size()) << "datagram " << got;
      EXPECT_FALSE(in[k].truncated);
      EXPECT_TRUE(std::equal(want.begin(), want.end(), reinterpret_cast<const char*>(in[k].buf.data())))
          << "datagram " << got;
      if (from != nullptr) {
        EXPECT_EQ(in[k].from, *from);
      }
    }
  }
  co_return calls;
}

// Two UDP sockets on 127.0.0.1; `to` is b's address.
struct udp_pair {
  net::udp_socket a, b;
  net::socket_address to;
};
std::optional<udp_pair> loopback_pair() {
  auto a = net::udp_socket::bind(net::socket_address::ipv4_loopback(0));
  auto b = net::udp_socket::bind(net::socket_address::ipv4_loopback(0));
  if (!a || !b) return std::nullopt;
  auto to = b->local_address();
  if (!to) return std::nullopt;
  return udp_pair{std::move(*a), std::move(*b), *to};
}

TEST(NetDgramBatch, UdpBatchesKeepBoundariesAndOrder) {
  test::run([]() -> task<void> {
    auto p = loopback_pair();
    CO_ASSERT_TRUE(p.has_value());
    auto& a = p->a;
    auto& b = p->b;
    auto& to = p->to;
    auto from = a.local_address();
    CO_ASSERT_OK(from);
    constexpr size_t n = 100;  // more than one sendmmsg chunk
    std::vector<std::vector<char>> data;
    std::vector<outgoing_datagram> out(n);
    for (size_t i = 0; i < n; ++i) data.push_back(payload(i));
    for (size_t i = 0; i < n; ++i) out[i] = {test::as_bytes(data[i]), &to, {}};
    auto sent = co_await a.send_batch(out);
    CO_ASSERT_OK(sent);
    EXPECT_EQ(*sent, n);
    for (const outgoing_datagram& d : out) EXPECT_FALSE(d.error) << d.error.message();
    // All queued already: recv_batch takes up to 16 per call without the ring.
    const size_t calls = co_await receive_all(b, n, 16, &*from);
    EXPECT_LE(calls, (n + 15) / 16 + 1);
  }());
}

TEST(NetDgramBatch, RecvBatchWaitsForOneThenTakesWhatIsQueued) {
  test::run([]() -> task<void> {
    auto p = loopback_pair();
    CO_ASSERT_TRUE(p.has_value());
    auto& a = p->a;
    auto& b = p->b;
    auto& to = p->to;
    std::array<std::byte, 64> b0, b1, b2, b3;
    std::array<std::byte, 4> tiny;
    std::array<incoming_datagram, 5> in;
    in[0].buf = b0;
    in[1].buf = b1;
    in[2].buf = tiny;  // the third datagram does not fit
    in[3].buf = b2;
    in[4].buf = b3;
    std::optional<result<size_t>> got;
    auto reader = [](net::udp_socket& s, std::span<incoming_datagram> v,
                     std::optional<result<size_t>>& out) -> task<void> { out.emplace(co_await s.recv_batch(v)); };
    auto h = runtime::current()->spawn(reader(b, in, got));
    auto y = co_await sleep_for(2ms);
    CO_ASSERT_OK(y);
    EXPECT_FALSE(got.has_value()) << "recv_batch returned with nothing queued";
    // Three datagrams land in one turn: the waiting recv takes the first,
    // recvmmsg the two behind it.
    for (const char* text : {"one", "two", "three!"}) {
      CO_ASSERT_TRUE(::sendto(a.fd(), text, std::strlen(text), 0, to.native(), to.size()) > 0);
    }
    co_await std::move(h);
    CO_ASSERT_TRUE(got.has_value());
    CO_ASSERT_OK(*got);
    EXPECT_EQ(**got, 3u);
    EXPECT_EQ(test::text_of(std::span(b0).first(in[0].size)), "one");
    EXPECT_EQ(test::text_of(std::span(b1).first(in[1].size)), "two");
    EXPECT_EQ(in[2].size, 4u);
    EXPECT_TRUE(in[2].truncated);
    EXPECT_EQ(test::text_of(std::span(tiny)), "thre");
    EXPECT_EQ(in[0].from, *a.local_address());
    auto empty = co_await b.recv_batch({});
    CO_ASSERT_OK(empty);
    EXPECT_EQ(*empty, 0u);
  }());
}

TEST(NetDgramBatch, AFailingDatagramDoesNotStopTheRest) {
  test::run([]() -> task<void> {
    auto p = loopback_pair();
    CO_ASSERT_TRUE(p.has_value());
    auto& a = p->a;
    auto& b = p->b;
    auto& to = p->to;
    std::vector<char> first = payload(0), second = payload(1), huge(70000, 'h');  // over UDP's 65,507 bytes
    std::vector<outgoing_datagram> out{{test::as_bytes(first), &to, {}},
                                       {test::as_bytes(huge), &to, {}},
                                       {test::as_bytes(first), nullptr, {}},  // unconnected: no peer
                                       {test::as_bytes(second), &to, {}}};
    auto sent = co_await a.send_batch(out);
    CO_ASSERT_OK(sent);
    EXPECT_EQ(*sent, 2u);
    EXPECT_FALSE(out[0].error);
    EXPECT_EQ(out[1].error, std::errc::message_size);
    EXPECT_EQ(out[2].error, std::errc::destination_address_required);
    EXPECT_FALSE(out[3].error);
    const size_t calls = co_await receive_all(b, 2, 4, nullptr);
    EXPECT_GE(calls, 1u);
  }());
}

// A Unix datagram pair with a small send buffer and a slow reader: sendmmsg
// fills it and says EAGAIN, send_batch waits through the ring, and every
// datagram arrives in order.
TEST(NetDgramBatch, AFullSocketIsWaitedOutThroughTheRing) {
  test::run([]() -> task<void> {
    auto pair = net::unix_datagram::pair();
    CO_ASSERT_OK(pair);
    net::unix_datagram& a = pair->first;
    net::unix_datagram& b = pair->second;
    CO_ASSERT_OK(a.set_send_buffer_size(4096));
    constexpr size_t n = 400;
    std::vector<std::vector<char>> data;
    std::vector<outgoing_datagram> out(n);
    for (size_t i = 0; i < n; ++i) data.push_back(payload(i));
    for (size_t i = 0; i < n; ++i) out[i].data = test::as_bytes(data[i]);
    auto reader = [](net::unix_datagram& s) -> task<size_t> {
      auto z = co_await sleep_for(5ms);  // let the sender fill the socket first
      (void)z;
      co_return co_await receive_all(s, n, 8, nullptr);
    };
    auto h = runtime::current()->spawn(reader(b));
    const auto ring_sends = [] { return runtime::current()->stats().io.of(IORING_OP_SEND).pushed; };
    const uint64_t before = ring_sends();
    auto sent = co_await a.send_batch(out);
    CO_ASSERT_OK(sent);
    EXPECT_EQ(*sent, n);
    for (const outgoing_datagram& d : out) EXPECT_FALSE(d.error) << d.error.message();
    EXPECT_GT(ring_sends(), before) << "never waited for room";
    const size_t calls = co_await std::move(h);
    EXPECT_GE(calls, 1u);
  }());
}

TEST(NetDgramBatch, AWaitingRecvBatchIsCancelled) {
  test::run([]() -> task<void> {
    auto b = net::udp_socket::bind(net::socket_address::ipv4_loopback(0));
    CO_ASSERT_OK(b);
    std::array<std::byte, 16> buf;
    std::array<incoming_datagram, 2> in;
    in[0].buf = buf;
    in[1].buf = buf;
    auto r = co_await with_timeout(b->recv_batch(in), 20ms);
    CO_EXPECT_FAIL(r, std::errc::timed_out);
  }());
}

}  // namespace
}  // namespace coil
