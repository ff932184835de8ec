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

std::string text_of(const std::string& path) {
  std::string text;
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return text;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f) != nullptr) text += buf;
  std::fclose(f);
  return text;
}

std::size_t occurrences(const std::string& text, const char* what) {
  std::size_t n = 0;
  for (std::size_t at = 0; (at = text.find(what, at)) != std::string::npos; ++at) ++n;
  return n;
}

// Makes one io_uring system call fail with err in this process; the others
// work (a sandbox that allows setting up a ring but not using it).
bool refuse(int syscall_nr, int err) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return false;
  const bool ok = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(static_cast<uint16_t>(err)), syscall_nr, 0) == 0 &&
                  seccomp_load(ctx) == 0;
  seccomp_release(ctx);
  return ok;
}

// Multishot accept and multishot recv into a buffer ring over loopback: two
// connections, each sending "ping" that the server echoes from the ring's
// buffer. 0 when all of it worked.
task<int> exercise_multishot() {
  auto lst = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
  if (!lst) co_return 30;
  auto where = lst->local_address();
  if (!where) co_return 31;
  auto ring = buffer_ring::create(runtime::current()->driver(), 8, 64);
  if (!ring) co_return 32;
  auto server = [](net::tcp_listener& l, buffer_ring& ring) -> task<int> {
    auto incoming = l.incoming();
    for (int i = 0; i < 2; ++i) {
      auto conn = co_await incoming.next();
      if (!conn) co_return 33;
      auto rx = conn->recv_multishot(ring);
      auto b = co_await rx.next();
      if (!b || b->size() != 4) co_return 34;
      auto w = co_await conn->send_all(b->bytes());
      if (!w) co_return 35;
    }
    co_return 0;
  };
  auto sh = runtime::current()->spawn(server(*lst, **ring));
  for (int i = 0; i < 2; ++i) {
    auto client = co_await net::tcp_stream::connect(*where);
    if (!client) co_return 36;
    auto sent = co_await client->send_all(std::as_bytes(std::span("ping", 4)));
    char echoed[4] = {};
    auto got = co_await client->recv_exact(std::as_writable_bytes(std::span(echoed)));
    if (!sent || !got || std::string(echoed, 4) != "ping") co_return 37;
  }
  co_return co_await sh;
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

// A sandbox may refuse any one of the three io_uring system calls. Refused
// setup fails at once; refused register leaves no opcode probe (nor buffer
// rings, fixed tables or io-wq caps); refused enter leaves a ring that
// cannot submit. Each must give a working epoll runtime, one log line naming
// the errno, and in strict mode an error: never a ring that fails later.
TEST(DriverSelect, AnyRefusedIoUringCallFallsBackToEpoll) {
  const struct {
    int nr;
    const char* name;
  } calls[] = {{SCMP_SYS(io_uring_setup), "io_uring_setup"},
               {SCMP_SYS(io_uring_enter), "io_uring_enter"},
               {SCMP_SYS(io_uring_register), "io_uring_register"}};
  for (const auto& call : calls) {
    for (int err : {EPERM, ENOSYS, EOPNOTSUPP}) {
      test::temp_dir dir;
      const std::string log = dir.file("stderr");
      const int code = in_child([&] {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ::dup2(fd, STDERR_FILENO) < 0) return 2;
        if (!refuse(call.nr, err)) return 3;
        ::unsetenv("COIL_DRIVER");
        runtime_options strict;
        strict.strict_driver = true;
        auto no = runtime::create(strict);
        if (no || no.error() != errc::uring_unavailable) return 4;
        auto rt = runtime::create();
        if (!rt) return 5;
        if ((*rt)->driver().kind() != driver_kind::epoll) return 6;
        if ((*rt)->driver().uring_error() != std::error_code(err, std::system_category())) return 7;
        if (const int r = (*rt)->block_on(exercise(dir.path())); r != 0) return r;
        return (*rt)->block_on(exercise_multishot());
      });
      EXPECT_EQ(code, 0) << call.name << " failing with " << std::strerror(err);
      const std::string text = text_of(log);
      EXPECT_NE(text.find(std::strerror(err)), std::string::npos) << call.name << ": " << text;
      EXPECT_EQ(occurrences(text, "using the epoll driver"), 1u) << call.name << ": " << text;
    }
  }
}

// A filter on io_uring_register's opcode (here: buffer rings only) leaves
// io_uring usable: it is chosen, a buffer ring fails with the filter's
// errno as a value, and plain recvs (TCP echo) still work.
TEST(DriverSelect, RefusedBufferRingIsAnErrorValueAndRecvStillWorks) {
  if (std::getenv("COIL_DRIVER") != nullptr) GTEST_SKIP() << "COIL_DRIVER is set";
  test::temp_dir dir;
  const int code = in_child([&] {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr) return 2;
    const bool ok = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_register), 1,
                                     SCMP_A1(SCMP_CMP_EQ, IORING_REGISTER_PBUF_RING)) == 0 &&
                    seccomp_load(ctx) == 0;
    seccomp_release(ctx);
    if (!ok) return 3;
    auto rt = runtime::create();
    if (!rt || (*rt)->driver().kind() != driver_kind::uring) return 4;
    auto ring = buffer_ring::create((*rt)->driver(), 8, 64);
    if (ring || ring.error() != std::errc::operation_not_permitted) return 5;
    return (*rt)->block_on(exercise(dir.path()));
  });
  EXPECT_EQ(code, 0);
}

// The multishot path on whichever driver the runtime chose.
TEST(DriverSelect, MultishotAcceptAndRecvWork) {
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  EXPECT_EQ((*rt)->block_on(exercise_multishot()), 0);
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
  const std::string text = text_of(log);
  EXPECT_EQ(occurrences(text, "using the epoll driver"), 1u) << text;
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
