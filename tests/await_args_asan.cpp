// The forms users write to hand state to awaited APIs (rt/await_arg.hpp):
// state as arguments, a named object as coil::moved(obj) or as a copied
// lvalue. Built with AddressSanitizer by every compiler the suite uses (g++
// 12 included, where a capturing lambda inside co_await is a double free),
// so a second destruction of anything owning memory fails here.
#include <memory>
#include <string>
#include <vector>

#include "coil/rt/blocking.hpp"
#include "coil/rt/cores.hpp"
#include "coil/rt/task_group.hpp"
#include "coil/sync/channel.hpp"
#include "coil/sync/xchannel.hpp"
#include "test_cores_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;

const std::string long_text(300, 'k');  // heap-allocated in every std::string

TEST(AwaitArgs, SubmitToTakesStateAsArgumentsOrMovedOrCopied) {
  std::string seen[3];
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 1) co_return result<void>{};
    std::string key = long_text;
    std::vector<int> items(100, 7);
    auto a = co_await cores::submit_to(
        1,
        [](std::string k, std::vector<int> v) -> task<std::string> {
          co_return k + std::to_string(v.size()) + std::to_string(cores::current());
        },
        key, std::move(items));
    if (!a) co_return fail(a.error());
    seen[0] = *a;
    auto named = [k = key]() -> task<std::string> { co_return k + "!"; };
    auto b = co_await cores::submit_to(1, named);  // copied: named stays usable
    auto c = co_await cores::submit_to(1, coil::moved(named));
    if (!b || !c) co_return fail(std::errc::io_error);
    seen[1] = *b;
    seen[2] = *c;
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(seen[0], long_text + "1001");
  EXPECT_EQ(seen[1], long_text + "!");
  EXPECT_EQ(seen[2], long_text + "!");
}

TEST(AwaitArgs, SpawnOnTakesStateAsArguments) {
  std::atomic<int> got{0};
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 1) {
      for (int i = 0; i < 2000 && got.load() < 2; ++i) (void)co_await sleep_for(std::chrono::milliseconds(1));
      co_return result<void>{};
    }
    auto s = co_await cores::spawn_on(
        1,
        [](std::string k, std::atomic<int>* out) -> task<void> {
          if (k == long_text) out->fetch_add(1);
          co_return;
        },
        long_text, &got);
    if (!s) co_return s;
    auto job = [k = long_text, &got]() -> task<void> {
      if (k == long_text) got.fetch_add(1);
      co_return;
    };
    co_return co_await cores::spawn_on(1, coil::moved(job));
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(got.load(), 2);
}

TEST(AwaitArgs, SpawnBlockingTakesStateAsArguments) {
  test::run([]() -> task<void> {
    auto r = co_await spawn_blocking([](std::string k, std::unique_ptr<int> p) { return k.size() + *p; }, long_text,
                                     std::make_unique<int>(5));
    CO_ASSERT_OK(r);
    EXPECT_EQ(*r, long_text.size() + 5);
  }());
}

struct msg {
  std::string name;
  std::vector<int> items;
};

TEST(AwaitArgs, ChannelSendTakesNamedAggregatesAndConstructedValues) {
  test::run([]() -> task<void> {
    channel<msg> ch(4);
    msg m{long_text, {1, 2, 3}};
    auto a = co_await ch.send(m);  // copied
    auto b = co_await ch.send(coil::moved(m));
    channel<std::string> strings(2);
    auto c = co_await strings.send(std::string(long_text));  // not an aggregate: fine anywhere
    CO_ASSERT_TRUE(a && b && c);
    auto x = co_await ch.recv();
    auto y = co_await ch.recv();
    auto z = co_await strings.recv();
    CO_ASSERT_TRUE(x && y && z);
    EXPECT_EQ(x->name, long_text);
    EXPECT_EQ(y->items.size(), 3u);
    EXPECT_EQ(*z, long_text);
  }());
}

TEST(AwaitArgs, XchannelSendTakesNamedAggregates) {
  test::run([]() -> task<void> {
    xchannel<msg> ch(2);
    msg m{long_text, {4}};
    auto a = co_await ch.send(coil::moved(m));
    CO_ASSERT_OK(a);
    auto x = co_await ch.recv();
    CO_ASSERT_OK(x);
    EXPECT_EQ(x->name, long_text);
  }());
}

// A capturing coroutine lambda given to task_group::spawn as a callable
// lives in the child's frame (a lambda called in place would die at the
// end of the statement, leaving its coroutine with freed captures).
TEST(AwaitArgs, TaskGroupSpawnKeepsTheCallableAlive) {
  test::run([]() -> task<void> {
    task_group g;
    std::string out;
    g.spawn([k = long_text, &out]() -> task<void> {
      (void)co_await sleep_for(std::chrono::milliseconds(1));
      out = k;
    });
    g.spawn([](std::string k, std::string* o) -> task<result<void>> {
      (void)co_await sleep_for(std::chrono::milliseconds(2));
      *o += k.substr(0, 1);
      co_return result<void>{};
    }, long_text, &out);
    auto j = co_await g.join();
    CO_ASSERT_OK(j);
    EXPECT_EQ(out, long_text + "k");
  }());
}

}  // namespace
