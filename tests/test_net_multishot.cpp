// Multishot accept and recv with a provided-buffer ring, and zero-copy send:
// real sockets on 127.0.0.1, on io_uring and (emulated) on epoll.
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_net_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using net::rx_buffer;
using net::tcp_stream;

// Byte i of connection c's stream.
std::byte pattern(size_t c, size_t i) { return static_cast<std::byte>((c * 31 + i * 7 + i / 251) & 0xff); }

buffer_ring::ptr make_ring(uint32_t count, uint32_t size) {
  auto r = buffer_ring::create(runtime::current()->driver(), count, size);
  EXPECT_TRUE(r) << r.error().message();
  if (!r) std::abort();
  return std::move(*r);
}

// Raw blocking clients, connected before the server runs.
std::vector<unique_fd> connect_raw(const net::socket_address& addr, size_t n) {
  std::vector<unique_fd> v;
  for (size_t i = 0; i < n; ++i) {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(::connect(fd.get(), addr.native(), addr.size()), 0) << std::strerror(errno);
    v.push_back(std::move(fd));
  }
  return v;
}

TEST(NetMultishot, AcceptStreamYieldsEveryConnectionFromOneSubmission) {
  constexpr size_t clients = 40;
  auto lb = test::listen_loopback();
  auto conns = connect_raw(lb.addr, clients);
  for (size_t i = 0; i < clients; ++i) {
    const char c = static_cast<char>('a' + i % 26);
    ASSERT_EQ(::send(conns[i].get(), &c, 1, MSG_NOSIGNAL), 1);
  }
  uint64_t pushed = 0, extra = 0;
  std::string seen;
  test::run([&]() -> task<void> {
    auto incoming = lb.listener.incoming();
    const uint64_t pushed_before = runtime::current()->driver().stats().pushed;
    for (size_t i = 0; i < clients; ++i) {
      auto s = co_await incoming.next();
      CO_ASSERT_OK(s);
      std::array<std::byte, 1> b{};
      auto r = co_await s->recv_exact(b);
      CO_ASSERT_OK(r);
      seen.push_back(static_cast<char>(b[0]));
      auto w = co_await s->send_all(b);
      CO_ASSERT_OK(w);
    }
    const auto& st = runtime::current()->driver().stats();
    pushed = st.pushed - pushed_before;
    extra = st.extra_results;
  }());
  ASSERT_EQ(seen.size(), clients);
  std::sort(seen.begin(), seen.end());
  std::string want;
  for (size_t i = 0; i < clients; ++i) want.push_back(static_cast<char>('a' + i % 26));
  std::sort(want.begin(), want.end());
  EXPECT_EQ(seen, want);
  for (auto& c : conns) {
    char back;
    EXPECT_EQ(::recv(c.get(), &back, 1, MSG_WAITALL), 1);
  }
  // Each connection cost one recv and one send; accepting all of them took
  // a few arms, not one per connection.
  EXPECT_LT(pushed, 2 * clients + clients / 2);
  EXPECT_GE(extra, clients / 2);
}

// One arm accepts the whole backlog at once; with 64 or more connections
// unclaimed the stream stops accepting, so later ones wait in the backlog.
TEST(NetMultishot, AcceptStreamPausesAtHighWaterAndLosesNothing) {
  constexpr size_t first_wave = 2 * net::accept_stream<tcp_stream>::high_water;
  constexpr size_t second_wave = 20;
  auto lb = test::listen_loopback({.backlog = 1024});
  auto conns = connect_raw(lb.addr, first_wave);
  size_t accepted = 0, queued_after_first = 0, queued_after_second = 0;
  test::run([&]() -> task<void> {
    auto incoming = lb.listener.incoming();
    auto first = co_await incoming.next();
    CO_ASSERT_OK(first);
    ++accepted;
    auto z = co_await sleep_for(5ms);
    CO_ASSERT_OK(z);
    queued_after_first = incoming.queued();
    for (auto& c : connect_raw(lb.addr, second_wave)) conns.push_back(std::move(c));
    auto z2 = co_await sleep_for(10ms);
    CO_ASSERT_OK(z2);
    queued_after_second = incoming.queued();
    EXPECT_FALSE(incoming.armed());
    while (accepted < first_wave + second_wave) {
      auto s = co_await incoming.next();
      CO_ASSERT_OK(s);
      ++accepted;
    }
  }());
  EXPECT_EQ(accepted, first_wave + second_wave);
  // io_uring's arm drains the whole backlog at once; epoll stops at the mark.
  EXPECT_GE(queued_after_first, net::accept_stream<tcp_stream>::high_water);
  EXPECT_EQ(queued_after_second, queued_after_first) << "accepted while paused";
}

