// The epoll driver skips the recv that would say EAGAIN: after a short read
// of a TCP socket (or an EAGAIN) the queue is known empty, and with
// edge-triggered epoll any later data raises an edge, so the next read waits
// for it directly. These tests run on an explicit epoll runtime and check
// that nothing is missed: data or an end of stream that arrives before the
// next read, urgent data, and reads that say nothing about the queue
// (datagrams, peeks, Unix streams), and multishot streams.
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "test_net_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

runtime_options on_epoll() {
  runtime_options o;
  o.driver = driver_kind::epoll;
  return o;
}

const driver_stats& io_stats() { return runtime::current()->driver().stats(); }

std::vector<std::byte> message(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 13 + seed) & 0xff);
  return v;
}

// A connected loopback TCP pair: {accepted, connected}.
task<result<std::pair<net::tcp_stream, net::tcp_stream>>> tcp_pair(test::loopback_listener& lb) {
  auto both = co_await when_all(lb.listener.accept(), net::tcp_stream::connect(lb.addr));
  auto& [server, client] = both;
  if (!server) co_return fail(server.error());
  if (!client) co_return fail(client.error());
  co_return std::pair{std::move(*server), std::move(*client)};
}

// Runs body(accepted, connected) on an epoll runtime with a fresh loopback
// TCP pair.
template <class F>
void on_tcp_pair(F body) {
  auto lb = test::listen_loopback();
  test::run(
      [&]() -> task<void> {
        auto p = co_await tcp_pair(lb);
        CO_ASSERT_OK(p);
        co_await body(p->first, p->second);
      }(),
      on_epoll());
}

// Puts a's fd in the epoll set: a read that has to wait for b's byte.
template <class Socket>
task<bool> in_epoll_set(Socket& a, Socket& b, std::vector<std::byte>& in) {
  const std::byte x{42};
  auto wr = co_await when_all(a.recv(in), b.send(std::span(&x, 1)));
  auto& [r, w] = wr;
  const bool ok = r && w && *r == 1;
  co_return ok;
}

// Runs body(a, b, in) on an epoll runtime with a fresh Socket::pair() whose
// a is already in the epoll set.
template <class Socket, class F>
void on_registered_pair(F body) {
  auto p = Socket::pair();
  ASSERT_TRUE(p);
  auto& a = p->first;
  auto& b = p->second;
  test::run(
      [&]() -> task<void> {
        std::vector<std::byte> in(64);
        const bool set = co_await in_epoll_set(a, b, in);
        CO_ASSERT_TRUE(set);
        co_await body(a, b, in);
      }(),
      on_epoll());
}

// A ping-pong against a thread echoing on the raw peer: each reply arrives
// after the read is awaited, so every read after the first short one would
// have been a recv saying EAGAIN. read(stream, buffer) reads once.
template <class Read>
void ping_pong_takes_no_empty_read(Read read) {
  auto lb = test::listen_loopback();
  constexpr int trips = 300;
  test::run(
      [&]() -> task<void> {
        auto p = co_await tcp_pair(lb);
        CO_ASSERT_OK(p);
        auto& [a, b] = *p;
        std::thread echo([peer = b.fd()] {
          char buf[64];
          for (int i = 0; i < trips; ++i) {
            std::size_t got = 0;
            while (got < sizeof buf) {
              const ssize_t n = ::recv(peer, buf + got, sizeof buf - got, 0);
              if (n <= 0) return;
              got += static_cast<std::size_t>(n);
            }
            if (::send(peer, buf, sizeof buf, MSG_NOSIGNAL) != 64) return;
          }
        });
        const uint64_t tried0 = io_stats().submitted, skips0 = io_stats().drained_skips;
        std::vector<std::byte> in(128);
        for (int i = 0; i < trips; ++i) {
          const auto out = message(64, static_cast<unsigned>(i));
          auto w = co_await a.send_all(out);
          if (!w) break;
          auto r = co_await with_timeout(read(a, std::span(in)), 10s);
          if (!r || *r != 64) {  // one message at a time: always short of 128
            ADD_FAILURE() << "trip " << i << ": " << (r ? std::to_string(*r) + " bytes" : r.error().message());
            break;
          }
          EXPECT_EQ(0, std::memcmp(in.data(), out.data(), 64));
        }
        const uint64_t tried = io_stats().submitted - tried0, skips = io_stats().drained_skips - skips0;
        (void)::shutdown(b.fd(), SHUT_RDWR);  // ends the echo thread if a trip failed
        echo.join();
        // A send and a read per trip; the first read had nothing to go on.
        EXPECT_GE(skips, uint64_t{trips - 1});
        EXPECT_LE(tried, uint64_t{2 * trips + 1});
      }(),
      on_epoll());
}

