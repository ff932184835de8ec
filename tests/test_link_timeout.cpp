// with_timeout over single operations, and the same deadline as a link
// timeout (rt/link.hpp): the same results on both drivers.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "test_net_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

TEST(LinkTimeout, WithTimeoutOverAPipeRead) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  test::run([](int rfd, int wfd) -> task<void> {
    file f(unique_fd(::dup(rfd)));
    std::vector<std::byte> buf(16);
    auto r = co_await with_timeout(f.read(buf), 20ms);
    EXPECT_TRUE(test::fails_with(r, std::errc::timed_out));
    EXPECT_EQ(runtime::current()->driver().in_flight(), 0u);
    // The kernel's form of the same deadline.
    auto [k, t] = co_await link(f.read(buf), link_timeout(20ms));
    EXPECT_TRUE(test::fails_with(k, std::errc::timed_out));
    EXPECT_TRUE(test::fails_with(t, std::errc::timed_out));
    // Data in time.
    EXPECT_EQ(::write(wfd, "abc", 3), 3);
    auto n = co_await with_timeout(f.read(buf), 10s);
    CO_ASSERT_OK(n);
    EXPECT_EQ(test::text_of(std::span(buf).first(*n)), "abc");
    // A forever timeout is a plain read.
    EXPECT_EQ(::write(wfd, "d", 1), 1);
    auto m = co_await with_timeout(f.read(buf), std::chrono::hours::max());
    CO_ASSERT_OK(m);
    EXPECT_EQ(*m, 1u);
  }(p[0], p[1]));
  ::close(p[0]);
  ::close(p[1]);
}

TEST(LinkTimeout, WithTimeoutOverASocketRecv) {
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    std::vector<std::byte> buf(16);
    auto r = co_await with_timeout(b.recv(buf), 20ms);
    EXPECT_TRUE(test::fails_with(r, std::errc::timed_out));
    EXPECT_EQ(b.pending(), 0u);
    auto sent = co_await a.send_all(test::bytes_of("ping"));
    CO_ASSERT_OK(sent);
    auto n = co_await with_timeout(b.recv(buf), 10s);
    CO_ASSERT_OK(n);
    EXPECT_EQ(test::text_of(std::span(buf).first(*n)), "ping");
    // Sends too.
    auto s = co_await with_timeout(b.send(test::bytes_of("pong")), 10s);
    CO_ASSERT_OK(s);
    EXPECT_EQ(*s, 4u);
    auto m = co_await a.recv(buf);
    CO_ASSERT_OK(m);
    EXPECT_EQ(test::text_of(std::span(buf).first(*m)), "pong");
  }());
}

task<void> timed_recv(net::unix_stream& s, result<size_t>& out) {
  std::vector<std::byte> buf(16);
  out = co_await with_timeout(s.recv(buf), 10s);
}

TEST(LinkTimeout, ClosingTheSocketEndsATimedRecv) {
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    result<size_t> got = 0u;
    auto h = runtime::current()->spawn(timed_recv(b, got));
    co_await yield();
    co_await yield();
    EXPECT_EQ(b.pending(), 1u);
    CO_EXPECT_OK(co_await b.close());
    co_await std::move(h);
    EXPECT_TRUE(test::fails_with(got, std::errc::operation_canceled));
    EXPECT_EQ(runtime::current()->driver().in_flight(), 0u);
  }());
}

TEST(LinkTimeout, CancellingTheCallerIsNotATimeout) {
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    result<size_t> got = 0u;
    auto r = co_await when_any(timed_recv(b, got), sleep_for(20ms));
    EXPECT_EQ(r.index(), 1u);
    EXPECT_TRUE(test::fails_with(got, std::errc::operation_canceled));
    EXPECT_EQ(b.pending(), 0u);
    EXPECT_EQ(runtime::current()->driver().in_flight(), 0u);
  }());
}

TEST(LinkTimeout, ANopFinishesBeforeItsTimeout) {
  test::run([]() -> task<void> {
    for (int i = 0; i < 100; ++i) {
      auto r = co_await with_timeout(nop(), 1s);
      CO_ASSERT_OK(r);
    }
    EXPECT_EQ(runtime::current()->driver().in_flight(), 0u);
  }());
}

}  // namespace