// Connections arriving while the consumer keeps up: the stream pauses at the
// high-water mark and the consumer drains the queue before the pause takes
// effect. The stream must arm again for the waiting consumer (it once slept
// forever here with 10,000 clients).
TEST(NetMultishot, AcceptStreamRearmsForAWaitingConsumerAfterItsPause) {
  constexpr size_t clients = 1500;
  test::fd_limit limit;
  if (!limit.raise_to(2 * clients + 256)) GTEST_SKIP() << "cannot raise RLIMIT_NOFILE";
  auto lb = test::listen_loopback({.backlog = 4096});
  std::vector<unique_fd> conns;
  std::thread connector([&] { conns = connect_raw(lb.addr, clients); });
  size_t accepted = 0;
  test::run([&]() -> task<void> {
    auto incoming = lb.listener.incoming();
    std::vector<tcp_stream> held;
    held.reserve(clients);
    while (accepted < clients) {
      auto s = co_await incoming.next();
      CO_ASSERT_OK(s);
      held.push_back(std::move(*s));
      ++accepted;
    }
  }());
  connector.join();
  EXPECT_EQ(accepted, clients);
  EXPECT_EQ(conns.size(), clients);
}

TEST(NetMultishot, AcceptStreamUnderFdLimitResumesAfterEmfile) {
  constexpr size_t clients = 200;
  test::fd_limit limit;
  auto lb = test::listen_loopback({.backlog = 512});
  std::vector<unique_fd> conns;
  for (auto& fd : connect_raw(lb.addr, clients)) {
    unique_fd high(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 1000));
    ASSERT_TRUE(high.valid()) << std::strerror(errno);
    conns.push_back(std::move(high));
  }
  size_t accepted = 0, emfile = 0;
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  ASSERT_TRUE(limit.lower_to(64));
  (*rt)->block_on([&]() -> task<void> {
    auto incoming = lb.listener.incoming();
    std::vector<tcp_stream> held;
    while (accepted < clients) {
      auto s = co_await incoming.next();
      if (!s) {
        CO_ASSERT_TRUE(s.error() == std::errc::too_many_files_open);
        ++emfile;
        held.clear();  // free descriptors; the next next() arms again
        continue;
      }
      ++accepted;
      held.push_back(std::move(*s));
    }
  }());
  rt->reset();
  limit.restore();
  EXPECT_EQ(accepted, clients);
  EXPECT_GT(emfile, 0u) << "the limit was never reached; the test proves nothing";
}

