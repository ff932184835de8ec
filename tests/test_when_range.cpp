// try_when_all (fail-fast join), when_all / when_any over a vector, and
// runtime::block_on of a plain awaitable, over real loopback sockets.
#include <chrono>
#include <cstring>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "test_net_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

// A connected TCP pair over 127.0.0.1.
task<result<std::pair<net::tcp_stream, net::tcp_stream>>> tcp_pair() {
  auto l = test::listen_loopback();
  auto [c, a] = co_await when_all(net::tcp_stream::connect(l.addr), l.listener.accept());
  if (!c) co_return fail(c.error());
  if (!a) co_return fail(a.error());
  co_return std::pair{std::move(*c), std::move(*a)};
}

// Waits in a real recv (the peer never sends); records how it ended.
task<result<std::size_t>> recv_forever(net::tcp_stream& s, std::error_code& ended) {
  std::vector<std::byte> buf(64);
  auto r = co_await s.recv(buf);
  if (!r) ended = r.error();
  co_return r;
}

task<result<int>> fail_after(std::chrono::milliseconds d, std::errc e) {
  co_await sleep_for(d);
  co_return fail(e);
}

task<result<int>> value_after(std::chrono::milliseconds d, int v) {
  auto s = co_await sleep_for(d);
  if (!s) co_return fail(s.error());  // cancelled
  co_return v;
}

task<result<void>> ok_after(std::chrono::milliseconds d) {
  co_return co_await sleep_for(d);
}

TEST(TryWhenAll, TheFirstErrorCancelsARecvAndIsReturned) {
  test::run([]() -> task<void> {
    auto p = co_await tcp_pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    std::error_code recv_end;
    auto r = co_await try_when_all(recv_forever(a, recv_end), fail_after(2ms, std::errc::io_error),
                                   value_after(1h, 7));
    EXPECT_TRUE(test::fails_with(r, std::errc::io_error));
    EXPECT_EQ(recv_end, std::errc::operation_canceled);  // stopped and awaited
    EXPECT_EQ(a.pending(), 0u);
    // The socket still works: the cancelled recv took nothing.
    auto sent = co_await b.send_all(test::bytes_of("after"));
    CO_ASSERT_OK(sent);
    std::vector<std::byte> buf(5);
    auto got = co_await a.recv_exact(buf);
    CO_ASSERT_OK(got);
    EXPECT_EQ(test::text_of(buf), "after");
  }());
}

TEST(TryWhenAll, AllSucceedGivesEveryValueAndMonostateForVoid) {
  test::run([]() -> task<void> {
    auto p = co_await tcp_pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    std::vector<std::byte> buf(4);
    auto r = co_await try_when_all(value_after(2ms, 1), ok_after(1ms), b.send_all(test::bytes_of("ping")),
                                   a.recv_exact(buf), value_after(0ms, 3));
    CO_ASSERT_OK(r);
    auto& [one, nothing, sent, received, three] = *r;
    EXPECT_EQ(one, 1);
    EXPECT_EQ(three, 3);
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(nothing)>, std::monostate>);
    EXPECT_EQ(sent, 4u);  // a transfer_result child gives its byte count
    EXPECT_EQ(received, 4u);
    EXPECT_EQ(test::text_of(buf), "ping");
  }());
}

// A caller cancelled mid-join cancels every child and gets operation_canceled.
TEST(TryWhenAll, CancellingTheCallerCancelsEveryChild) {
  test::run([]() -> task<void> {
    auto h = runtime::current()->spawn(try_when_all(value_after(1h, 1), value_after(1h, 2)));
    co_await sleep_for(1ms);
    h.cancel();
    auto r = co_await h;
    EXPECT_TRUE(test::fails_with(r, std::errc::operation_canceled));
  }());
}

