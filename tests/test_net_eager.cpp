// Eager sends (uring_options::eager_send): on an eager turn a socket send is
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

// A connected pair whose first end has a 4 KiB send buffer, so a large send
// fills it and comes back short (or parks in the ring).
result<std::pair<net::unix_stream, net::unix_stream>> tight_pair() {
  auto p = net::unix_stream::pair();
  if (!p) return p;
  if (auto r = p->first.set_send_buffer_size(4096); !r) return fail(r.error());
  return p;
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
    auto p = tight_pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
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
    auto p = tight_pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
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

// Blocking reads of got.size() bytes from fd on a thread (so no coil task
// makes the sender's turn busy), starting late enough that the sender's first
// send fills the socket buffer and comes back short.
std::thread drain(int fd, std::vector<std::byte>& got) {
  return std::thread([fd, &got] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::size_t at = 0;
    while (at < got.size()) {
      const ssize_t n = ::recv(fd, got.data() + at, got.size() - at, 0);
      if (n <= 0) break;
      at += static_cast<std::size_t>(n);
    }
  });
}

// send_all's (and sendv_all's) first send is eager; one that moves only part
// of the bytes hands the rest to the ring loop, which must start at the byte
// where it stopped (for iovecs, inside an entry; an empty entry on the way).
task<void> short_eager_send_then_ring(bool vectored) {
  auto p = tight_pair();
  CO_ASSERT_OK(p);
  auto& [a, b] = *p;
  const auto big = numbered(300 << 10, vectored ? 8 : 7);
  const std::size_t cuts[] = {0, 100, 100, 200 << 10, big.size()};
  std::vector<iovec> iov;
  for (std::size_t i = 0; i + 1 < std::size(cuts); ++i) {
    iov.push_back({const_cast<std::byte*>(big.data()) + cuts[i], cuts[i + 1] - cuts[i]});
  }
  std::vector<std::byte> got(big.size());
  std::thread reader = drain(b.fd(), got);
  const uint64_t eager0 = eager_count(), pushed0 = runtime::current()->driver().stats().pushed;
  result<void> w;
  if (vectored) {
    w = co_await a.sendv_all(iov);
  } else {
    w = co_await a.send_all(big);
  }
  reader.join();
  CO_ASSERT_OK(w);
  EXPECT_GE(eager_count(), eager0 + 1);  // the first, short, send (later ones may be eager too)
  EXPECT_GT(runtime::current()->driver().stats().pushed, pushed0);  // the second found the buffer full
  EXPECT_TRUE(got == big);
}

TEST(NetEager, SendAllContinuesAShortEagerSendInTheRing) {
  COIL_REQUIRE_URING();
  test::run(short_eager_send_then_ring(false));
  test::run(short_eager_send_then_ring(true));
}

// An eager send that fails is the call's result; nothing reaches the ring.
// Empty buffers finish with no system call at all.
TEST(NetEager, SendAllEagerErrorsAndEmptyBuffers) {
  COIL_REQUIRE_URING();
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    const uint64_t eager0 = eager_count(), pushed0 = sends_pushed();
    auto e = co_await a.send_all({});
    CO_ASSERT_OK(e);
    iovec none[2] = {{nullptr, 0}, {nullptr, 0}};
    auto ev = co_await a.sendv_all(none);
    CO_ASSERT_OK(ev);
    EXPECT_EQ(eager_count(), eager0);
    EXPECT_EQ(sends_pushed(), pushed0);
    // Awaitable through with_timeout like a task.
    const auto msg = numbered(64, 9);
    auto t = co_await with_timeout(a.send_all(msg), std::chrono::seconds(5));
    CO_ASSERT_OK(t);
    std::vector<std::byte> got(64);
    auto r = co_await b.recv_exact(got);
    CO_ASSERT_OK(r);
    EXPECT_EQ(got, msg);
    b = net::unix_stream();  // the peer goes away
    const uint64_t eager1 = eager_count(), pushed1 = sends_pushed();
    auto w = co_await a.send_all(msg);
    CO_ASSERT_TRUE(!w);
    EXPECT_EQ(w.error(), std::errc::broken_pipe);
    EXPECT_EQ(eager_count(), eager1 + 1);
    EXPECT_EQ(sends_pushed(), pushed1);
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