// A 4-buffer ring shared by 16 connections that each send
// 1 MiB. Buffers run out constantly (ENOBUFS); every byte must still arrive,
// in order.
TEST(NetMultishot, RecvFourBufferRingSixteenConnectionsInOrder) {
  constexpr size_t conns = 16;
  constexpr size_t bytes = 1 << 20;
  auto lb = test::listen_loopback();
  size_t verified = 0;
  uint64_t starvations = 0;
  test::run([&]() -> task<void> {
    auto ring = make_ring(4, 4096);
    auto receiver = [&](tcp_stream s) -> task<result<size_t>> {
      auto rx = s.recv_multishot(*ring);
      std::array<std::byte, 8> first{};
      auto id = co_await s.recv_exact(first);  // which sender this is
      if (!id) co_return fail(id.error());
      size_t c = 0;
      std::memcpy(&c, first.data(), sizeof c);
      size_t got = 0;
      for (size_t n = 0;; ++n) {
        auto b = co_await rx.next();
        if (!b) co_return fail(b.error());
        if (b->empty()) break;
        for (size_t i = 0; i < b->size(); ++i) {
          if (b->data()[i] != pattern(c, got + i)) co_return fail(std::errc::illegal_byte_sequence);
        }
        got += b->size();
        if (n % 16 == 0) {
          // Hold the buffer a while: the other streams find the ring empty.
          auto z = co_await sleep_for(100us);
          if (!z) co_return fail(z.error());
        }
      }
      co_return got;
    };
    // A receiver identifies its sender by an 8-byte id sent first with a
    // plain send; recv_exact runs before the multishot is armed by next().
    auto tagged_sender = [&](size_t c) -> task<result<void>> {
      auto s = co_await tcp_stream::connect(lb.addr);
      if (!s) co_return fail(s.error());
      std::array<std::byte, 8> id{};
      std::memcpy(id.data(), &c, sizeof c);
      auto w0 = co_await s->send_all(id);
      if (!w0) co_return fail(w0.error());
      std::vector<std::byte> data(bytes);
      for (size_t i = 0; i < bytes; ++i) data[i] = pattern(c, i);
      for (size_t off = 0; off < bytes; off += 16384) {
        auto w = co_await s->send_all(std::span(data).subspan(off, 16384));
        if (!w) co_return fail(w.error());
      }
      co_return co_await s->close();
    };
    std::vector<join_handle<result<void>>> senders;
    for (size_t c = 0; c < conns; ++c) senders.push_back(runtime::current()->spawn(tagged_sender(c)));
    std::vector<join_handle<result<size_t>>> receivers;
    for (size_t c = 0; c < conns; ++c) {
      auto s = co_await lb.listener.accept();
      CO_ASSERT_OK(s);
      receivers.push_back(runtime::current()->spawn(receiver(std::move(*s))));
    }
    for (auto& h : senders) {
      auto r = co_await std::move(h);
      EXPECT_TRUE(r) << r.error().message();
    }
    for (auto& h : receivers) {
      auto r = co_await std::move(h);
      EXPECT_TRUE(r) << r.error().message();
      if (r && *r == bytes) ++verified;
    }
    EXPECT_EQ(ring->available(), ring->count()) << "every buffer went back";
    starvations = ring->starvations();
  }());
  EXPECT_EQ(verified, conns);
  EXPECT_GT(starvations, 0u) << "the ring never ran dry; ENOBUFS re-arming was not exercised";
}

// A tiny CQ: the kernel ends the multishot recv without IORING_CQE_F_MORE
// when it cannot post more results; the stream must re-arm and lose nothing.
TEST(NetMultishot, RecvRearmsWhenTheKernelDropsMore) {
  constexpr size_t bytes = 4 << 20;
  auto lb = test::listen_loopback();
  runtime_options opts;
  opts.uring.entries = 2;  // CQ of 4
  size_t got = 0;
  uint64_t pushes = 0;
  test::run(
      [&]() -> task<void> {
        auto ring = make_ring(256, 1024);
        auto send_side = [&]() -> task<result<void>> {
          auto s = co_await tcp_stream::connect(lb.addr);
          if (!s) co_return fail(s.error());
          std::vector<std::byte> data(bytes);
          for (size_t i = 0; i < bytes; ++i) data[i] = pattern(3, i);
          auto w = co_await s->send_all(data);
          if (!w) co_return fail(w.error());
          co_return co_await s->close();
        };
        auto h = runtime::current()->spawn(send_side());
        auto s = co_await lb.listener.accept();
        CO_ASSERT_OK(s);
        auto rx = s->recv_multishot(*ring);
        const uint64_t before = runtime::current()->driver().stats().pushed;
        for (;;) {
          // Fall behind on purpose so results pile up in the CQ.
          auto z = co_await sleep_for(100us);
          CO_ASSERT_OK(z);
          auto b = co_await rx.next();
          CO_ASSERT_OK(b);
          if (b->empty()) break;
          for (size_t i = 0; i < b->size(); ++i) {
            if (b->data()[i] != pattern(3, got + i)) {
              ADD_FAILURE() << "byte " << got + i << " differs";
              co_return;
            }
          }
          got += b->size();
        }
        pushes = runtime::current()->driver().stats().pushed - before;
        auto r = co_await std::move(h);
        CO_EXPECT_OK(r);
      }(),
      opts);
  EXPECT_EQ(got, bytes);
  if (test::default_driver() == driver_kind::uring) {
    EXPECT_GT(pushes, 1u) << "the multishot was never re-armed; CQ pressure was not exercised";
  }
}

