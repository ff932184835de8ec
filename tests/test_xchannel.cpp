// xchannel<T>: the cross-core channel. Suite names start with "Channel" so
// scripts/test runs them under ThreadSanitizer.

#include <atomic>
#include <chrono>
#include <memory>

#include "coil/rt/cores.hpp"
#include "coil/sync/xchannel.hpp"
#include "test_cores_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

// Polls (on the caller's core) until pred() holds or ~2 s pass.
template <class Pred>
task<bool> eventually(Pred pred) {
  for (int i = 0; i < 2000; ++i) {
    if (pred()) co_return true;
    auto z = co_await sleep_for(1ms);
    if (!z) co_return false;
  }
  co_return pred();
}

TEST(ChannelCross, WorksWithinOneRuntimeLikeChannel) {
  xchannel<int> ch(2);
  test::run([&]() -> task<void> {
    CO_EXPECT_OK(co_await ch.send(1));
    CO_EXPECT_OK(ch.try_send(2));
    CO_EXPECT_FAIL(ch.try_send(3), std::errc::operation_would_block);
    auto send3 = [&]() -> task<result<void>> { co_return co_await ch.send(3); };  // outlives its task
    auto late = runtime::current()->spawn(send3());
    auto a = co_await ch.recv();
    CO_ASSERT_OK(a);
    EXPECT_EQ(*a, 1);
    auto ok = co_await late;  // woken by the recv: its value moved into the buffer
    CO_EXPECT_OK(ok);
    auto b = ch.try_recv();
    CO_ASSERT_OK(b);
    EXPECT_EQ(*b, 2);
    auto c = co_await ch.recv();
    CO_ASSERT_OK(c);
    EXPECT_EQ(*c, 3);
    CO_EXPECT_FAIL(ch.try_recv(), std::errc::operation_would_block);
    CO_EXPECT_OK(co_await ch.send(4));
    ch.close();
    CO_EXPECT_FAIL(co_await ch.send(5), sync_errc::closed);
    auto d = co_await ch.recv();  // buffered items survive close
    CO_ASSERT_OK(d);
    EXPECT_EQ(*d, 4);
    CO_EXPECT_FAIL(co_await ch.recv(), sync_errc::closed);
  }());
}

TEST(ChannelCross, CancelledReceiverLeavesAndLosesNothing) {
  xchannel<int> ch(4);
  test::run([&]() -> task<void> {
    auto r = co_await with_timeout(ch.recv(), 10ms);
    EXPECT_TRUE(test::fails_with(r, std::errc::timed_out));
    CO_EXPECT_OK(co_await ch.send(7));
    auto v = co_await ch.recv();
    CO_ASSERT_OK(v);
    EXPECT_EQ(*v, 7);
  }());
}

TEST(ChannelCross, MillionMessagesBetweenTwoCoresCountsAreExact) {
  constexpr int senders = 4, receivers = 4, per_sender = 250'000;
  xchannel<uint64_t> ch(1024);
  std::atomic<uint64_t> got{0}, sum{0};
  std::atomic<int> senders_done{0};
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    // Named lambdas: they outlive the tasks made from them.
    auto sender = [&](int s) -> task<result<void>> {
      for (int i = 0; i < per_sender; ++i) {
        auto ok = co_await ch.send(uint64_t(s) * per_sender + i);
        if (!ok) co_return ok;
      }
      if (senders_done.fetch_add(1) + 1 == senders) ch.close();
      co_return result<void>{};
    };
    auto receiver = [&]() -> task<result<void>> {
          uint64_t n = 0, total = 0;
          for (;;) {
            auto v = co_await ch.recv();
            if (!v) {
              if (v.error() != sync_errc::closed) co_return fail(v.error());
              break;
            }
            ++n;
            total += *v;
          }
          got += n;
          sum += total;
          co_return result<void>{};
    };
    std::vector<join_handle<result<void>>> hs;
    if (core == 0) {
      for (int s = 0; s < senders; ++s) hs.push_back(runtime::current()->spawn(sender(s)));
    } else {
      for (int k = 0; k < receivers; ++k) hs.push_back(runtime::current()->spawn(receiver()));
    }
    for (auto& h : hs) {
      auto res = co_await h;
      if (!res) co_return res;
    }
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  const uint64_t n = uint64_t(senders) * per_sender;
  EXPECT_EQ(got.load(), n);
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
}

