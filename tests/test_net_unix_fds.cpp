// Passing descriptors over Unix stream sockets (SCM_RIGHTS): what arrives,
// what does not fit, bad arguments, and that no descriptor leaks when a
// received message is dropped. Peer credentials.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <optional>
#include <vector>

#include "test_net_util.hpp"

namespace coil {
namespace {

using net::unix_stream;

struct pipe_fds {
  unique_fd r, w;
  pipe_fds() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    r = unique_fd(p[0]);
    w = unique_fd(p[1]);
  }
};

TEST(NetUnixFds, DescriptorsArriveWithTheBytesAndWork) {
  test::run([]() -> task<void> {
    auto pair = unix_stream::pair();
    CO_ASSERT_OK(pair);
    auto& [a, b] = *pair;
    pipe_fds p;
    const std::array<int, 2> send_fds{p.r.get(), p.w.get()};
    auto sent = co_await a.send_with_fds(test::bytes_of("hi"), send_fds);
    CO_ASSERT_OK(sent);
    EXPECT_EQ(*sent, 2u);

    std::array<std::byte, 8> buf{};
    std::array<unique_fd, 4> got;
    auto r = co_await b.recv_with_fds(buf, got);
    CO_ASSERT_OK(r);
    EXPECT_EQ(r->bytes, 2u);
    EXPECT_EQ(test::text_of(std::span(buf).first(2)), "hi");
    CO_ASSERT_TRUE(r->fds == 2u);
    EXPECT_FALSE(r->truncated);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_NE(got[i].get(), send_fds[0]);
      EXPECT_NE(got[i].get(), send_fds[1]);
      EXPECT_EQ(::fcntl(got[i].get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC) << "received descriptors are close-on-exec";
    }
    EXPECT_FALSE(got[2].valid());
    // The received write end feeds the original read end: the same pipe.
    CO_ASSERT_TRUE(::write(got[1].get(), "ok", 2) == 2);
    char back[2];
    CO_ASSERT_TRUE(::read(p.r.get(), back, 2) == 2);
    EXPECT_EQ(std::memcmp(back, "ok", 2), 0);

    // Plain bytes through the same calls: no descriptors, nothing truncated.
    auto plain = co_await a.send_with_fds(test::bytes_of("x"), {});
    CO_ASSERT_OK(plain);
    auto r2 = co_await b.recv_with_fds(buf, got);
    CO_ASSERT_OK(r2);
    EXPECT_EQ(r2->bytes, 1u);
    EXPECT_EQ(r2->fds, 0u);
    EXPECT_FALSE(r2->truncated);
  }());
}

TEST(NetUnixFds, DescriptorsThatDoNotFitAreClosedNotLeaked) {
  test::run([]() -> task<void> {
    auto pair = unix_stream::pair();
    CO_ASSERT_OK(pair);
    auto& [a, b] = *pair;
    const int before = test::open_fds();
    {
      pipe_fds p;
      const std::array<int, 3> three{p.r.get(), p.w.get(), p.r.get()};
      std::array<std::byte, 4> buf{};
      std::array<unique_fd, 1> one;
      auto s1 = co_await a.send_with_fds(test::bytes_of("a"), three);
      CO_ASSERT_OK(s1);
      auto r1 = co_await b.recv_with_fds(buf, one);
      CO_ASSERT_OK(r1);
      EXPECT_EQ(r1->fds, 1u);
      EXPECT_TRUE(r1->truncated);
      EXPECT_TRUE(one[0].valid());
      // No room at all: the bytes arrive, every descriptor is closed.
      auto s2 = co_await a.send_with_fds(test::bytes_of("b"), three);
      CO_ASSERT_OK(s2);
      auto r2 = co_await b.recv_with_fds(buf, {});
      CO_ASSERT_OK(r2);
      EXPECT_EQ(r2->bytes, 1u);
      EXPECT_EQ(r2->fds, 0u);
      EXPECT_TRUE(r2->truncated);
    }
    EXPECT_EQ(test::open_fds(), before);
  }());
}

TEST(NetUnixFds, PeerCredentialsNameThisProcess) {
  auto pair = unix_stream::pair();
  ASSERT_TRUE(pair);
  auto c = pair->first.peer_credentials();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->pid, ::getpid());
  EXPECT_EQ(c->uid, ::getuid());
  EXPECT_EQ(c->gid, ::getgid());
  unix_stream closed;
  auto none = closed.peer_credentials();
  EXPECT_TRUE(test::fails_with(none, std::errc::bad_file_descriptor));
}