TEST(EpollReadiness, PingPongTakesNoEmptyRecv) {
  ping_pong_takes_no_empty_read([](net::tcp_stream& s, std::span<std::byte> in) { return s.recv(in); });
}

// Vectored: short of the iovecs' total (two halves of the buffer).
TEST(EpollReadiness, VectoredPingPongTakesNoEmptyRecv) {
  iovec iov[2];
  ping_pong_takes_no_empty_read([&iov](net::tcp_stream& s, std::span<std::byte> in) {
    iov[0] = {in.data(), in.size() / 2};
    iov[1] = {in.data() + in.size() / 2, in.size() - in.size() / 2};
    return s.recvv(iov);
  });
}

enum class setup { unregistered, registered, edge_taken_by_a_park };

// Data written after a read emptied the queue and before the next read is
// awaited: the next read must see it, whether the fd was already in the
// epoll set (its first read had to wait) or not, and whether a park took
// the data's edge meanwhile (then the read must not wait for another).
TEST(EpollReadiness, DataArrivingBeforeTheNextReadIsNotMissed) {
  for (const setup how : {setup::unregistered, setup::registered, setup::edge_taken_by_a_park}) {
    SCOPED_TRACE(static_cast<int>(how));
    on_tcp_pair([&](net::tcp_stream& a, net::tcp_stream& b) -> task<void> {
      std::vector<std::byte> in(64);
      const auto one = message(10, 1), two = message(20, 2);
      if (how == setup::unregistered) {
        CO_ASSERT_TRUE(::send(b.fd(), one.data(), one.size(), MSG_NOSIGNAL) == 10);
        auto z = co_await sleep_for(1ms);  // on its way through loopback
        CO_ASSERT_OK(z);
        auto r0 = co_await a.recv(in);  // there already: no wait, never registered
        CO_ASSERT_OK(r0);
        CO_ASSERT_TRUE(*r0 == 10);
      } else {
        const bool set = co_await in_epoll_set(a, b, in);
        CO_ASSERT_TRUE(set);
        CO_ASSERT_TRUE(::send(b.fd(), one.data(), one.size(), MSG_NOSIGNAL) == 10);
        auto r0 = co_await a.recv(in);
        CO_ASSERT_OK(r0);
        CO_ASSERT_TRUE(*r0 == 10);  // short: the queue is known empty
      }
      CO_ASSERT_TRUE(::send(b.fd(), two.data(), two.size(), MSG_NOSIGNAL) == 20);
      if (how == setup::edge_taken_by_a_park) {
        auto z = co_await sleep_for(1ms);
        CO_ASSERT_OK(z);
      }
      auto r1 = co_await with_timeout(a.recv(in), 5s);
      CO_ASSERT_OK(r1);
      CO_ASSERT_TRUE(*r1 == 20);
      EXPECT_EQ(0, std::memcmp(in.data(), two.data(), 20));
      EXPECT_GT(io_stats().drained_skips, 0u);
    });
  }
}

// A vectored read that fills every iovec says nothing of what is left: with
// more queued and its edge already taken by a park, the next read must not
// wait for another edge.
TEST(EpollReadiness, VectoredReadThatFillsItsBuffersIsNotMarkedEmpty) {
  on_tcp_pair([&](net::tcp_stream& a, net::tcp_stream& b) -> task<void> {
    std::vector<std::byte> in(64);
    const bool set = co_await in_epoll_set(a, b, in);
    CO_ASSERT_TRUE(set);
    const auto data = message(100, 7);
    CO_ASSERT_TRUE(::send(b.fd(), data.data(), data.size(), MSG_NOSIGNAL) == 100);
    auto z = co_await sleep_for(1ms);  // a park takes the edge
    CO_ASSERT_OK(z);
    iovec iov[2] = {{in.data(), 24}, {in.data() + 24, 40}};
    auto r0 = co_await with_timeout(a.recvv(iov), 5s);
    CO_ASSERT_OK(r0);
    CO_ASSERT_TRUE(*r0 == 64);
    auto r1 = co_await with_timeout(a.recvv(iov), 5s);
    CO_ASSERT_OK(r1);
    CO_ASSERT_TRUE(*r1 == 36);
    EXPECT_EQ(0, std::memcmp(in.data(), data.data() + 64, 36));
  });
}

