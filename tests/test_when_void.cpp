// when_all / when_any over task<void>: void children give std::monostate.
#include <tuple>
#include <type_traits>
#include <variant>

#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;
using coil::test::run;

task<void> bump_after(int& n, std::chrono::milliseconds d) {
  (void)co_await sleep_for(d);
  ++n;
}
task<int> seven() { co_return 7; }

TEST(WhenVoid, WhenAllMapsVoidToMonostateAndRunsEveryChild) {
  int n = 0;
  auto body = [](int& n) -> task<int> {
    auto all = co_await when_all(bump_after(n, 2ms), seven(), bump_after(n, 0ms));
    static_assert(std::is_same_v<decltype(all), std::tuple<std::monostate, int, std::monostate>>);
    co_return std::get<1>(all);
  };
  EXPECT_EQ(run(body(n)), 7);
  EXPECT_EQ(n, 2);
}

TEST(WhenVoid, WhenAllOfOnlyVoidTasks) {
  int n = 0;
  auto body = [](int& n) -> task<void> { (void)co_await when_all(bump_after(n, 1ms), bump_after(n, 1ms)); };
  run(body(n));
  EXPECT_EQ(n, 2);
}

TEST(WhenVoid, WhenAnyWithAVoidWinner) {
  int n = 0;
  auto body = [](int& n) -> task<std::size_t> {
    auto v = co_await when_any(bump_after(n, 0ms), [](int& m) -> task<int> {
      auto r = co_await sleep_for(1h);
      if (r) ++m;  // must not happen: the loser is cancelled
      co_return 1;
    }(n));
    static_assert(std::is_same_v<decltype(v), when_any_result<std::monostate, int>>);
    co_return v.index();
  };
  EXPECT_EQ(run(body(n)), 0u);
  EXPECT_EQ(n, 1);
}

}  // namespace
