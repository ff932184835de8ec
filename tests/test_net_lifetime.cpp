// fd lifetime: closing a socket (async close, destructor, release, move
// assignment) cancels and completes the operations pending on it before the
// descriptor number can be reused, so an old reader never sees a new
// connection's bytes. Plus every error path: bad fd, closed socket, no runtime.
#include <fcntl.h>

#include <array>
#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "test_net_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using net::socket_address;
using net::tcp_stream;
using test::bytes_of;
using test::text_of;

// A connected pair of TCP streams through a loopback listener.
task<result<std::pair<tcp_stream, tcp_stream>>> tcp_pair(net::tcp_listener& l, const socket_address& addr) {
  auto acc = [&]() -> task<result<tcp_stream>> { co_return co_await l.accept(); };
  auto [a, c] = co_await when_all(acc(), tcp_stream::connect(addr));
  if (!a) co_return fail(a.error());
  if (!c) co_return fail(c.error());
  co_return std::pair<tcp_stream, tcp_stream>(std::move(*a), std::move(*c));
}

// The old server socket while a recv is pending on it, for a closer to take
// its descriptor away.
struct old_socket {
  std::optional<tcp_stream> stream;
  int fd = -1;
  // Lets the blockers' reads complete (once): frees ring room, not numbers.
  std::function<void()> free_ring;
};

// The ways a socket loses its descriptor. Each returns with the pending recv
// finished inside it: nothing pending, nothing in the kernel.
using closer = task<void> (*)(old_socket&);

task<void> by_async_close(old_socket& s) {
  auto closing = s.stream->close();  // the pending recv is finished here
  EXPECT_EQ(s.stream->pending(), 0u);
  s.free_ring();  // so the close itself can be issued
  auto c = co_await closing;
  EXPECT_TRUE(c);
  // pending() is not checked after: the reader may have started again.
}

task<void> by_destructor(old_socket& s) {
  s.stream.reset();
  co_return;
}

task<void> by_release(old_socket& s) {
  unique_fd released = s.stream->release();
  EXPECT_EQ(s.stream->pending(), 0u);
  EXPECT_EQ(released.get(), s.fd);
  co_return;  // released closes the number here
}

task<void> by_move_assign(old_socket& s) {
  *s.stream = tcp_stream();
  EXPECT_EQ(s.stream->pending(), 0u);
  co_return;
}

// Sends on both ends of a new connection whose sockets took the old number,
// then checks the old reader saw none of it and the owner sees all of it.
task<void> expect_new_connection_keeps_its_bytes(std::pair<tcp_stream, tcp_stream>& second, int old_fd,
                                                 join_handle<void> rd, std::span<const std::byte> old_buf) {
  EXPECT_TRUE(second.first.fd() == old_fd || second.second.fd() == old_fd)
      << "the descriptor number was not reused: " << old_fd << " vs " << second.first.fd() << ", "
      << second.second.fd();
  auto w1 = co_await second.second.send_all(bytes_of("NEW CONNECTION"));
  EXPECT_TRUE(w1);
  auto w2 = co_await second.first.send_all(bytes_of("NEW CONNECTION"));
  EXPECT_TRUE(w2);
  co_await std::move(rd);
  EXPECT_EQ(text_of(old_buf.first(3)), "...") << "an old reader saw bytes of a new connection";
  std::array<std::byte, 14> mine{};
  auto r = co_await second.first.recv_exact(mine);
  EXPECT_TRUE(r);
  EXPECT_EQ(text_of(mine), "NEW CONNECTION");
}

