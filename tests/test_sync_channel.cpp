// coil::channel<T>: FIFO, capacity, close semantics, cancellation races, and
// counts over 100,000 messages.
#include <memory>
#include <string>
#include <vector>

#include "coil/sync/channel.hpp"
#include "test_sync_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;
using namespace coil::test;  // run, settle, start_here, error_of

struct tally {
  uint64_t count = 0;
  uint64_t sum = 0;
  uint64_t out_of_order = 0;
  std::size_t peak_size = 0;
};

task<void> produce(channel<uint64_t>& ch, uint64_t first, uint64_t n, tally& t) {
  for (uint64_t i = 0; i < n; ++i) {
    auto r = co_await ch.send(first + i);
    if (!r) co_return;
    t.peak_size = std::max(t.peak_size, ch.size());
  }
}

TEST(Channel, HundredThousandMessagesInOrder) {
  tally t;
  auto body = [](tally& t) -> task<result<void>> {
    channel<uint64_t> ch(16);
    constexpr uint64_t n = 100'000;
    auto p = runtime::current()->spawn(produce(ch, 0, n, t));
    uint64_t expect = 0;
    for (uint64_t i = 0; i < n; ++i) {
      auto v = co_await ch.recv();
      if (!v) co_return fail(v.error());
      if (*v != expect) ++t.out_of_order;
      expect = *v + 1;
      ++t.count;
      t.sum += *v;
    }
    co_await p;
    EXPECT_EQ(ch.size(), 0u);
    co_return result<void>{};
  };
  auto r = run(body(t));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(t.count, 100'000u);
  EXPECT_EQ(t.sum, 100'000ull * 99'999ull / 2);
  EXPECT_EQ(t.out_of_order, 0u);
  EXPECT_LE(t.peak_size, 16u);
}

// Several producers and consumers; every message is received exactly once,
// and each consumer sees each producer's messages in the order sent.
TEST(Channel, ManyProducersManyConsumersExactlyOnce) {
  constexpr uint64_t producers = 4, per_producer = 25'000, consumers = 3;
  std::vector<uint8_t> seen(producers * per_producer, 0);
  tally t;
  uint64_t order_breaks = 0;
  auto consumer = [](channel<uint64_t>& ch, std::vector<uint8_t>& seen, uint64_t& order_breaks) -> task<void> {
    std::vector<uint64_t> last(producers, 0);
    std::vector<bool> any(producers, false);
    for (;;) {
      auto v = co_await ch.recv();
      if (!v) co_return;  // closed and drained
      const uint64_t who = *v / per_producer;
      if (any[who] && *v <= last[who]) ++order_breaks;
      any[who] = true;
      last[who] = *v;
      ++seen[*v];
    }
  };
  auto body = [&]() -> task<result<void>> {
    channel<uint64_t> ch(8);
    std::vector<join_handle<void>> ps, cs;
    for (uint64_t c = 0; c < consumers; ++c) cs.push_back(runtime::current()->spawn(consumer(ch, seen, order_breaks)));
    for (uint64_t p = 0; p < producers; ++p)
      ps.push_back(runtime::current()->spawn(produce(ch, p * per_producer, per_producer, t)));
    for (auto& h : ps) co_await h;
    ch.close();
    for (auto& h : cs) co_await h;
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
  uint64_t once = 0;
  for (uint8_t s : seen) once += (s == 1);
  EXPECT_EQ(once, producers * per_producer);
  EXPECT_EQ(order_breaks, 0u);
  EXPECT_LE(t.peak_size, 8u);
}

TEST(Channel, CloseWakesEveryWaitingReceiver) {
  auto body = []() -> task<result<void>> {
    channel<int> ch(4);
    std::vector<join_handle<std::error_code>> hs;
    for (int i = 0; i < 6; ++i) {
      hs.push_back(runtime::current()->spawn([](channel<int>& ch) -> task<std::error_code> {
        auto v = co_await ch.recv();
        co_return error_of(v);
      }(ch)));
    }
    co_await settle();
    ch.close();
    for (auto& h : hs) {
      const std::error_code e = co_await h;
      EXPECT_EQ(e, sync_errc::closed);
    }
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Channel, CloseFailsWaitingSendersAndReceiversDrainFirst) {
  auto body = []() -> task<result<void>> {
    channel<int> ch(2);
    EXPECT_TRUE(ch.try_send(1));
    EXPECT_TRUE(ch.try_send(2));
    EXPECT_EQ(error_of(ch.try_send(3)), std::errc::operation_would_block);
    std::vector<join_handle<std::error_code>> senders;
    for (int i = 0; i < 3; ++i) {
      senders.push_back(runtime::current()->spawn([](channel<int>& ch, int v) -> task<std::error_code> {
        auto r = co_await ch.send(v);
        co_return error_of(r);
      }(ch, 10 + i)));
    }
    co_await settle();
    ch.close();
    for (auto& h : senders) {
      const std::error_code e = co_await h;
      EXPECT_EQ(e, sync_errc::closed);
    }
    EXPECT_EQ(error_of(ch.try_send(4)), sync_errc::closed);
    auto a = co_await ch.recv();
    auto b = co_await ch.recv();
    auto c = co_await ch.recv();
    EXPECT_TRUE(a && *a == 1);
    EXPECT_TRUE(b && *b == 2);
    EXPECT_EQ(error_of(c), sync_errc::closed);
    EXPECT_EQ(error_of(ch.try_recv()), sync_errc::closed);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Channel, WaitingSendersAreServedInOrder) {
  auto body = []() -> task<result<std::vector<int>>> {
    channel<int> ch(1);
    EXPECT_TRUE(ch.try_send(0));
    std::vector<join_handle<result<void>>> hs;
    for (int i = 1; i <= 5; ++i) {
      hs.push_back(runtime::current()->spawn(
          [](channel<int>& ch, int v) -> task<result<void>> { co_return co_await ch.send(v); }(ch, i)));
    }
    co_await settle();
    std::vector<int> got;
    for (int i = 0; i <= 5; ++i) {
      auto v = co_await ch.recv();
      if (!v) co_return fail(v.error());
      got.push_back(*v);
      EXPECT_LE(ch.size(), 1u);
    }
    for (auto& h : hs) (void)co_await h;
    co_return got;
  };
  auto got = run(body());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

task<result<int>> recv_one(channel<int>& ch) { co_return co_await ch.recv(); }

// An item arriving and a receiver being cancelled in the same turn, in both
// orders: the item is received exactly once.
TEST(Channel, ItemRacingReceiverCancelIsNeverLost) {
  for (bool cancel_first : {true, false}) {
    auto body = [](bool cancel_first) -> task<result<void>> {
      channel<int> ch(4);
      auto a = runtime::current()->spawn(recv_one(ch));
      auto b = runtime::current()->spawn(recv_one(ch));
      co_await settle();
      if (cancel_first) {
        a.cancel();
        EXPECT_TRUE(ch.try_send(42));
      } else {
        EXPECT_TRUE(ch.try_send(42));  // promised to a; a keeps it
        a.cancel();
      }
      auto ra = co_await a;
      if (cancel_first) {
        EXPECT_EQ(error_of(ra), std::errc::operation_canceled);
        auto rb = co_await b;
        EXPECT_TRUE(rb && *rb == 42);
      } else {
        EXPECT_TRUE(ra && *ra == 42);
        EXPECT_FALSE(b.done());
        ch.close();
        auto rb = co_await b;
        EXPECT_EQ(error_of(rb), sync_errc::closed);
      }
      EXPECT_EQ(ch.size(), 0u);
      co_return result<void>{};
    };
    ASSERT_TRUE(run(body(cancel_first)));
  }
}

task<void> recv_into(channel<int>& ch, result<int>& out) { out = co_await ch.recv(); }

TEST(Channel, ItemPromisedToADestroyedReceiverGoesToTheNext) {
  auto body = []() -> task<result<void>> {
    channel<int> ch(4);
    result<int> got = fail(std::errc::invalid_argument), lost = fail(std::errc::invalid_argument);
    auto b = recv_into(ch, got);
    {
      auto a = recv_into(ch, lost);
      start_here(a);
      start_here(b);
      EXPECT_TRUE(ch.try_send(7));  // promised to a
      EXPECT_EQ(error_of(ch.try_recv()), std::errc::operation_would_block);
    }  // a dies before taking it
    co_await settle();
    EXPECT_TRUE(b.done());
    EXPECT_TRUE(got && *got == 7);
    EXPECT_EQ(error_of(lost), std::errc::invalid_argument);
    EXPECT_EQ(ch.size(), 0u);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Channel, CancelledSenderDoesNotDeliver) {
  auto body = []() -> task<result<void>> {
    channel<int> ch(1);
    EXPECT_TRUE(ch.try_send(1));
    auto s =
        runtime::current()->spawn([](channel<int>& ch) -> task<result<void>> { co_return co_await ch.send(2); }(ch));
    auto t =
        runtime::current()->spawn([](channel<int>& ch) -> task<result<void>> { co_return co_await ch.send(3); }(ch));
    co_await settle();
    s.cancel();
    auto rs = co_await s;
    EXPECT_EQ(error_of(rs), std::errc::operation_canceled);
    auto a = co_await ch.recv();
    auto b = co_await ch.recv();
    EXPECT_TRUE(a && *a == 1);
    EXPECT_TRUE(b && *b == 3);
    auto rt = co_await t;
    EXPECT_TRUE(rt);
    EXPECT_EQ(ch.size(), 0u);
    co_return result<void>{};
  };
  ASSERT_TRUE(run(body()));
}

TEST(Channel, MoveOnlyItemsAndTimeouts) {
  auto body = []() -> task<result<void>> {
    channel<std::unique_ptr<std::string>> ch(2);
    auto r = co_await ch.send(std::make_unique<std::string>("hello"));
    EXPECT_TRUE(r);
    auto v = co_await ch.recv();
    EXPECT_TRUE(v && **v == "hello");
    auto empty = co_await with_timeout(ch.recv(), 1ms);
    EXPECT_EQ(error_of(empty), std::errc::timed_out);
    auto x = std::make_unique<std::string>("kept");
    EXPECT_TRUE(ch.try_send(std::move(x)));
    auto y = std::make_unique<std::string>("y");
    EXPECT_TRUE(ch.try_send(std::move(y)));
    auto z = std::make_unique<std::string>("z");
    EXPECT_FALSE(ch.try_send(std::move(z)));
    EXPECT_TRUE(z && *z == "z");  // a refused item is not moved from
    co_return result<void>{};     // the two buffered strings are freed with the channel
  };
  ASSERT_TRUE(run(body()));
}

}  // namespace