TEST(TryWhenAll, OverAVectorInOrderOrTheFirstError) {
  test::run([]() -> task<void> {
    std::vector<task<result<int>>> ok;
    for (int i = 0; i < 5; ++i) ok.push_back(value_after(std::chrono::milliseconds(5 - i), i * 10));
    auto r = co_await try_when_all(std::move(ok));
    CO_ASSERT_OK(r);
    EXPECT_EQ(*r, (std::vector<int>{0, 10, 20, 30, 40}));

    auto p = co_await tcp_pair();
    CO_ASSERT_OK(p);
    std::error_code recv_end;
    std::vector<task<result<std::size_t>>> bad;
    bad.push_back(recv_forever(p->first, recv_end));
    bad.push_back([]() -> task<result<std::size_t>> {
      co_await sleep_for(1ms);
      co_return fail(std::errc::connection_reset);
    }());
    auto e = co_await try_when_all(std::move(bad));
    EXPECT_TRUE(test::fails_with(e, std::errc::connection_reset));
    EXPECT_EQ(recv_end, std::errc::operation_canceled);

    auto none = co_await try_when_all(std::vector<task<result<void>>>{});
    CO_ASSERT_OK(none);
    EXPECT_TRUE(none->empty());
  }());
}

TEST(WhenRange, WhenAllOverAVectorKeepsTheOrder) {
  test::run([]() -> task<void> {
    std::vector<task<result<int>>> ts;
    for (int i = 0; i < 8; ++i) {
      ts.push_back(i == 3 ? fail_after(1ms, std::errc::io_error) : value_after(std::chrono::milliseconds(8 - i), i));
    }
    auto rs = co_await when_all(std::move(ts));
    CO_ASSERT_TRUE(rs.size() == 8u);
    for (int i = 0; i < 8; ++i) {
      if (i == 3) {
        EXPECT_TRUE(test::fails_with(rs[i], std::errc::io_error));  // when_all waits for everyone
      } else {
        EXPECT_EQ(rs[i].value(), i);
      }
    }
    auto empty = co_await when_all(std::vector<task<int>>{});
    EXPECT_TRUE(empty.empty());
    std::vector<task<void>> voids;
    voids.push_back([]() -> task<void> { co_return; }());
    voids.push_back([]() -> task<void> { co_await sleep_for(1ms); }());
    auto vs = co_await when_all(std::move(voids));
    EXPECT_EQ(vs.size(), 2u);
  }());
}

// The connection that answers first wins; the others' recvs are cancelled.
TEST(WhenRange, WhenAnyOverAVectorGivesTheWinnersIndex) {
  test::run([]() -> task<void> {
    std::vector<std::pair<net::tcp_stream, net::tcp_stream>> conns;
    for (int i = 0; i < 4; ++i) {
      auto p = co_await tcp_pair();
      CO_ASSERT_OK(p);
      conns.push_back(std::move(*p));
    }
    std::error_code ends[4];
    std::vector<task<result<std::size_t>>> ts;
    for (int i = 0; i < 4; ++i) ts.push_back(recv_forever(conns[i].first, ends[i]));
    auto sent = co_await conns[2].second.send_all(test::bytes_of("x"));
    CO_ASSERT_OK(sent);
    auto w = co_await when_any(std::move(ts));
    CO_ASSERT_OK(w);
    EXPECT_EQ(w->index, 2u);
    EXPECT_FALSE(w->cancelled);
    CO_ASSERT_OK(w->value);
    EXPECT_EQ(*w->value, 1u);
    for (int i = 0; i < 4; ++i) {
      if (i != 2) {
        EXPECT_EQ(ends[i], std::errc::operation_canceled) << i;
      }
      EXPECT_EQ(conns[i].first.pending(), 0u);
    }
    auto empty = co_await when_any(std::vector<task<int>>{});
    EXPECT_TRUE(test::fails_with(empty, std::errc::invalid_argument));
  }());
}

TEST(WhenRange, BlockOnTakesAnAwaitable) {
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  auto p = net::unix_stream::pair();
  ASSERT_TRUE(p);
  auto sent = (*rt)->block_on(p->first.send_all(test::bytes_of("hello")));
  ASSERT_TRUE(sent) << sent.error().message();
  std::vector<std::byte> buf(16);
  auto n = (*rt)->block_on(p->second.recv(buf));
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(test::text_of(std::span(buf).first(*n)), "hello");
  auto timed = (*rt)->block_on(with_timeout(p->second.recv(buf), 1ms));
  EXPECT_TRUE(test::fails_with(timed, std::errc::timed_out));
  auto slept = (*rt)->block_on(sleep_for(1ms));
  EXPECT_TRUE(slept);
}

}  // namespace