TEST(NetUnixFds, DatagramsCarryDescriptorsWithOrWithoutBytes) {
  test::run([]() -> task<void> {
    auto pair = net::unix_datagram::pair();
    CO_ASSERT_OK(pair);
    auto& [a, b] = *pair;
    auto who = b.peer_credentials();
    CO_ASSERT_OK(who);
    EXPECT_EQ(who->pid, ::getpid());
    pipe_fds p;
    const std::array<int, 1> one{p.w.get()};
    auto bare = co_await a.send_with_fds({}, one);  // a datagram of no bytes, one descriptor
    CO_ASSERT_OK(bare);
    EXPECT_EQ(*bare, 0u);
    std::array<std::byte, 4> small{};
    std::array<unique_fd, 2> got;
    auto r = co_await b.recv_with_fds(small, got);
    CO_ASSERT_OK(r);
    EXPECT_EQ(r->bytes, 0u);
    CO_ASSERT_TRUE(r->fds == 1u);
    EXPECT_FALSE(r->bytes_truncated);
    CO_ASSERT_TRUE(::write(got[0].get(), "d", 1) == 1);
    char c = 0;
    CO_ASSERT_TRUE(::read(p.r.get(), &c, 1) == 1);
    EXPECT_EQ(c, 'd');
    // Longer than the buffer: cut, and said so; the descriptor still comes.
    auto long_one = co_await a.send_with_fds(test::bytes_of("datagram"), one);
    CO_ASSERT_OK(long_one);
    auto r2 = co_await b.recv_with_fds(small, got);
    CO_ASSERT_OK(r2);
    EXPECT_EQ(r2->bytes, 4u);
    EXPECT_TRUE(r2->bytes_truncated);
    EXPECT_EQ(r2->fds, 1u);
    EXPECT_EQ(test::text_of(small), "data");
  }());
}

TEST(NetUnixFds, BadArgumentsAreErrors) {
  test::run([]() -> task<void> {
    auto pair = unix_stream::pair();
    CO_ASSERT_OK(pair);
    auto& [a, b] = *pair;
    pipe_fds p;
    const std::array<int, 1> one{p.r.get()};
    auto empty = co_await a.send_with_fds({}, one);
    CO_EXPECT_FAIL(empty, std::errc::invalid_argument);
    std::vector<int> too_many(unix_stream::max_passed_fds + 1, p.r.get());
    auto many = co_await a.send_with_fds(test::bytes_of("x"), too_many);
    CO_EXPECT_FAIL(many, std::errc::invalid_argument);
    const std::array<int, 1> closed{9999};
    auto bad = co_await a.send_with_fds(test::bytes_of("x"), closed);
    CO_EXPECT_FAIL(bad, std::errc::bad_file_descriptor);
    // The most a message may carry goes through.
    std::vector<int> most(unix_stream::max_passed_fds, p.r.get());
    auto ok = co_await a.send_with_fds(test::bytes_of("y"), most);
    CO_ASSERT_OK(ok);
    std::array<std::byte, 4> buf{};
    std::vector<unique_fd> got(unix_stream::max_passed_fds);
    auto r = co_await b.recv_with_fds(buf, got);
    CO_ASSERT_OK(r);
    EXPECT_EQ(r->fds, unix_stream::max_passed_fds);
    EXPECT_FALSE(r->truncated);
  }());
}

// A message with descriptors reaches a pending recv_with_fds, but before its
// task resumes, another task (resumed first in the same turn) closes the
// socket: the result is dropped, and nobody owns those descriptors. They
// must be closed, not leaked (ops::recvmsg::discard).
TEST(NetUnixFds, AMessageDroppedByCloseLeaksNoDescriptor) {
  test::run([]() -> task<void> {
    const int before = test::open_fds();
    for (int round = 0; round < 5; ++round) {
      auto pair = unix_stream::pair();
      auto trigger = unix_stream::pair();
      CO_ASSERT_OK(pair);
      CO_ASSERT_OK(trigger);
      unix_stream& a = pair->first;  // not structured bindings: the lambdas capture these
      unix_stream& b = pair->second;
      pipe_fds p;
      std::array<std::byte, 4> buf{}, tbuf{};
      std::array<unique_fd, 4> got;
      std::optional<result<net::fds_received>> outcome;
      // Waits for a byte on the trigger pair, then closes b.
      auto closer = [&]() -> task<void> {
        auto t = co_await trigger->second.recv(tbuf);
        CO_EXPECT_OK(t);
        auto c = co_await b.close();
        CO_EXPECT_OK(c);
      };
      auto reader = [&]() -> task<void> { outcome.emplace(co_await b.recv_with_fds(buf, got)); };
      auto hc = runtime::current()->spawn(closer());
      auto hr = runtime::current()->spawn(reader());
      auto y = co_await sleep_for(std::chrono::milliseconds(1));  // both are pending
      CO_ASSERT_OK(y);
      // The trigger first, then the message: both complete in one turn, the
      // closer's first.
      CO_ASSERT_TRUE(::send(trigger->first.fd(), "t", 1, MSG_NOSIGNAL) == 1);
      const std::array<int, 2> two{p.r.get(), p.w.get()};
      auto sent = co_await a.send_with_fds(test::bytes_of("z"), two);
      CO_ASSERT_OK(sent);
      co_await std::move(hc);
      co_await std::move(hr);
      CO_ASSERT_TRUE(outcome.has_value());
      EXPECT_TRUE(test::fails_with(*outcome, std::errc::operation_canceled));
      for (const unique_fd& f : got) EXPECT_FALSE(f.valid());
    }
    EXPECT_EQ(test::open_fds(), before);
  }());
}

}  // namespace
}  // namespace coil
