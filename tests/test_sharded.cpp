// sharded<T>: one T per core, made and destroyed on its own core; calls by
// core; misuse gives errors. Runs under TSan in scripts/test.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "coil/rt/sharded.hpp"
#include "test_cores_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

pid_t this_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// Where each core's probe was made and destroyed, and each core's thread.
struct where {
  std::atomic<pid_t> core_tid[2] = {0, 0};
  std::atomic<pid_t> made_tid[2] = {0, 0};
  std::atomic<pid_t> gone_tid[2] = {0, 0};
  std::atomic<int> made{0};
  std::atomic<int> gone{0};
};

struct probe {
  explicit probe(where* w, std::string tag) : w(w), tag(std::move(tag)), core(cores::current()) {
    w->made_tid[core].store(this_tid());
    w->made.fetch_add(1);
  }
  ~probe() {
    w->gone_tid[core].store(this_tid());
    w->gone.fetch_add(1);
  }
  where* w;
  std::string tag;
  unsigned core;
  int hits = 0;
};

TEST(Sharded, EachCoreMakesAndDestroysItsOwnT) {
  where w;
  sharded<probe> probes;
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    w.core_tid[core].store(this_tid());
    if (core != 0) co_return result<void>{};
    auto started = co_await probes.start(&w, std::string("p"));
    if (!started) co_return started;
    EXPECT_EQ(probes.size(), 2u);
    EXPECT_EQ(probes.local().core, 0u);
    co_return co_await probes.stop();
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(w.made.load(), 2);
  EXPECT_EQ(w.gone.load(), 2);
  for (int c = 0; c < 2; ++c) {
    EXPECT_NE(w.core_tid[c].load(), 0);
    EXPECT_EQ(w.made_tid[c].load(), w.core_tid[c].load()) << c;
    EXPECT_EQ(w.gone_tid[c].load(), w.core_tid[c].load()) << c;
  }
}

TEST(Sharded, InvokeOnAndInvokeOnAllRunOnTheirCores) {
  where w;
  sharded<probe> probes;
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core != 0) co_return result<void>{};
    auto started = co_await probes.start(&w, std::string("tag"));
    if (!started) co_return started;
    // A plain value, with an argument.
    auto on1 = co_await probes.invoke_on(1, [](probe& p, int k) {
      p.hits += k;
      return p.core * 100 + cores::current();
    }, 5);
    EXPECT_EQ(on1.value(), 101u);
    // A task, giving a result of its own.
    auto tagged = co_await probes.invoke_on(1, [](probe& p, std::string suffix) -> task<result<std::string>> {
      co_await sleep_for(1ms);
      co_return p.tag + suffix;
    }, std::string("-1"));
    EXPECT_EQ(tagged.value(), "tag-1");
    auto err = co_await probes.invoke_on(0, [](probe&) -> task<result<int>> { co_return fail(std::errc::io_error); });
    EXPECT_TRUE(test::fails_with(err, std::errc::io_error));
    // Every core, concurrently; void.
    auto all = co_await probes.invoke_on_all([](probe& p, int k) { p.hits += k; }, 2);
    EXPECT_TRUE(all) << all.error().message();
    auto h0 = co_await probes.invoke_on(0, [](probe& p) { return p.hits; });
    auto h1 = co_await probes.invoke_on(1, [](probe& p) { return p.hits; });
    EXPECT_EQ(h0.value(), 2);
    EXPECT_EQ(h1.value(), 7);
    EXPECT_EQ(probes.local().hits, 2);
    // An error on one core is invoke_on_all's.
    auto one_fails = co_await probes.invoke_on_all([](probe& p) -> result<void> {
      if (p.core == 1) return fail(std::errc::no_space_on_device);
      return {};
    });
    EXPECT_TRUE(test::fails_with(one_fails, std::errc::no_space_on_device));
    auto bad = co_await probes.invoke_on(2, [](probe& p) { return p.hits; });
    EXPECT_TRUE(test::fails_with(bad, std::errc::invalid_argument));
    co_return co_await probes.stop();
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(w.gone.load(), 2);
}