// The peer's end queued behind the data: a short read stops at it, and no
// further edge will come, so the read after it must still see the end.
TEST(EpollReadiness, EndOfStreamAfterAShortReadIsNotMissed) {
  for (const setup how : {setup::unregistered, setup::registered, setup::edge_taken_by_a_park}) {
    SCOPED_TRACE(static_cast<int>(how));
    on_tcp_pair([&](net::tcp_stream& a, net::tcp_stream& b) -> task<void> {
      std::vector<std::byte> in(64);
      if (how != setup::unregistered) {
        const bool set = co_await in_epoll_set(a, b, in);
        CO_ASSERT_TRUE(set);
      }
      const auto last = message(10, 6);
      CO_ASSERT_TRUE(::send(b.fd(), last.data(), last.size(), MSG_NOSIGNAL) == 10);
      CO_ASSERT_TRUE(::shutdown(b.fd(), SHUT_WR) == 0);
      if (how != setup::registered) {
        auto z = co_await sleep_for(1ms);
        CO_ASSERT_OK(z);
      }
      auto r0 = co_await with_timeout(a.recv(in), 5s);
      CO_ASSERT_OK(r0);
      CO_ASSERT_TRUE(*r0 == 10);
      auto r1 = co_await with_timeout(a.recv(in), 5s);
      CO_ASSERT_OK(r1);
      EXPECT_EQ(*r1, 0u);
    });
  }
}

// TCP urgent data: a read stops short at the urgent mark with the rest of
// the stream queued behind it and its edge already taken.
TEST(EpollReadiness, UrgentDataDoesNotHideTheRestOfTheStream) {
  on_tcp_pair([&](net::tcp_stream& a, net::tcp_stream& b) -> task<void> {
    std::vector<std::byte> in(64);
    const bool set = co_await in_epoll_set(a, b, in);
    CO_ASSERT_TRUE(set);
    CO_ASSERT_TRUE(::send(b.fd(), "abc", 3, MSG_NOSIGNAL) == 3);
    CO_ASSERT_TRUE(::send(b.fd(), "X", 1, MSG_NOSIGNAL | MSG_OOB) == 1);
    CO_ASSERT_TRUE(::send(b.fd(), "def", 3, MSG_NOSIGNAL) == 3);
    auto z = co_await sleep_for(1ms);
    CO_ASSERT_OK(z);
    auto r0 = co_await with_timeout(a.recv(in), 5s);
    CO_ASSERT_OK(r0);
    CO_ASSERT_TRUE(*r0 == 3);  // up to the mark
    EXPECT_EQ(0, std::memcmp(in.data(), "abc", 3));
    auto r1 = co_await with_timeout(a.recv(in), 5s);
    CO_ASSERT_OK(r1);
    CO_ASSERT_TRUE(*r1 == 3);
    EXPECT_EQ(0, std::memcmp(in.data(), "def", 3));
  });
}

// A Unix stream read stops after bytes that carried descriptors, with more
// queued: Unix stream reads are always tried.
TEST(EpollReadiness, UnixStreamReadsAreAlwaysTried) {
  on_registered_pair<net::unix_stream>(
      [](net::unix_stream& a, net::unix_stream& b, std::vector<std::byte>& in) -> task<void> {
        // "abc" with a descriptor attached, then "def".
        char data[] = "abc";
        iovec iov{data, 3};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        cmsghdr* cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        const int passed = 0;  // stdin: any open descriptor will do
        std::memcpy(CMSG_DATA(cm), &passed, sizeof passed);
        CO_ASSERT_TRUE(::sendmsg(b.fd(), &m, MSG_NOSIGNAL) == 3);
        CO_ASSERT_TRUE(::send(b.fd(), "def", 3, MSG_NOSIGNAL) == 3);
        auto z = co_await sleep_for(1ms);
        CO_ASSERT_OK(z);
        std::size_t got = 0;
        while (got < 6) {
          auto r = co_await with_timeout(a.recv(std::span(in).subspan(got)), 5s);
          CO_ASSERT_OK(r);
          CO_ASSERT_TRUE(*r > 0);
          got += *r;
        }
        EXPECT_EQ(0, std::memcmp(in.data(), "abcdef", 6));
        EXPECT_EQ(io_stats().drained_skips, 0u);
      });
}

