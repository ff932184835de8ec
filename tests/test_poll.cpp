// Readiness waits on any descriptor (wait_ready, wait_readable,
// wait_writable): eventfds, pipes and raw sockets that coil did not open.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "test_net_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;

struct raw_pipe {
  int r = -1, w = -1;
  raw_pipe() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    r = p[0];
    w = p[1];
  }
  ~raw_pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

void signal_eventfd(int fd) {
  const uint64_t one = 1;
  EXPECT_EQ(::write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
}

task<result<uint32_t>> readable_then_flag(int fd, bool& done) {
  auto r = co_await wait_readable(fd);
  done = true;
  co_return r;
}

TEST(Poll, EventfdWakesEveryWaiter) {
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  test::run([](int fd) -> task<void> {
    bool a_done = false, b_done = false;
    auto a = runtime::current()->spawn(readable_then_flag(fd, a_done));
    auto b = runtime::current()->spawn(readable_then_flag(fd, b_done));
    auto slept = co_await sleep_for(20ms);
    CO_ASSERT_OK(slept);
    EXPECT_FALSE(a_done);  // nothing to read yet: they wait
    EXPECT_FALSE(b_done);
    signal_eventfd(fd);
    auto ra = co_await a;
    auto rb = co_await b;
    CO_ASSERT_OK(ra);
    CO_ASSERT_OK(rb);
    EXPECT_EQ(*ra & POLLIN, uint32_t{POLLIN});
    EXPECT_EQ(*rb & POLLIN, uint32_t{POLLIN});
    // Already readable: no wait at all.
    auto again = co_await wait_readable(fd);
    CO_ASSERT_OK(again);
    EXPECT_EQ(*again, uint32_t{POLLIN});
  }(efd));
  ::close(efd);
}

TEST(Poll, WritableWaitsForRoomInAFullPipe) {
  raw_pipe p;
  test::run([](int r, int w) -> task<void> {
    auto room = co_await wait_writable(w);
    CO_ASSERT_OK(room);
    EXPECT_EQ(*room, uint32_t{POLLOUT});
    char chunk[4096];
    std::memset(chunk, 'x', sizeof chunk);
    size_t filled = 0;
    for (ssize_t n; (n = ::write(w, chunk, sizeof chunk)) > 0;) filled += static_cast<size_t>(n);
    EXPECT_EQ(errno, EAGAIN);
    bool done = false;
    auto waiter = runtime::current()->spawn([](int fd, bool& flag) -> task<result<uint32_t>> {
      auto res = co_await wait_writable(fd);
      flag = true;
      co_return res;
    }(w, done));
    auto slept = co_await sleep_for(20ms);
    CO_ASSERT_OK(slept);
    EXPECT_FALSE(done);
    size_t drained = 0;
    for (ssize_t n; (n = ::read(r, chunk, sizeof chunk)) > 0;) drained += static_cast<size_t>(n);
    EXPECT_EQ(drained, filled);
    auto got = co_await waiter;
    CO_ASSERT_OK(got);
    EXPECT_EQ(*got, uint32_t{POLLOUT});
  }(p.r, p.w));
}

TEST(Poll, HangupIsReported) {
  raw_pipe p;
  test::run([](raw_pipe& pp) -> task<void> {
    auto waiter = runtime::current()->spawn([](int fd) -> task<result<uint32_t>> {
      co_return co_await wait_readable(fd);
    }(pp.r));
    auto slept = co_await sleep_for(5ms);
    CO_ASSERT_OK(slept);
    ::close(pp.w);
    pp.w = -1;
    auto got = co_await waiter;
    CO_ASSERT_OK(got);
    EXPECT_TRUE(*got & POLLHUP) << *got;
  }(p));
}

TEST(Poll, BadDescriptorsFailWithEbadf) {
  test::run([]() -> task<void> {
    const int gone = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    CO_ASSERT_TRUE(gone >= 0);
    ::close(gone);
    CO_EXPECT_FAIL(co_await wait_readable(-1), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await wait_writable(gone), std::errc::bad_file_descriptor);
  }());
}

TEST(Poll, TimedOutWaitLeavesTheDescriptorUsable) {
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  test::run([](int fd) -> task<void> {
    auto timed = co_await with_timeout(wait_readable(fd), 20ms);
    EXPECT_TRUE(test::fails_with(timed, std::errc::timed_out));
    EXPECT_EQ(runtime::current()->driver().in_flight(), 0u);
    signal_eventfd(fd);
    auto ready = co_await with_timeout(wait_readable(fd), 5s);
    CO_ASSERT_OK(ready);
    EXPECT_EQ(*ready, uint32_t{POLLIN});
    // A task destroyed while waiting cancels its wait.
    uint64_t v;
    EXPECT_EQ(::read(fd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
    auto h = runtime::current()->spawn([](int f) -> task<result<uint32_t>> { co_return co_await wait_readable(f); }(fd));
    co_await yield();
    h.cancel();
    auto cancelled = co_await h;
    EXPECT_TRUE(test::fails_with(cancelled, std::errc::operation_canceled));
  }(efd));
  ::close(efd);
}

// A descriptor coil did not open may be closed behind its back once no wait
// is pending, and its number reused: a wait on the new descriptor must see
// that one's readiness (the epoll driver must not trust a registration the
// close removed).
TEST(Poll, ANumberReusedAfterAForeignCloseIsWaitedOnAfresh) {
  test::run([]() -> task<void> {
    const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CO_ASSERT_TRUE(efd >= 0);
    auto waiter = runtime::current()->spawn([](int fd) -> task<result<uint32_t>> {
      co_return co_await wait_readable(fd);
    }(efd));
    auto waited = co_await sleep_for(10ms);  // so it is really waiting (registered)
    CO_ASSERT_OK(waited);
    signal_eventfd(efd);
    auto first = co_await waiter;
    CO_ASSERT_OK(first);
    ::close(efd);  // not through coil
    raw_pipe p;    // its read end takes efd's number
    if (p.r != efd) {
      CO_ASSERT_TRUE(::dup3(p.r, efd, O_CLOEXEC) == efd);
      ::close(p.r);
      p.r = efd;
    }
    auto second = runtime::current()->spawn([](int fd) -> task<result<uint32_t>> {
      co_return co_await with_timeout(wait_readable(fd), 5s);
    }(efd));
    auto slept = co_await sleep_for(10ms);
    CO_ASSERT_OK(slept);
    EXPECT_EQ(::write(p.w, "x", 1), 1);
    auto got = co_await second;
    CO_ASSERT_OK(got);
    EXPECT_EQ(*got, uint32_t{POLLIN});
  }());
}

// The use it exists for: a library doing its own non-blocking socket calls
// (here by hand: connect, send, recv on a raw fd), waiting through coil.
TEST(Poll, DrivesARawNonBlockingSocket) {
  test::run([]() -> task<void> {
    auto l = test::listen_loopback();
    auto server = runtime::current()->spawn([](net::tcp_listener& lis) -> task<result<void>> {
      auto s = co_await lis.accept();
      if (!s) co_return fail(s.error());
      char buf[5];
      auto n = co_await s->recv_exact(std::as_writable_bytes(std::span(buf)));
      if (!n) co_return fail(n.error());
      auto sent = co_await s->send_all(std::as_bytes(std::span(buf)));
      if (!sent) co_return fail(sent.error());
      co_return result<void>{};
    }(l.listener));
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    CO_ASSERT_TRUE(fd.valid());
    const int c = ::connect(fd.get(), l.addr.native(), l.addr.size());
    CO_ASSERT_TRUE(c == 0 || errno == EINPROGRESS);
    auto connected = co_await wait_writable(fd.get());
    CO_ASSERT_OK(connected);
    int err = -1;
    socklen_t len = sizeof err;
    EXPECT_EQ(::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len), 0);
    EXPECT_EQ(err, 0);
    EXPECT_EQ(::send(fd.get(), "hello", 5, MSG_NOSIGNAL), 5);
    std::string echoed;
    while (echoed.size() < 5) {
      auto in = co_await wait_ready<POLLIN | POLLRDHUP>(fd.get());
      CO_ASSERT_OK(in);
      char buf[16];
      const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n < 0 && errno == EAGAIN) continue;  // readiness can be spurious
      CO_ASSERT_TRUE(n > 0);
      echoed.append(buf, static_cast<size_t>(n));
    }
    EXPECT_EQ(echoed, "hello");
    auto sent = co_await server;
    CO_ASSERT_OK(sent);
    // The server's socket is gone: the peer's end shows as POLLRDHUP.
    auto end = co_await with_timeout(wait_ready<POLLRDHUP>(fd.get()), 5s);
    CO_ASSERT_OK(end);
    EXPECT_TRUE(*end & POLLRDHUP) << *end;
  }());
}

// A descriptor with no wait queue (a regular file) cannot wait for an event
// it does not have: io_uring refuses with EINVAL, and the epoll driver does
// the same rather than park a worker thread no cancel could free.
TEST(Poll, AnEventARegularFileCannotHave) {
  test::temp_dir dir;
  unique_fd f(::open(dir.file("f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(f.valid());
  test::run([](int fd) -> task<void> {
    auto now = co_await wait_readable(fd);  // files are always readable
    CO_ASSERT_OK(now);
    EXPECT_TRUE(*now & POLLIN);
    auto pri = co_await with_timeout(wait_ready<POLLPRI>(fd), 20ms);
    EXPECT_TRUE(test::fails_with(pri, std::errc::invalid_argument));
    EXPECT_EQ(runtime::current()->driver().in_flight(), 0u);
  }(f.get()));
}

}  // namespace
}  // namespace coil