// lose_fd takes the descriptor of a socket with a recv pending; a new
// connection then reuses the number. blockers: positional eventfd reads
// pending first, so that on a small io_uring the old reader's recv waits in
// user space for ring room, where it holds nothing but the descriptor number.
// (Those reads are bounded by the ring; socket ops are not, so socket
// blockers would leave room.)
void old_reader_never_sees_new_bytes(closer lose_fd, int blockers = 0, const runtime_options& opts = {}) {
  auto lb = test::listen_loopback();
  test::blocking_eventfd ev;
  test::run(
      [&]() -> task<void> {
        auto first = co_await tcp_pair(lb.listener, lb.addr);
        CO_ASSERT_OK(first);
        std::vector<join_handle<void>> blocked_readers;
        auto block = [](const file& f) -> task<void> {
          uint64_t v;
          (void)co_await test::blocking_eventfd::read(f, v);
        };
        for (int i = 0; i < blockers; ++i) blocked_readers.push_back(runtime::current()->spawn(block(ev.f)));
        bool freed = false;
        const int old_fd = first->first.fd();
        old_socket old{std::move(first->first), old_fd, [&] {
                         if (!freed) ev.wake(static_cast<uint64_t>(blockers));
                         freed = true;
                       }};

        std::array<std::byte, 64> buf{};
        buf.fill(std::byte{'.'});
        std::optional<result<size_t>> got;
        std::optional<result<size_t>> again;
        auto reader = [&]() -> task<void> {
          got = co_await old.stream->recv(buf);
          // The socket object lives on but no longer owns a descriptor.
          if (old.stream) again = co_await old.stream->recv(buf);
        };
        auto rd = runtime::current()->spawn(reader());
        co_await yield();  // the reader is now suspended in recv
        EXPECT_EQ(old.stream->pending(), 1u);
        if (blockers != 0 && runtime::current()->driver().kind() == driver_kind::uring) {
          EXPECT_GE(runtime::current()->stats().io.queued_for_space, 1u) << "the recv should wait for room";
        }

        co_await lose_fd(old);
        EXPECT_FALSE(test::fd_is_open(old.fd));
        old.free_ring();
        for (auto& b : blocked_readers) co_await std::move(b);

        // A new connection: one of its two sockets takes the old number.
        auto second = co_await tcp_pair(lb.listener, lb.addr);
        CO_ASSERT_OK(second);
        co_await expect_new_connection_keeps_its_bytes(*second, old.fd, std::move(rd), buf);
        CO_ASSERT_TRUE(got.has_value());
        EXPECT_TRUE(test::fails_with(*got, std::errc::operation_canceled));
        EXPECT_TRUE(!again || test::fails_with(*again, std::errc::bad_file_descriptor));
      }(),
      opts);
}

TEST(NetLifetime, AsyncCloseCancelsPendingRecvBeforeReuse) { old_reader_never_sees_new_bytes(by_async_close); }
TEST(NetLifetime, DestructorCancelsPendingRecvBeforeReuse) { old_reader_never_sees_new_bytes(by_destructor); }
TEST(NetLifetime, ReleaseCancelsPendingRecv) { old_reader_never_sees_new_bytes(by_release); }
TEST(NetLifetime, MoveAssignCancelsPendingRecv) { old_reader_never_sees_new_bytes(by_move_assign); }
TEST(NetLifetime, RecvQueuedForRingRoomNeverReachesTheReusedNumber) {
  runtime_options opts;
  opts.uring.entries = 4;  // room for about 8 operations; 12 blockers fill it
  old_reader_never_sees_new_bytes(by_async_close, 12, opts);
  old_reader_never_sees_new_bytes(by_destructor, 12, opts);
}

// Socket ops wait on peers, so io_uring keeps them outside its in-flight
// bound: bounded, 3 recvs would fill a CQ of 4 and the sends that would
// complete them would wait for room behind the other recvs, forever.
TEST(NetLifetime, SocketOpsPastTheRingBoundNeverWaitForRoom) {
  runtime_options opts;
  opts.uring.entries = 2;  // CQ 4: 3 bounded ops in flight
  constexpr int pairs = 32;
  test::run(
      [&]() -> task<void> {
        std::vector<std::pair<net::unix_stream, net::unix_stream>> ps;
        for (int i = 0; i < pairs; ++i) {
          auto p = net::unix_stream::pair();
          CO_ASSERT_OK(p);
          ps.push_back(std::move(*p));
        }
        int echoed = 0;
        auto echo = [&](net::unix_stream& s) -> task<void> {
          std::array<std::byte, 5> b{};
          auto r = co_await s.recv_exact(b);
          EXPECT_TRUE(r);
          auto w = co_await s.send_all(b);
          EXPECT_TRUE(w);
        };
        auto client = [&](net::unix_stream& s, int i) -> task<void> {
          // appended, not "m" + string: g++ 12 -O3 reports a false -Wrestrict on
          // the insert that operator+ does (GCC PR 105651)
          std::string m = "m";
          m += std::to_string(1000 + i);
          auto w = co_await s.send_all(bytes_of(m));
          EXPECT_TRUE(w);
          std::array<std::byte, 5> b{};
          auto r = co_await s.recv_exact(b);
          EXPECT_TRUE(r);
          if (text_of(b) == m) ++echoed;
        };
        std::vector<join_handle<void>> hs;
        for (auto& p : ps) hs.push_back(runtime::current()->spawn(echo(p.first)));
        co_await yield();  // every echo's recv is pending
        for (int i = 0; i < pairs; ++i) hs.push_back(runtime::current()->spawn(client(ps[i].second, i)));
        for (auto& h : hs) co_await std::move(h);
        EXPECT_EQ(echoed, pairs);
        if (runtime::current()->driver().kind() == driver_kind::uring) {
          EXPECT_EQ(runtime::current()->stats().io.queued_for_space, 0u);
          EXPECT_GE(runtime::current()->stats().io.in_flight_max, uint32_t{pairs});
          // 32 recvs completing at once overflowed the CQ of 4: the kernel
          // kept the extra CQEs (NODROP) and every echo above arrived.
          EXPECT_GE(runtime::current()->stats().io.cq_overflows, 1u);
          EXPECT_EQ(runtime::current()->driver().cq_overflow(), 0u);
        }
      }(),
      opts);
}

