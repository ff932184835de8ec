// Driver selection: io_uring when usable, the epoll driver when io_uring is
// blocked (a seccomp filter in a child process, as Docker's default profile
// does), forced choices and strict mode.
#include <fcntl.h>
#include <seccomp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

// Runs fn in a forked child; returns its exit code (128 + signal if killed).
template <class Fn>
int in_child(Fn fn) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(fn());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Makes the io_uring system calls fail with err in this process.
bool block_io_uring(int err = EPERM) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return false;
  const uint32_t action = SCMP_ACT_ERRNO(static_cast<uint16_t>(err));
  bool ok = seccomp_rule_add(ctx, action, SCMP_SYS(io_uring_setup), 0) == 0 &&
            seccomp_rule_add(ctx, action, SCMP_SYS(io_uring_enter), 0) == 0 &&
            seccomp_rule_add(ctx, action, SCMP_SYS(io_uring_register), 0) == 0 &&
            seccomp_load(ctx) == 0;
  seccomp_release(ctx);
  return ok;
}

// Real work on the current runtime: a file round trip, a pipe read that has
// to wait for a writer task, and a timer. Returns 0 when all of it worked.
task<int> exercise(std::string dir) {
  const std::string path = dir + "/data";
  auto f = co_await file::create(path.c_str());
  if (!f) co_return 10;
  const char msg[] = "hello from the fallback driver";
  auto w = co_await f->write_all_at(std::as_bytes(std::span(msg)), 0);
  if (!w) co_return 11;
  char back[sizeof msg] = {};
  auto r = co_await f->read_exact_at(std::as_writable_bytes(std::span(back)), 0);
  if (!r || std::string(back) != msg) co_return 12;

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) co_return 13;
  file rd{unique_fd(p[0])}, wr{unique_fd(p[1])};
  auto writer = [](file& w) -> task<void> {
    co_await sleep_for(5ms);
    (void)co_await w.write(std::as_bytes(std::span("ping", 4)));
  };
  auto h = runtime::current()->spawn(writer(wr));
  char got[4] = {};
  auto n = co_await rd.read(std::as_writable_bytes(std::span(got)));
  co_await h;
  if (!n || *n != 4 || std::string(got, 4) != "ping") co_return 14;

  // TCP echo over loopback.
  auto lst = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
  if (!lst) co_return 15;
  auto where = lst->local_address();
  if (!where) co_return 16;
  auto server = [](net::tcp_listener& l) -> task<result<void>> {
    auto conn = co_await l.accept();
    if (!conn) co_return fail(conn.error());
    char buf[5];
    auto r = co_await conn->recv_exact(std::as_writable_bytes(std::span(buf)));
    if (!r) co_return r;
    co_return co_await conn->send_all(std::as_bytes(std::span(buf)));
  };
  auto sh = runtime::current()->spawn(server(*lst));
  auto client = co_await net::tcp_stream::connect(*where);
  if (!client) co_return 17;
  auto sent = co_await client->send_all(std::as_bytes(std::span("echo!", 5)));
  char echoed[5] = {};
  auto got_back = co_await client->recv_exact(std::as_writable_bytes(std::span(echoed)));
  auto served = co_await sh;
  if (!sent || !got_back || !served || std::string(echoed, 5) != "echo!") co_return 18;
  co_return 0;
}

TEST(DriverSelect, DefaultIsIoUringWhenAvailable) {
  if (std::getenv("COIL_DRIVER") != nullptr) GTEST_SKIP() << "COIL_DRIVER is set";
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  EXPECT_EQ((*rt)->driver().kind(), driver_kind::uring);
  EXPECT_FALSE((*rt)->driver().uring_error());
}

TEST(DriverSelect, ExplicitEpollRunsRealWork) {
  test::temp_dir dir;
  runtime_options opts;
  opts.driver = driver_kind::epoll;
  auto rt = runtime::create(opts);
  ASSERT_TRUE(rt);
  EXPECT_EQ((*rt)->driver().kind(), driver_kind::epoll);
  EXPECT_EQ((*rt)->block_on(exercise(dir.path())), 0);
}