// 200 idle connections share an 8-buffer ring: waiting costs no buffer.
TEST(NetMultishot, IdleConnectionsHoldNoBuffer) {
  constexpr size_t conns = 200;
  auto lb = test::listen_loopback({.backlog = 512});
  auto clients = connect_raw(lb.addr, conns);
  size_t echoed = 0;
  test::run([&]() -> task<void> {
    auto ring = make_ring(8, 512);
    std::vector<tcp_stream> servers;
    servers.reserve(conns);
    for (size_t i = 0; i < conns; ++i) {
      auto s = co_await lb.listener.accept();
      CO_ASSERT_OK(s);
      servers.push_back(std::move(*s));
    }
    auto serve = [&](tcp_stream& s) -> task<void> {
      auto rx = s.recv_multishot(*ring);
      auto b = co_await rx.next();
      CO_ASSERT_OK(b);
      CO_ASSERT_TRUE(!b->empty());
      auto w = co_await s.send_all(b->bytes());
      CO_ASSERT_OK(w);
      ++echoed;
    };
    std::vector<join_handle<void>> hs;
    for (auto& s : servers) hs.push_back(runtime::current()->spawn(serve(s)));
    auto z = co_await sleep_for(20ms);  // every stream armed and idle
    CO_ASSERT_OK(z);
    EXPECT_EQ(ring->available(), ring->count());
    for (size_t i = 0; i < conns; ++i) {
      const std::string m = "msg-" + std::to_string(i);
      EXPECT_EQ(::send(clients[i].get(), m.data(), m.size(), MSG_NOSIGNAL), static_cast<ssize_t>(m.size()));
    }
    for (auto& h : hs) co_await std::move(h);
    EXPECT_EQ(ring->available(), ring->count());
  }());
  EXPECT_EQ(echoed, conns);
  for (size_t i = 0; i < conns; ++i) {
    const std::string m = "msg-" + std::to_string(i);
    std::string back(m.size(), '\0');
    EXPECT_EQ(::recv(clients[i].get(), back.data(), back.size(), MSG_WAITALL), static_cast<ssize_t>(m.size()));
    EXPECT_EQ(back, m);
  }
}

// More armed multishot recvs than the ring's CQ bounds ordinary ops to: they
// must all be armed (an idle server keeps one per connection); were they
// bounded, the connections past the bound would never be read.
TEST(NetMultishot, ArmedStreamsAreNotBoundedByTheRing) {
  constexpr size_t conns = 40;
  auto lb = test::listen_loopback();
  auto clients = connect_raw(lb.addr, conns);
  runtime_options opts;
  opts.uring.entries = 8;  // CQ of 16
  size_t echoed = 0;
  test::run(
      [&]() -> task<void> {
        auto ring = make_ring(64, 256);
        auto serve = [&](tcp_stream s) -> task<void> {
          auto rx = s.recv_multishot(*ring);
          auto b = co_await rx.next();
          CO_ASSERT_OK(b);
          CO_ASSERT_TRUE(!b->empty());
          auto w = co_await s.send_all(b->bytes());
          CO_ASSERT_OK(w);
          ++echoed;
        };
        auto incoming = lb.listener.incoming();
        std::vector<join_handle<void>> hs;
        for (size_t i = 0; i < conns; ++i) {
          auto s = co_await incoming.next();
          CO_ASSERT_OK(s);
          hs.push_back(runtime::current()->spawn(serve(std::move(*s))));
        }
        auto z = co_await sleep_for(5ms);  // every stream armed and idle
        CO_ASSERT_OK(z);
        for (auto& c : clients) EXPECT_EQ(::send(c.get(), "hi", 2, MSG_NOSIGNAL), 2);
        for (auto& h : hs) co_await std::move(h);
      }(),
      opts);
  EXPECT_EQ(echoed, conns);
}

