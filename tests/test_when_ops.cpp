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

}  // namespace
