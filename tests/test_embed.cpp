// Driving a runtime from someone else's event loop: a plain poll(2) loop on
// runtime::embed_fd() plus poll_once(), on either driver.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

// The host loop: waits on the fd with poll_once's timeout until done.
template <class Done>
int host_loop(runtime& rt, int fd, Done done) {
  int polls = 0;
  while (!done()) {
    const int64_t wait_ns = rt.poll_once();
    if (done()) break;
    pollfd p{fd, POLLIN, 0};
    const int ms = wait_ns < 0 ? 5000 : static_cast<int>((wait_ns + 999'999) / 1'000'000);
    const int r = ::poll(&p, 1, ms);
    EXPECT_GE(r, 0);
    if (wait_ns < 0 && r == 0) {
      ADD_FAILURE() << "embed fd never became readable";
      break;
    }
    ++polls;
  }
  return polls;
}

TEST(Embed, PollLoopDrivesTimersPipesAndFiles) {
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  auto fd = (*rt)->embed_fd();
  ASSERT_TRUE(fd);
  EXPECT_EQ(*(*rt)->embed_fd(), *fd) << "one fd per runtime";

  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  // Before the writer exists: its write is then at least 20 ms after this,
  // however late this thread runs again.
  const auto start = std::chrono::steady_clock::now();
  // Another thread writes the pipe later: only the fd can tell the host.
  std::thread writer([w = p[1]] {
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(::write(w, "pipe", 4), 4);
  });
  std::string got;
  int timer_fired = 0;
  bool finished = false;
  auto body = [&]() -> task<void> {
    co_await sleep_for(5ms);
    ++timer_fired;
    file r{unique_fd(p[0])};
    char buf[4];
    auto n = co_await r.read(std::as_writable_bytes(std::span(buf)));
    if (n) got.assign(buf, *n);
    co_await sleep_for(1ms);
    ++timer_fired;
    finished = true;
  };
  auto h = (*rt)->spawn(body());
  const int polls = host_loop(**rt, *fd, [&] { return finished; });
  writer.join();
  EXPECT_TRUE(finished);
  EXPECT_EQ(got, "pipe");
  EXPECT_EQ(timer_fired, 2);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_LT(polls, 1000) << "the host loop spun instead of sleeping on the fd";
  ::close(p[1]);
}

TEST(Embed, IdleRuntimeReportsNoDeadline) {
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  ASSERT_TRUE((*rt)->embed_fd());
  EXPECT_EQ((*rt)->poll_once(), -1);
  pollfd p{*(*rt)->embed_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "an idle runtime's fd must not be readable";
}

TEST(Embed, ReadyWorkAsksToBeCalledAgainNow) {
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  int steps = 0;
  auto h = (*rt)->spawn([](int& steps) -> task<void> {
    for (int i = 0; i < 3; ++i) {
      ++steps;
      co_await yield();
    }
  }(steps));
  EXPECT_EQ((*rt)->poll_once(), 0);
  while (!h.done()) (void)(*rt)->poll_once();
  EXPECT_EQ(steps, 3);
}

}  // namespace
