// Eager sends (uring_options::eager_send): on a quiet turn a socket send is
// one send(MSG_DONTWAIT) system call instead of a trip through the ring; on a
// busy turn, behind another pending send, with the option off, under fault
// injection, or when the socket buffer is full, it goes through the ring.
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace coil;

uint64_t eager_count() { return runtime::current()->driver().stats().eager; }
uint64_t sends_pushed() { return runtime::current()->driver().stats().of(IORING_OP_SEND).pushed; }

std::vector<std::byte> numbered(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + seed) & 0xff);
  return v;
}

task<void> send_everything(net::unix_stream& s, const std::vector<std::byte>& m) {
  auto w = co_await s.send_all(m);
  EXPECT_TRUE(w);
}

TEST(NetEager, AQuietSendSkipsTheRingAndArrives) {
  COIL_REQUIRE_URING();
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    const auto msg = numbered(64, 1);
    const uint64_t eager0 = eager_count(), pushed0 = sends_pushed();
    auto n = co_await a.send(msg);
    CO_ASSERT_OK(n);
    EXPECT_EQ(*n, 64u);
    EXPECT_EQ(eager_count(), eager0 + 1);
    EXPECT_EQ(sends_pushed(), pushed0);  // never reached the ring
    std::vector<std::byte> got(64);
    auto r = co_await b.recv_exact(got);
    CO_ASSERT_OK(r);
    EXPECT_EQ(got, msg);
    // send_all and sendv take the same path.
    auto w = co_await a.send_all(msg);
    CO_ASSERT_OK(w);
    iovec iov[2] = {{const_cast<std::byte*>(msg.data()), 10}, {const_cast<std::byte*>(msg.data()) + 10, 54}};
    auto v = co_await a.sendv(iov);
    CO_ASSERT_OK(v);
    EXPECT_EQ(eager_count(), eager0 + 3);
    std::vector<std::byte> two(128);
    auto r2 = co_await b.recv_exact(two);
    CO_ASSERT_OK(r2);
    EXPECT_EQ(0, std::memcmp(two.data(), msg.data(), 64));
    EXPECT_EQ(0, std::memcmp(two.data() + 64, msg.data(), 64));
  }());
}

// Two senders ready in the same turn: the first sees the second ready, the
// second sees the first's SQE waiting; both batch into the ring.
TEST(NetEager, BusyTurnsBatchInTheRing) {
  COIL_REQUIRE_URING();
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    auto q = net::unix_stream::pair();
    CO_ASSERT_OK(q);
    const auto msg = numbered(32, 2);
    const uint64_t eager0 = eager_count(), pushed0 = sends_pushed();
    auto sender = [](net::unix_stream& s, const std::vector<std::byte>& m) -> task<void> {
      co_await yield();  // both become ready in the next turn
      auto w = co_await s.send_all(m);
      EXPECT_TRUE(w);
    };
    auto h1 = runtime::current()->spawn(sender(a, msg));
    auto h2 = runtime::current()->spawn(sender(q->first, msg));
    co_await h1;
    co_await h2;
    EXPECT_EQ(eager_count(), eager0);
    EXPECT_EQ(sends_pushed(), pushed0 + 2);
    std::vector<std::byte> got(32);
    auto r = co_await b.recv_exact(got);
    CO_ASSERT_OK(r);
    EXPECT_EQ(got, msg);
  }());
}

// A send parked in the ring on a full buffer, then room made behind the
// ring's back (a direct recv on the peer): a later send on the same socket
// could now succeed with a system call and would overtake the parked one.
// It must go to the ring instead. (Two sends pending in the ring have no
// order between them: that is io_uring's, and concurrent sends on one
// stream are unordered in coil too.)
TEST(NetEager, NeverOvertakesAPendingSend) {
  COIL_REQUIRE_URING();
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    CO_ASSERT_OK(a.set_send_buffer_size(4096));
    const auto big = numbered(1 << 20, 3);
    const auto tail = numbered(100, 4);
    auto first = runtime::current()->spawn(send_everything(a, big));
    for (int i = 0; i < 3; ++i) co_await yield();  // the first send is parked in the ring
    std::vector<std::byte> got(big.size() + tail.size());
    const ssize_t drained = ::recv(b.fd(), got.data(), 64 << 10, MSG_DONTWAIT);
    CO_ASSERT_TRUE(drained > 0);
    // A thread reads the rest; it can only add room, never take it away.
    std::thread reader([&, fd = b.fd(), at = static_cast<std::size_t>(drained)]() mutable {
      while (at < got.size()) {
        pollfd pfd{fd, POLLIN, 0};
        (void)::poll(&pfd, 1, 1000);
        const ssize_t n = ::recv(fd, got.data() + at, got.size() - at, MSG_DONTWAIT);
        if (n > 0) at += static_cast<std::size_t>(n);
        if (n == 0) break;
      }
    });
    const uint64_t eager0 = eager_count();
    auto w = co_await a.send_all(tail);  // room now, but the first send is still parked
    EXPECT_TRUE(w);
    EXPECT_EQ(eager_count(), eager0) << "a send went past one pending on the same socket";
    co_await first;
    reader.join();
  }());
}

// A full buffer answers EAGAIN: the send falls back to the ring and
// completes when the reader drains.
TEST(NetEager, AFullBufferFallsBackToTheRing) {
  COIL_REQUIRE_URING();
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    CO_ASSERT_OK(a.set_send_buffer_size(4096));
    const auto big = numbered(256 << 10, 5);
    const uint64_t pushed0 = sends_pushed();
    auto sender = runtime::current()->spawn(send_everything(a, big));
    std::vector<std::byte> got(big.size());
    auto r = co_await b.recv_exact(got);
    CO_ASSERT_OK(r);
    co_await sender;
    EXPECT_EQ(got, big);
    EXPECT_GT(sends_pushed(), pushed0);
  }());
}

TEST(NetEager, OffByOptionAndUnderFaultInjection) {
  COIL_REQUIRE_URING();
  auto body = []() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    const auto msg = numbered(64, 6);
    auto w = co_await a.send_all(msg);
    CO_ASSERT_OK(w);
    std::vector<std::byte> got(64);
    auto r = co_await b.recv_exact(got);
    CO_ASSERT_OK(r);
    EXPECT_EQ(got, msg);
    EXPECT_EQ(eager_count(), 0u);
    EXPECT_GE(sends_pushed(), 1u);
  };
  runtime_options off;
  off.uring.eager_send = false;
  test::run(body(), off);
  runtime_options faulty;
  faulty.faults.enabled = true;
  test::run(body(), faulty);
}

}  // namespace