TEST(ChannelCross, CloseWakesEveryWaiterOnBothCores) {
  constexpr int per_core = 50;
  xchannel<int> empty(1), full(1);
  ASSERT_TRUE(full.try_send(0));
  std::atomic<int> parked{0}, closed_recv{0}, closed_send{0};
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    auto receiver = [&]() -> task<void> {
      ++parked;
      auto v = co_await empty.recv();
      if (!v && v.error() == sync_errc::closed) ++closed_recv;
    };
    auto sender = [&]() -> task<void> {
      ++parked;
      auto s = co_await full.send(1);
      if (!s && s.error() == sync_errc::closed) ++closed_send;
    };
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < per_core; ++i) {
      hs.push_back(runtime::current()->spawn(receiver()));
      hs.push_back(runtime::current()->spawn(sender()));
    }
    if (core == 0) {
      auto all = co_await eventually([&] { return parked.load() == 4 * per_core; });
      EXPECT_TRUE(all);
      auto z = co_await sleep_for(20ms);  // let the last ones reach their wait
      (void)z;
      EXPECT_EQ(closed_recv.load() + closed_send.load(), 0);
      empty.close();
      full.close();
      // Fail rather than hang if a waiter was missed.
      auto woke = co_await eventually([&] { return closed_recv.load() + closed_send.load() == 4 * per_core; });
      EXPECT_TRUE(woke) << "close left waiters asleep";
      if (!woke) cores::stop();
    }
    for (auto& h : hs) co_await h;
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(closed_recv.load(), 2 * per_core);
  EXPECT_EQ(closed_send.load(), 2 * per_core);
}

TEST(ChannelCross, StopWhileThousandsWaitOnRecvReturnsAndLeaksNoFd) {
  const int fds_before = test::open_fds();
  const auto t0 = std::chrono::steady_clock::now();
  {
    xchannel<int> ch(16);
    std::atomic<int> parked{0}, cancelled{0};
    auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
      auto receiver = [&]() -> task<void> {
        ++parked;
        auto v = co_await ch.recv();
        if (!v && v.error() == std::errc::operation_canceled) ++cancelled;
      };
      std::vector<join_handle<void>> hs;
      for (int i = 0; i < 1000; ++i) hs.push_back(runtime::current()->spawn(receiver()));
      if (core == 0) {
        auto all = co_await eventually([&] { return parked.load() == 2000; });
        EXPECT_TRUE(all);
        cores::stop();
      }
      for (auto& h : hs) co_await h;
      co_return result<void>{};
    });
    EXPECT_TRUE(r || r.error() == std::errc::operation_canceled) << r.error().message();
    EXPECT_EQ(cancelled.load(), 2000);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(test::open_fds(), fds_before);
}

TEST(ChannelCross, PlainRuntimesOnTwoThreadsTalk) {
  xchannel<std::unique_ptr<int>> ch(1);
  std::thread peer([&] {
    test::run([&]() -> task<void> {
      for (int i = 0; i < 1000; ++i) CO_EXPECT_OK(co_await ch.send(std::make_unique<int>(i)));
      ch.close();
    }());
  });
  int n = 0;
  long total = 0;
  test::run([&]() -> task<void> {
    for (;;) {
      auto v = co_await ch.recv();
      if (!v) break;
      ++n;
      total += **v;
    }
  }());
  peer.join();
  EXPECT_EQ(n, 1000);
  EXPECT_EQ(total, 999L * 1000 / 2);
}

}  // namespace