TEST(NetLifetime, ManyWaitersAndAPendingAcceptAreAllCancelled) {
  auto lb = test::listen_loopback();
  test::run([&]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    int cancelled = 0;
    auto reader = [&](net::unix_stream& s) -> task<void> {
      std::array<std::byte, 8> b{};
      auto r = co_await s.recv(b);
      if (test::fails_with(r, std::errc::operation_canceled)) ++cancelled;
    };
    auto acceptor = [&]() -> task<void> {
      auto s = co_await lb.listener.accept();
      if (test::fails_with(s, std::errc::operation_canceled)) ++cancelled;
    };
    auto h1 = runtime::current()->spawn(reader(p->first));
    auto h2 = runtime::current()->spawn(reader(p->first));
    auto h3 = runtime::current()->spawn(reader(p->first));
    auto h4 = runtime::current()->spawn(acceptor());
    co_await yield();
    EXPECT_EQ(p->first.pending(), 3u);
    EXPECT_EQ(lb.listener.pending(), 1u);
    auto c1 = co_await p->first.close();
    auto c2 = co_await lb.listener.close();
    EXPECT_TRUE(c1 && c2);
    co_await std::move(h1);
    co_await std::move(h2);
    co_await std::move(h3);
    co_await std::move(h4);
    EXPECT_EQ(cancelled, 4);
    // The peer sees the close.
    std::array<std::byte, 4> b{};
    auto r = co_await p->second.recv(b);
    EXPECT_TRUE(r && *r == 0);
  }());
}

// Cancelling the waiting task (not the socket) leaves the socket usable.
TEST(NetLifetime, TimeoutAndTaskCancelLeaveTheSocketUsable) {
  test::run([&]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    std::array<std::byte, 8> b{};
    auto t = co_await with_timeout(p->first.recv(b), 20ms);
    EXPECT_TRUE(test::fails_with(t, std::errc::timed_out));
    EXPECT_EQ(p->first.pending(), 0u);

    auto reader = [&]() -> task<result<size_t>> { co_return co_await p->first.recv(b); };
    auto h = runtime::current()->spawn(reader());
    co_await yield();
    h.cancel();
    auto r = co_await std::move(h);
    EXPECT_TRUE(test::fails_with(r, std::errc::operation_canceled));
    EXPECT_EQ(p->first.pending(), 0u);

    auto w = co_await p->second.send(bytes_of("ok"));
    EXPECT_TRUE(w);
    auto n = co_await p->first.recv(b);
    EXPECT_TRUE(n && *n == 2);
  }());
}

// A task destroyed while its operation is pending (runtime teardown) unlinks
// itself from the socket; the socket closes later without touching it.
TEST(NetLifetime, SocketOutlivesRuntimeWithPendingOperation) {
  auto p = net::unix_stream::pair();
  ASSERT_TRUE(p);
  std::array<std::byte, 8> b{};
  {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    auto reader = [&]() -> task<void> { (void)co_await p->first.recv(b); };  // named: outlives the frame
    auto h = (*rt)->spawn(reader());
    h.detach();
    (*rt)->block_on([]() -> task<void> { co_await yield(); }());
    EXPECT_EQ(p->first.pending(), 1u);
  }
  EXPECT_EQ(p->first.pending(), 0u);
  EXPECT_TRUE(p->first.is_open());
}

// ---- error paths -------------------------------------------------------------------