TEST(NetMultishot, EndOfStreamIsStickyAndErrorsAreValues) {
  auto lb = test::listen_loopback();
  auto clients = connect_raw(lb.addr, 2);
  ASSERT_EQ(::send(clients[0].get(), "bye", 3, MSG_NOSIGNAL), 3);
  clients[0].reset();  // FIN after the data
  test::run([&]() -> task<void> {
    auto ring = make_ring(4, 64);
    auto a = co_await lb.listener.accept();
    CO_ASSERT_OK(a);
    auto rx = a->recv_multishot(*ring);
    std::string text;
    for (;;) {
      auto b = co_await rx.next();
      CO_ASSERT_OK(b);
      if (b->empty()) break;
      text += test::text_of(b->bytes());
    }
    EXPECT_EQ(text, "bye");
    auto again = co_await rx.next();
    CO_ASSERT_OK(again);
    EXPECT_TRUE(again->empty());

    // A reset peer: the error comes as a value.
    auto c = co_await lb.listener.accept();
    CO_ASSERT_OK(c);
    auto rx2 = c->recv_multishot(*ring);
    linger lg{1, 0};
    EXPECT_EQ(::setsockopt(clients[1].get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    clients[1].reset();  // RST
    auto e = co_await rx2.next();
    EXPECT_TRUE(!e || e->empty()) << "a reset gives ECONNRESET (or end of stream)";
    if (!e) {
      EXPECT_EQ(e.error(), std::errc::connection_reset);
    }
  }());
}

TEST(NetMultishot, ClosingTheSocketCancelsAnArmedStream) {
  auto lb = test::listen_loopback();
  auto clients = connect_raw(lb.addr, 1);
  test::run([&]() -> task<void> {
    auto ring = make_ring(4, 64);
    auto a = co_await lb.listener.accept();
    CO_ASSERT_OK(a);
    auto rx = a->recv_multishot(*ring);
    auto waiter = [&]() -> task<result<rx_buffer>> { co_return co_await rx.next(); };
    auto h = runtime::current()->spawn(waiter());
    auto z = co_await sleep_for(2ms);
    CO_ASSERT_OK(z);
    EXPECT_TRUE(rx.armed());
    auto c = co_await a->close();
    CO_EXPECT_OK(c);
    EXPECT_FALSE(rx.armed());
    auto r = co_await std::move(h);
    EXPECT_TRUE(test::fails_with(r, std::errc::operation_canceled));
    auto r2 = co_await rx.next();
    EXPECT_TRUE(test::fails_with(r2, std::errc::operation_canceled));
    // Data sent now reaches nobody (and no freed memory).
    EXPECT_EQ(::send(clients[0].get(), "late", 4, MSG_NOSIGNAL), 4);
    EXPECT_EQ(ring->available(), ring->count());
  }());
}

// Tasks destroyed while their streams are armed (and one holding a received
// buffer), after the owner dropped the ring: the streams cancel and wait,
// and the ring's memory goes only after the last user (ASan checks that the
// kernel never writes into freed memory and nothing leaks).
TEST(NetMultishot, DestroyingTasksMidStreamIsClean) {
  auto lb = test::listen_loopback();
  auto clients = connect_raw(lb.addr, 2);
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  auto ring = buffer_ring::create((*rt)->driver(), 8, 256);
  ASSERT_TRUE(ring);
  std::vector<tcp_stream> servers;
  int parked = 0;
  (*rt)->block_on([&]() -> task<void> {
    for (int i = 0; i < 2; ++i) {
      auto a = co_await lb.listener.accept();
      CO_ASSERT_OK(a);
      servers.push_back(std::move(*a));
    }
    auto reader = [&](tcp_stream& s, bool hold) -> task<void> {
      auto rx = s.recv_multishot(**ring);
      auto b = co_await rx.next();
      CO_ASSERT_OK(b);
      rx_buffer kept = hold ? std::move(*b) : rx_buffer();
      ++parked;
      auto b2 = co_await rx.next();  // never completes: the frame is destroyed here
      ADD_FAILURE() << "never resumes";
    };
    runtime::current()->spawn(reader(servers[0], false)).detach();
    runtime::current()->spawn(reader(servers[1], true)).detach();
    for (auto& c : clients) EXPECT_EQ(::send(c.get(), "one", 3, MSG_NOSIGNAL), 3);
    while (parked < 2) {
      auto z = co_await sleep_for(1ms);
      CO_ASSERT_OK(z);
    }
  }());
  ring->reset();  // the owner lets go first; the armed streams keep it alive
  rt->reset();    // destroys the suspended frames
  for (auto& c : clients) EXPECT_EQ(::send(c.get(), "two", 3, MSG_NOSIGNAL), 3);
}

TEST(NetMultishot, SendZeroCopyKeepsTheBufferUntilTheKernelIsDone) {
  constexpr size_t bytes = 8 << 20;
  auto lb = test::listen_loopback();
  uint64_t extra = 0;
  bool zc = false;
  test::run([&]() -> task<void> {
    zc = net::stream_socket::zero_copy_available();
    auto reader = [&]() -> task<result<size_t>> {
      auto s = co_await lb.listener.accept();
      if (!s) co_return fail(s.error());
      std::vector<std::byte> buf(65536);
      size_t got = 0;
      for (;;) {
        auto z = co_await sleep_for(50us);  // slow reader: sends wait on the socket
        if (!z) co_return fail(z.error());
        auto n = co_await s->recv(buf);
        if (!n) co_return fail(n.error());
        if (*n == 0) break;
        for (size_t i = 0; i < *n; ++i) {
          if (buf[i] != pattern(5, got + i)) co_return fail(std::errc::illegal_byte_sequence);
        }
        got += *n;
      }
      co_return got;
    };
    auto h = runtime::current()->spawn(reader());
    auto s = co_await tcp_stream::connect(lb.addr);
    CO_ASSERT_OK(s);
    (void)s->set_send_buffer_size(64 * 1024);
    std::vector<std::byte> chunk(256 * 1024);
    for (size_t off = 0; off < bytes; off += chunk.size()) {
      for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = pattern(5, off + i);
      auto w = co_await s->send_all_zc(chunk);
      CO_ASSERT_OK(w);
      // Reusing the buffer now must not change what the peer receives.
      std::memset(chunk.data(), 0xee, chunk.size());
    }
    auto c = co_await s->close();
    CO_EXPECT_OK(c);
    auto r = co_await std::move(h);
    CO_ASSERT_OK(r);
    EXPECT_EQ(*r, bytes);
    extra = runtime::current()->driver().stats().extra_results;
  }());
  if (test::default_driver() == driver_kind::uring) {
    EXPECT_TRUE(zc) << "this kernel has IORING_OP_SEND_ZC (6.0+)";
    EXPECT_GT(extra, 0u) << "no zero-copy send produced its notification";
  } else {
    EXPECT_FALSE(zc);
  }
}

TEST(NetMultishot, BufferRingRejectsBadShapes) {
  test::run([&]() -> task<void> {
    auto& d = runtime::current()->driver();
    CO_EXPECT_FAIL(buffer_ring::create(d, 0, 64), std::errc::invalid_argument);
    CO_EXPECT_FAIL(buffer_ring::create(d, 3, 64), std::errc::invalid_argument);
    CO_EXPECT_FAIL(buffer_ring::create(d, 65536, 64), std::errc::invalid_argument);
    CO_EXPECT_FAIL(buffer_ring::create(d, 4, 0), std::errc::invalid_argument);
    auto a = buffer_ring::create(d, 4, 64);
    auto b = buffer_ring::create(d, 4, 64);
    CO_ASSERT_OK(a);
    CO_ASSERT_OK(b);
    if (d.kind() == driver_kind::uring) {
      EXPECT_NE((*a)->group(), (*b)->group());
    }
    co_return;
  }());
}

}  // namespace
}  // namespace coil
