// A Unix stream connect to a listener whose backlog is full waits (the
// kernel gives EAGAIN and no readiness edge when room appears) without
// spinning, completes once the server accepts, and can be cancelled.
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <vector>

#include "test_net_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;

struct full_backlog {
  test::temp_dir dir;
  net::socket_address addr;
  net::unix_listener listener;
  std::vector<unique_fd> fillers;
};

// A listener with backlog 1 and nonblocking connects until the kernel refuses.
void fill(full_backlog& b) {
  auto a = net::socket_address::unix_path(b.dir.file("s.sock"));
  ASSERT_TRUE(a) << a.error().message();
  b.addr = *a;
  auto l = net::unix_listener::bind(b.addr, 1);
  ASSERT_TRUE(l) << l.error().message();
  b.listener = std::move(*l);
  for (int i = 0; i < 16; ++i) {
    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    ASSERT_TRUE(fd.valid());
    if (::connect(fd.get(), b.addr.native(), b.addr.size()) != 0) {
      ASSERT_EQ(errno, EAGAIN);
      return;
    }
    b.fillers.push_back(std::move(fd));
  }
  FAIL() << "the backlog never filled";
}

TEST(NetUnixBacklog, ConnectWaitsForRoomWithoutSpinning) {
  full_backlog b;
  fill(b);
  if (HasFatalFailure()) return;
  uint64_t attempts = 0;
  test::run([&]() -> task<void> {
    auto drain_later = [&]() -> task<void> {
      auto z = co_await sleep_for(50ms);
      CO_ASSERT_OK(z);
      for (size_t i = 0; i < b.fillers.size(); ++i) {
        auto s = co_await b.listener.accept();
        CO_ASSERT_OK(s);
      }
      auto last = co_await b.listener.accept();  // ours
      CO_ASSERT_OK(last);
    };
    auto h = runtime::current()->spawn(drain_later());
    const uint64_t before = runtime::current()->driver().stats().submitted;
    auto c = co_await net::unix_stream::connect(b.addr);
    attempts = runtime::current()->driver().stats().submitted - before;
    EXPECT_TRUE(c) << c.error().message();
    co_await std::move(h);
  }());
  // A spinning retry makes tens of thousands of attempts in 50 ms.
  EXPECT_LT(attempts, 2000u);
}

TEST(NetUnixBacklog, ConnectToAFullBacklogTimesOut) {
  full_backlog b;
  fill(b);
  if (HasFatalFailure()) return;
  test::run([&]() -> task<void> {
    auto c = co_await with_timeout(net::unix_stream::connect(b.addr), 30ms);
    EXPECT_TRUE(test::fails_with(c, std::errc::timed_out));
  }());
}

}  // namespace
}  // namespace coil
