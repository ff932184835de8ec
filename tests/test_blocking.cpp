// spawn_blocking: the shared pool for calls with no async form. Suite names
// start with "Cores" so scripts/test runs them under ThreadSanitizer.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "coil/rt/blocking.hpp"
#include "coil/rt/cores.hpp"
#include "test_cores_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

TEST(CoresBlocking, ReturnsValuesVoidAndErrorsOnAPlainRuntime) {
  test::run([]() -> task<void> {
    auto v = co_await spawn_blocking([] { return 41 + 1; });
    CO_ASSERT_OK(v);
    EXPECT_EQ(*v, 42);
    const auto caller = std::this_thread::get_id();
    auto where = co_await spawn_blocking([] { return std::this_thread::get_id(); });
    CO_ASSERT_OK(where);
    EXPECT_NE(*where, caller);
    bool ran = false;
    auto none = co_await spawn_blocking([&] { ran = true; });
    CO_EXPECT_OK(none);
    EXPECT_TRUE(ran);
    auto err = co_await spawn_blocking([]() -> result<int> { return fail(std::errc::io_error); });
    EXPECT_TRUE(test::fails_with(err, std::errc::io_error));
  }());
}

// Values that own memory (short and long strings, a vector) travel to the
// pool thread and back, and are freed once (ASan checks that): as
// arguments, as a named lambda's captures handed over with coil::moved, and
// as a copied lvalue lambda (rt/await_arg.hpp).
TEST(CoresBlocking, OwningCapturesAndValuesSurviveTheTrip) {
  test::run([]() -> task<void> {
    std::string small = "abc";
    std::string large(1000, 'x');
    std::vector<int> v{1, 2, 3};
    auto r = co_await spawn_blocking(
        [](const std::string& s, const std::string& l, std::vector<int> w) {
          return s + std::to_string(l.size()) + std::to_string(w.size());
        },
        small, large, std::move(v));
    CO_ASSERT_OK(r);
    EXPECT_EQ(*r, "abc10003");
    auto job = [s = std::move(large)]() -> result<std::vector<char>> { return std::vector<char>(s.begin(), s.end()); };
    auto copied = co_await spawn_blocking(job);
    CO_ASSERT_OK(copied);
    EXPECT_EQ(copied->size(), 1000u);
    auto back = co_await spawn_blocking(coil::moved(job));
    CO_ASSERT_OK(back);
    EXPECT_EQ(back->size(), 1000u);
  }());
}

TEST(CoresBlocking, BlockingSleepDoesNotDelayATimerOnTheCallersCore) {
  test::run([]() -> task<void> {
    const auto t0 = clk::now();
    auto job = runtime::current()->spawn(spawn_blocking([] { std::this_thread::sleep_for(400ms); return 1; }));
    auto s = co_await sleep_for(20ms);
    CO_EXPECT_OK(s);
    const auto timer_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - t0).count();
    EXPECT_FALSE(job.done());
    EXPECT_LT(timer_ms, 200) << "the timer waited for the blocking call";
    auto v = co_await job;
    CO_ASSERT_OK(v);
    EXPECT_GE(clk::now() - t0, 400ms);
  }());
}

TEST(CoresBlocking, ManyConcurrentCallsAllAnswer) {
  test::run([]() -> task<void> {
    std::vector<join_handle<result<int>>> hs;
    for (int i = 0; i < 200; ++i) hs.push_back(runtime::current()->spawn(spawn_blocking([i] {
      std::this_thread::sleep_for(1ms);
      return i;
    })));
    long sum = 0;
    for (auto& h : hs) {
      auto v = co_await h;
      CO_ASSERT_OK(v);
      sum += *v;
    }
    EXPECT_EQ(sum, 199 * 200 / 2);
  }());
}

TEST(CoresBlocking, CancelledCallerResumesAtOnceAndTheJobFinishesSafely) {
  auto finished = std::make_shared<std::atomic<int>>(0);
  test::run([&]() -> task<void> {
    auto r = co_await with_timeout(spawn_blocking(
                                       [](const std::shared_ptr<std::atomic<int>>& f) {
                                         std::this_thread::sleep_for(300ms);
                                         f->fetch_add(1);
                                         return std::vector<int>(1000, 7);  // a value that must be freed
                                       },
                                       finished),
                                   10ms);
    EXPECT_TRUE(test::fails_with(r, std::errc::timed_out));
    EXPECT_EQ(finished->load(), 0);
  }());
  for (int i = 0; i < 200 && finished->load() == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(finished->load(), 1);
}

TEST(CoresBlocking, RuntimeDestroyedWhileAJobRunsDoesNotHangOrDangle) {
  std::atomic<int> finished{0};
  {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    (*rt)->spawn(spawn_blocking([&] {
      std::this_thread::sleep_for(100ms);
      finished.fetch_add(1);
    })).detach();
    auto s = (*rt)->block_on([]() -> task<result<void>> { co_return co_await sleep_for(5ms); }());
    EXPECT_TRUE(s);
  }  // the waiting frame goes; the job runs on
  // A deadline, not a count of sleeps: a loaded machine may run the job late.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (finished.load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(finished.load(), 1);
}

TEST(CoresBlocking, OneCoresBlockingCallNeverStallsAnotherCore) {
  std::atomic<long> core1_ms{-1};
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 0) {
      auto v = co_await spawn_blocking([] { std::this_thread::sleep_for(300ms); return 0; });
      if (!v) co_return fail(v.error());
      co_return result<void>{};
    }
    const auto t0 = clk::now();
    for (int i = 0; i < 10; ++i) {
      auto s = co_await sleep_for(2ms);
      if (!s) co_return s;
    }
    core1_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - t0).count();
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_GE(core1_ms.load(), 0);
  EXPECT_LT(core1_ms.load(), 200);
}

}  // namespace