// Docker's profile answers EPERM; other sandboxes and old kernels ENOSYS or
// EOPNOTSUPP. Every one means "use epoll", and files, pipes, timers and TCP
// then work there.
TEST(DriverSelect, SeccompBlockedIoUringFallsBackToEpoll) {
  for (int err : {EPERM, ENOSYS, EOPNOTSUPP}) {
    test::temp_dir dir;
    const int code = in_child([&] {
      if (!block_io_uring(err)) return 2;
      ::unsetenv("COIL_DRIVER");
      auto rt = runtime::create();
      if (!rt) return 3;
      if ((*rt)->driver().kind() != driver_kind::epoll) return 4;
      if ((*rt)->driver().uring_error() != std::error_code(err, std::system_category())) return 5;
      return (*rt)->block_on(exercise(dir.path()));
    });
    EXPECT_EQ(code, 0) << "io_uring_setup failing with " << std::strerror(err);
  }
}

// Kernels before 5.12 charge rings to RLIMIT_MEMLOCK; a tiny limit must still
// give a working runtime (a smaller ring, or the epoll driver).
TEST(DriverSelect, TinyMemlockLimitStillGivesAWorkingRuntime) {
  test::temp_dir dir;
  const int code = in_child([&] {
    rlimit lim{64 * 1024, 64 * 1024};
    if (::setrlimit(RLIMIT_MEMLOCK, &lim) != 0) return 2;
    ::unsetenv("COIL_DRIVER");
    runtime_options opts;
    opts.uring.entries = 4096;
    auto rt = runtime::create(opts);
    if (!rt) return 3;
    return (*rt)->block_on(exercise(dir.path()));
  });
  EXPECT_EQ(code, 0);
}

TEST(DriverSelect, FallbackIsLoggedOnceNamingTheErrno) {
  test::temp_dir dir;
  const std::string log = dir.file("stderr");
  const int code = in_child([&] {
    if (!block_io_uring()) return 2;
    ::unsetenv("COIL_DRIVER");
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::dup2(fd, STDERR_FILENO) < 0) return 3;
    for (int i = 0; i < 3; ++i) {
      auto rt = runtime::create();
      if (!rt || (*rt)->driver().kind() != driver_kind::epoll) return 4;
    }
    return 0;
  });
  ASSERT_EQ(code, 0);
  std::FILE* f = std::fopen(log.c_str(), "re");
  ASSERT_NE(f, nullptr);
  std::string text;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f) != nullptr) text += buf;
  std::fclose(f);
  std::size_t lines = 0;
  for (std::size_t at = 0; (at = text.find("using the epoll driver", at)) != std::string::npos; ++at) ++lines;
  EXPECT_EQ(lines, 1u) << text;
  EXPECT_NE(text.find("Operation not permitted"), std::string::npos) << text;
}

TEST(DriverSelect, StrictModeMakesUnavailableIoUringAnError) {
  const int code = in_child([] {
    if (!block_io_uring()) return 2;
    ::unsetenv("COIL_DRIVER");
    runtime_options opts;
    opts.strict_driver = true;
    auto rt = runtime::create(opts);
    if (rt) return 3;
    if (rt.error() != errc::uring_unavailable) return 4;
    opts.strict_driver = false;
    opts.driver = driver_kind::uring;  // an explicit choice is strict too
    auto rt2 = runtime::create(opts);
    if (rt2 || rt2.error() != errc::uring_unavailable) return 5;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST(DriverSelect, EnvironmentForcesTheDriver) {
  const int code = in_child([] {
    ::setenv("COIL_DRIVER", "epoll", 1);
    {
      auto rt = runtime::create();
      if (!rt || (*rt)->driver().kind() != driver_kind::epoll) return 2;
    }
    if (!block_io_uring()) return 3;
    ::setenv("COIL_DRIVER", "uring", 1);  // forcing io_uring where it is blocked
    auto rt = runtime::create();
    if (rt || rt.error() != errc::uring_unavailable) return 4;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

}  // namespace
