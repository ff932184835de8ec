// when_all / when_any over single operations (socket ops, send_all, timers)
// as well as tasks: each operation runs as a child task.
#include <chrono>
#include <cstring>
#include <tuple>
#include <variant>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

std::vector<std::byte> text(const char* s) {
  std::vector<std::byte> v(std::strlen(s));
  std::memcpy(v.data(), s, v.size());
  return v;
}

TEST(WhenOps, WhenAllMixesOperationsAndTasks) {
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    const auto ping = text("ping"), pong = text("pong!");
    std::vector<std::byte> got_ping(ping.size()), got_pong(8);
    // b's reply and a's request cross: an op (send_all), a task (recv_exact)
    // and a plain op (recv) together.
    auto r = co_await when_all(a.send_all(ping), b.recv_exact(got_ping), b.send_all(pong), a.recv(got_pong));
    CO_ASSERT_OK(std::get<0>(r));
    CO_ASSERT_OK(std::get<1>(r));
    CO_ASSERT_OK(std::get<2>(r));
    CO_ASSERT_OK(std::get<3>(r));
    EXPECT_EQ(got_ping, ping);
    EXPECT_EQ(*std::get<3>(r), pong.size());
    EXPECT_EQ(0, std::memcmp(got_pong.data(), pong.data(), pong.size()));
  }());
}

TEST(WhenOps, WhenAnyOfARecvAndATimer) {
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    std::vector<std::byte> buf(16);
    // Nothing to read: the timer wins and the recv is cancelled and finished.
    auto quiet = co_await when_any(b.recv(buf), sleep_for(20ms));
    EXPECT_EQ(quiet.index(), 1u);
    EXPECT_FALSE(quiet.cancelled);
    EXPECT_EQ(b.pending(), 0u);
    // The socket is still usable, and now the recv wins.
    const auto hi = text("hi");
    auto w = co_await a.send_all(hi);
    CO_ASSERT_OK(w);
    auto busy = co_await when_any(b.recv(buf), sleep_for(10s));
    CO_ASSERT_TRUE(busy.index() == 0u);
    auto n = std::get<0>(busy);
    CO_ASSERT_OK(n);
    EXPECT_EQ(*n, hi.size());
    EXPECT_EQ(0, std::memcmp(buf.data(), hi.data(), hi.size()));
  }());
}

// The idle-timeout pattern under a shutdown: the caller is cancelled while
// both children wait, and whichever notices first "wins" (here the timer,
// whose result is operation_canceled): the index alone reads as a timeout.
// cancelled says what happened.
task<void> idle_connection(net::unix_stream& s, int& timeouts, int& shutdowns) {
  std::vector<std::byte> buf(16);
  for (;;) {
    auto r = co_await when_any(sleep_for(1h), s.recv(buf));
    if (r.cancelled) {
      ++shutdowns;
      EXPECT_TRUE(r.index() == 0 ? !std::get<0>(r) : !std::get<1>(r)) << "the winner only saw the cancellation";
      co_return;
    }
    if (r.index() == 0) ++timeouts;
    if (r.index() == 1) co_return;  // data or an error: not what this test sends
  }
}

TEST(WhenOps, WhenAnyInACancelledCallerSaysSo) {
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    int timeouts = 0, shutdowns = 0;
    auto h = runtime::current()->spawn(idle_connection(p->second, timeouts, shutdowns));
    co_await yield();  // both children wait
    co_await yield();
    h.cancel();
    co_await h;
    EXPECT_EQ(shutdowns, 1);
    EXPECT_EQ(timeouts, 0);
    // A caller cancelled before when_any starts: every child fails at once.
    auto h2 = runtime::current()->spawn([](int& shutdowns) -> task<void> {
      auto z = co_await sleep_for(1h);  // cancelled here
      (void)z;
      auto r = co_await when_any(sleep_for(1ms), sleep_for(1h));
      shutdowns += r.cancelled ? 1 : 0;
    }(shutdowns));
    co_await yield();
    h2.cancel();
    co_await h2;
    EXPECT_EQ(shutdowns, 2);
  }());
}

}  // namespace