TEST(Sharded, UseBeforeStartOrAfterStopIsRuntimeClosed) {
  where w;
  sharded<probe> probes;
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core != 0) co_return result<void>{};
    auto early = co_await probes.invoke_on(1, [](probe& p) { return p.hits; });
    EXPECT_TRUE(test::fails_with(early, errc::runtime_closed));
    auto stop_idle = co_await probes.stop();  // nothing to stop
    EXPECT_TRUE(stop_idle);
    auto started = co_await probes.start(&w, std::string());
    if (!started) co_return started;
    auto again = co_await probes.start(&w, std::string());
    EXPECT_TRUE(test::fails_with(again, std::errc::invalid_argument));
    auto stopped = co_await probes.stop();
    EXPECT_TRUE(stopped);
    auto late = co_await probes.invoke_on(1, [](probe& p) { return p.hits; });
    EXPECT_TRUE(test::fails_with(late, errc::runtime_closed));
    auto late_all = co_await probes.invoke_on_all([](probe& p) { ++p.hits; });
    EXPECT_TRUE(test::fails_with(late_all, errc::runtime_closed));
    auto twice = co_await probes.stop();
    EXPECT_TRUE(twice);
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(w.made.load(), 2);
  EXPECT_EQ(w.gone.load(), 2);
}

// A service with a long-running call: stop() calls T::stop(), which ends
// the call, waits for it, then destroys T.
struct server {
  explicit server(std::atomic<int>* order) : order(order) {}
  ~server() { order->fetch_add(100); }  // after serve ended: +100 on top of +1
  task<void> serve() {
    (void)co_await quit.wait();
    order->fetch_add(1);
  }
  task<void> stop() {
    quit.set();
    co_return;
  }
  std::atomic<int>* order;
  event quit;
};

TEST(Sharded, StopEndsRunningCallsThroughTStopFirst) {
  std::atomic<int> order{0};
  sharded<server> servers;
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core != 0) co_return result<void>{};
    auto started = co_await servers.start(&order);
    if (!started) co_return started;
    auto serving = runtime::current()->spawn(servers.invoke_on_all([](server& s) { return s.serve(); }));
    co_await sleep_for(2ms);
    auto stopped = co_await servers.stop();
    EXPECT_TRUE(stopped);
    auto served = co_await serving;
    EXPECT_TRUE(served) << served.error().message();
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(order.load(), 202);
}

// cores::stop() cancels the serving calls; stop() still reaches every core.
TEST(Sharded, StopStillWorksAfterCoresStop) {
  where w;
  sharded<probe> probes;
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core != 0) co_return result<void>{};
    auto started = co_await probes.start(&w, std::string());
    if (!started) co_return started;
    auto serving = runtime::current()->spawn(probes.invoke_on_all([](probe&) -> task<void> {
      co_await sleep_for(1h);  // cancelled by cores::stop()
    }));
    co_await sleep_for(2ms);
    cores::stop();
    (void)co_await serving;
    co_return co_await probes.stop();
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(w.gone.load(), 2);
  EXPECT_EQ(w.gone_tid[1].load(), w.made_tid[1].load());
}

// Without cores::run a runtime is one core: the same code runs single-core.
TEST(Sharded, APlainRuntimeIsOneShard) {
  where w;
  sharded<probe> probes;
  EXPECT_EQ(cores::count(), 0u);  // no runtime here
  test::run([](sharded<probe>& probes, where& w) -> task<void> {
    EXPECT_EQ(cores::count(), 1u);
    EXPECT_EQ(cores::current(), 0u);
    auto started = co_await probes.start(&w, std::string("solo"));
    CO_ASSERT_OK(started);
    EXPECT_EQ(probes.size(), 1u);
    auto v = co_await probes.invoke_on(0, [](probe& p, int k) -> task<int> {
      p.hits += k;
      co_return p.hits;
    }, 3);
    EXPECT_EQ(v.value(), 3);
    auto all = co_await probes.invoke_on_all([](probe& p) { ++p.hits; });
    EXPECT_TRUE(all);
    EXPECT_EQ(probes.local().hits, 4);
    auto bad = co_await probes.invoke_on(1, [](probe& p) { return p.hits; });
    EXPECT_TRUE(test::fails_with(bad, std::errc::invalid_argument));
    auto stopped = co_await probes.stop();
    EXPECT_TRUE(stopped);
    auto late = co_await probes.invoke_on(0, [](probe& p) { return p.hits; });
    EXPECT_TRUE(test::fails_with(late, errc::runtime_closed));
  }(probes, w));
  EXPECT_EQ(w.made.load(), 1);
  EXPECT_EQ(w.gone.load(), 1);
  EXPECT_EQ(w.made_tid[0].load(), this_tid());
}

}  // namespace