TEST(NetErrors, NoRuntime) {
  auto p = net::unix_stream::pair();
  ASSERT_TRUE(p);
  result<size_t> r1 = 0, r2 = 0;
  result<void> r3;
  auto body = [&]() -> test::foreign_coro {
    std::array<std::byte, 4> b{};
    r1 = co_await p->first.recv(b);
    r2 = co_await p->first.send(bytes_of("x"));
    r3 = co_await p->first.shutdown();
  };
  auto c = body();
  EXPECT_TRUE(c.done()) << "without a runtime nothing may suspend";
  EXPECT_TRUE(test::fails_with(r1, errc::no_runtime));
  EXPECT_TRUE(test::fails_with(r2, errc::no_runtime));
  EXPECT_TRUE(test::fails_with(r3, errc::no_runtime));
  EXPECT_EQ(p->first.pending(), 0u);
  EXPECT_TRUE(p->first.is_open());
}

TEST(NetErrors, BadAndClosedDescriptors) {
  test::temp_dir dir;
  test::run([&]() -> task<void> {
    std::array<std::byte, 4> b{};
    tcp_stream none;  // no descriptor at all
    auto r = co_await none.recv(b);
    EXPECT_TRUE(test::fails_with(r, std::errc::bad_file_descriptor));
    auto w = co_await none.send(bytes_of("x"));
    EXPECT_TRUE(test::fails_with(w, std::errc::bad_file_descriptor));
    auto c = co_await none.close();
    EXPECT_TRUE(test::fails_with(c, std::errc::bad_file_descriptor));
    EXPECT_TRUE(test::fails_with(none.local_address(), std::errc::bad_file_descriptor));
    EXPECT_TRUE(test::fails_with(none.set_nodelay(true), std::errc::bad_file_descriptor));

    // A descriptor that is not a socket.
    const std::string path = dir.file("plain");
    tcp_stream notsock(unique_fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)));
    CO_ASSERT_TRUE(notsock.is_open());
    auto r2 = co_await notsock.recv(b);
    EXPECT_TRUE(test::fails_with(r2, std::errc::not_a_socket));
    EXPECT_TRUE(test::fails_with(notsock.peer_address(), std::errc::not_a_socket));

    // A closed socket: every later operation is EBADF, closing again too.
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto c1 = co_await p->first.close();
    EXPECT_TRUE(c1);
    auto r3 = co_await p->first.recv(b);
    EXPECT_TRUE(test::fails_with(r3, std::errc::bad_file_descriptor));
    auto c2 = co_await p->first.close();
    EXPECT_TRUE(test::fails_with(c2, std::errc::bad_file_descriptor));

    // accept on a socket that does not listen.
    net::tcp_listener not_listening(std::move(*net::open_socket(AF_INET, SOCK_STREAM)));
    auto a = co_await not_listening.accept();
    EXPECT_TRUE(test::fails_with(a, std::errc::invalid_argument));
    // shutdown of a stream that never connected.
    tcp_stream fresh(std::move(*net::open_socket(AF_INET, SOCK_STREAM)));
    auto sd = co_await fresh.shutdown(net::shutdown_how::both);
    EXPECT_TRUE(test::fails_with(sd, std::errc::not_connected));
  }());
}

TEST(NetErrors, WrongFamiliesAndAddresses) {
  EXPECT_TRUE(test::fails_with(net::tcp_listener::bind(*socket_address::unix_path("/tmp/x")),
                                   std::errc::address_family_not_supported));
  EXPECT_TRUE(test::fails_with(net::tcp_listener::bind(socket_address{}), std::errc::address_family_not_supported));
  EXPECT_TRUE(test::fails_with(net::udp_socket::bind(*socket_address::unix_path("/tmp/x")),
                                   std::errc::address_family_not_supported));
  EXPECT_TRUE(test::fails_with(net::udp_socket::open(AF_UNIX), std::errc::address_family_not_supported));
  EXPECT_TRUE(test::fails_with(net::unix_listener::bind(socket_address::ipv4_loopback(0)),
                                   std::errc::address_family_not_supported));
  EXPECT_TRUE(test::fails_with(net::unix_datagram::bind(socket_address::ipv4_loopback(0)),
                                   std::errc::address_family_not_supported));
  // An address that is not ours.
  EXPECT_TRUE(test::fails_with(net::tcp_listener::bind(*socket_address::parse("192.0.2.1:0")),
                                   std::errc::address_not_available));
  test::run([&]() -> task<void> {
    auto u = co_await net::unix_stream::connect(*socket_address::unix_path("/nonexistent/coil.sock"));
    EXPECT_TRUE(test::fails_with(u, std::errc::no_such_file_or_directory));
    auto t = co_await tcp_stream::connect(socket_address{});
    EXPECT_TRUE(test::fails_with(t, std::errc::address_family_not_supported));
  }());
}

}  // namespace
}  // namespace coil