// Short datagrams say nothing about what else is queued: two queued
// datagrams read one by one, no waiting.
TEST(EpollReadiness, ShortDatagramsDoNotMarkTheQueueEmpty) {
  on_registered_pair<net::unix_datagram>(
      [](net::unix_datagram& a, net::unix_datagram& b, std::vector<std::byte>& in) -> task<void> {
        const auto one = message(10, 3), two = message(12, 4);
        CO_ASSERT_TRUE(::send(b.fd(), one.data(), one.size(), 0) == 10);
        CO_ASSERT_TRUE(::send(b.fd(), two.data(), two.size(), 0) == 12);
        auto z = co_await sleep_for(1ms);  // a park takes the edge: none is left for a wait
        CO_ASSERT_OK(z);
        auto r0 = co_await with_timeout(a.recv(in), 5s);
        CO_ASSERT_OK(r0);
        EXPECT_EQ(*r0, 10u);
        auto r1 = co_await with_timeout(a.recv(in), 5s);
        CO_ASSERT_OK(r1);
        EXPECT_EQ(*r1, 12u);
        EXPECT_EQ(0, std::memcmp(in.data(), two.data(), 12));
        EXPECT_EQ(io_stats().drained_skips, 0u);
      });
}

// A short peek leaves the bytes queued: the read after it takes them at once.
TEST(EpollReadiness, APeekDoesNotMarkTheQueueEmpty) {
  on_tcp_pair([&](net::tcp_stream& a, net::tcp_stream& b) -> task<void> {
    std::vector<std::byte> in(64);
    const bool set = co_await in_epoll_set(a, b, in);
    CO_ASSERT_TRUE(set);
    const uint64_t skips0 = io_stats().drained_skips;
    const auto one = message(10, 5);
    CO_ASSERT_TRUE(::send(b.fd(), one.data(), one.size(), MSG_NOSIGNAL) == 10);
    auto z = co_await sleep_for(1ms);
    CO_ASSERT_OK(z);
    auto peeked = co_await with_timeout(a.recv(in, MSG_PEEK), 5s);
    CO_ASSERT_OK(peeked);
    EXPECT_EQ(*peeked, 10u);
    auto r = co_await with_timeout(a.recv(in), 5s);
    CO_ASSERT_OK(r);
    EXPECT_EQ(*r, 10u);
    EXPECT_EQ(0, std::memcmp(in.data(), one.data(), 10));
    EXPECT_EQ(io_stats().drained_skips, skips0);
  });
}

// The multishot emulation re-reads after every result; after a short one it
// waits for the next edge instead, and still delivers everything in order.
TEST(EpollReadiness, MultishotRecvWaitsAfterAShortRead) {
  on_tcp_pair([&](net::tcp_stream& a, net::tcp_stream& b) -> task<void> {
    auto ring = buffer_ring::create(runtime::current()->driver(), 8, 256);
    CO_ASSERT_OK(ring);
    auto rx = a.recv_multishot(**ring);
    constexpr int messages = 50;
    for (int i = 0; i < messages; ++i) {
      const auto out = message(32, static_cast<unsigned>(i));
      auto w = co_await b.send_all(out);
      CO_ASSERT_OK(w);
      auto got = co_await rx.next();
      CO_ASSERT_OK(got);
      CO_ASSERT_TRUE(got->size() == 32);
      EXPECT_EQ(0, std::memcmp(got->data(), out.data(), 32));
    }
    EXPECT_GE(io_stats().drained_skips, uint64_t{messages - 1});
  });
}

}  // namespace
