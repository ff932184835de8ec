// when_all, when_any, with_timeout and cancellation through task chains.
#include <fcntl.h>
#include <unistd.h>

#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;
using coil::test::run;

struct pipe_pair {
  int r = -1, w = -1;
  pipe_pair() {
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    r = p[0];
    w = p[1];
  }
  ~pipe_pair() {
    ::close(r);
    ::close(w);
  }
};

task<result<size_t>> read_once(int fd, std::error_code* seen = nullptr) {
  char buf[64];
  file f(unique_fd(::dup(fd)));
  auto r = co_await f.read(std::as_writable_bytes(std::span(buf)));
  if (seen != nullptr) *seen = r ? std::error_code{} : r.error();
  co_return r;
}

task<result<int>> value_after(int v, std::chrono::milliseconds d) {
  auto r = co_await sleep_for(d);
  if (!r) co_return fail(r.error());
  co_return v;
}

TEST(WhenAll, CollectsEveryResult) {
  auto body = []() -> task<bool> {
    auto [a, b, c] = co_await when_all(value_after(1, 5ms), value_after(2, 1ms), value_after(3, 0ms));
    co_return a && b && c && *a == 1 && *b == 2 && *c == 3;
  };
  EXPECT_TRUE(run(body()));
}

TEST(WhenAny, FirstWinsAndLoserReadIsCancelledAndAwaited) {
  pipe_pair p;
  std::error_code loser_error;
  auto body = [&]() -> task<size_t> {
    auto v = co_await when_any(read_once(p.r, &loser_error), value_after(7, 2ms));
    // The loser has finished by now: its result was recorded.
    EXPECT_EQ(loser_error, std::errc::operation_canceled);
    EXPECT_EQ(runtime::current()->driver().in_flight(), 0u);
    co_return v.index();
  };
  EXPECT_EQ(run(body()), 1u);
  // The cancelled read took nothing from the pipe.
  ASSERT_EQ(::write(p.w, "q", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(p.r, &c, 1), 1);
  EXPECT_EQ(c, 'q');
}

TEST(WhenAny, LosingTimerIsRemoved) {
  auto body = []() -> task<bool> {
    auto v = co_await when_any(value_after(1, 0ms), value_after(2, 1h));
    co_return v.index() == 0 && std::get<0>(v) && *std::get<0>(v) == 1;
  };
  EXPECT_TRUE(run(body()));  // returns at once: a leftover 1 h timer would park
}

TEST(WithTimeout, TimesOutAPipeRead) {
  pipe_pair p;
  auto body = [&]() -> task<result<size_t>> { co_return co_await with_timeout(read_once(p.r), 10ms); };
  auto r = run(body());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::timed_out);
}

TEST(WithTimeout, WrapsASingleOperation) {
  pipe_pair p;
  ASSERT_EQ(::write(p.w, "hello", 5), 5);
  auto body = [&]() -> task<result<size_t>> {
    char buf[16];
    file f(unique_fd(::dup(p.r)));
    co_return co_await with_timeout(f.read(std::as_writable_bytes(std::span(buf))), 1s);
  };
  auto r = run(body());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 5u);
}

TEST(WithTimeout, ValueBeforeDeadline) {
  auto body = []() -> task<result<int>> { co_return co_await with_timeout(value_after(9, 1ms), 1h); };
  auto r = run(body());
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 9);
}

TEST(Cancel, JoinHandleCancelReachesNestedOperation) {
  pipe_pair p;
  auto body = [&]() -> task<bool> {
    auto inner = [](int fd) -> task<result<size_t>> { co_return co_await read_once(fd); };
    auto h = runtime::current()->spawn(inner(p.r));
    co_await yield();
    co_await yield();
    h.cancel();
    auto r = co_await h;
    co_return !r && r.error() == std::errc::operation_canceled;
  };
  EXPECT_TRUE(run(body()));
}

TEST(Cancel, OperationAfterCancelFailsImmediately) {
  auto body = []() -> task<bool> {
    auto h = runtime::current()->spawn([]() -> task<bool> {
      co_await yield();
      auto a = co_await nop();
      auto b = co_await sleep_for(1h);
      co_return !a && a.error() == std::errc::operation_canceled && !b &&
          b.error() == std::errc::operation_canceled;
    }());
    h.cancel();
    co_return co_await h;
  };
  EXPECT_TRUE(run(body()));
}

TEST(Cancel, NestedWhenAnyPropagatesParentCancel) {
  pipe_pair p;
  auto body = [&]() -> task<bool> {
    auto h = runtime::current()->spawn([](int fd) -> task<size_t> {
      auto v = co_await when_any(read_once(fd), read_once(fd));
      co_return v.index();
    }(p.r));
    co_await yield();
    co_await yield();
    h.cancel();
    (void)co_await h;
    co_return runtime::current()->driver().in_flight() == 0;
  };
  EXPECT_TRUE(run(body()));
}

}  // namespace
