// Guide: testing.md. Techniques coil's own tests use: one body on both
// drivers, a forked child per experiment, resource limits to provoke errors,
// and a seccomp filter to force the fallback driver.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include <coil/coil.hpp>

#include "example_util.hpp"

#ifdef COIL_DOC_HAVE_SECCOMP
#include <seccomp.h>
#endif

namespace {

using example::check;

coil::task<bool> round_trip() {
  auto n = co_await coil::nop();
  auto s = co_await coil::sleep_for(std::chrono::milliseconds(1));
  co_return n && s;
}

// doc-begin: both_drivers
// The same body on each driver (ctest also runs every test binary a second
// time with COIL_DRIVER=epoll). An explicit kind ignores COIL_DRIVER.
bool on_every_driver(coil::task<bool> (*body)()) {
  for (auto kind : {coil::driver_kind::uring, coil::driver_kind::epoll}) {
    coil::runtime_options opts;
    opts.driver = kind;
    auto rt = coil::runtime::create(opts);
    if (!rt && rt.error() == coil::errc::uring_unavailable) continue;  // skip, do not fail
    if (!rt || !(*rt)->block_on(body())) return false;
  }
  return true;
}
// doc-end: both_drivers

// doc-begin: in_child
// Process-wide changes (limits, seccomp filters) go into a forked child, which
// builds its own runtime and reports through its exit code.
template <class Fn>
int in_child(Fn experiment) {
  std::fflush(nullptr);  // nothing buffered gets written twice
  const pid_t child = ::fork();
  if (child < 0) return -1;
  if (child == 0) ::_exit(experiment());  // _exit: see fork.md
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);  // a crash is a failure too
  return WEXITSTATUS(status);
}
// doc-end: in_child

// doc-begin: emfile
// RLIMIT_NOFILE: running out of descriptors is an error value, and the next
// open works once one is freed.
coil::task<int> out_of_descriptors(std::string path) {
  std::vector<coil::file> open;
  for (;;) {
    auto f = co_await coil::file::open(path.c_str());
    if (!f) {
      if (f.error() != std::errc::too_many_files_open) co_return 2;
      break;
    }
    open.push_back(std::move(*f));
  }
  open.pop_back();
  auto again = co_await coil::file::open(path.c_str());
  co_return again ? 0 : 3;
}

int emfile(const std::string& path) {
  return in_child([&] {
    rlimit lim{32, 32};
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return 1;
    auto rt = coil::runtime::create();
    return rt ? (*rt)->block_on(out_of_descriptors(path)) : 1;
  });
}
// doc-end: emfile

// doc-begin: short_write
// RLIMIT_FSIZE is the one way to get a short write on a regular file: the
// write crossing the limit stops there, the next one fails with EFBIG.
int short_write(const std::string& path) {
  return in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{1000, 1000};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return 1;
    auto rt = coil::runtime::create();
    if (!rt) return 1;
    return (*rt)->block_on([](std::string path) -> coil::task<int> {
      auto f = co_await coil::file::create(path.c_str());
      if (!f) co_return 2;
      std::vector<std::byte> data(1500);
      auto once = co_await f->write_at(data, 0);
      if (!once || *once != 1000) co_return 3;  // short
      auto all = co_await f->write_all_at(data, 0);
      co_return !all && all.error() == std::errc::file_too_large ? 0 : 4;
    }(path));
  });
}
// doc-end: short_write

// doc-begin: faults
// Real operations, with faults: 30% of reads and writes come back short, 10%
// fail with EAGAIN, completions arrive late and shuffled. The same seed gives
// the same faults for the same sequence of operations.
coil::task<bool> copy_survives(std::string path) {
  auto f = co_await coil::file::create(path.c_str());
  if (!f) co_return false;
  std::vector<std::byte> out(100'000, std::byte{42}), in(out.size());
  auto w = co_await f->write_all_at(out, 0);  // loops over short writes, retries EAGAIN
  auto r = co_await f->read_exact_at(in, 0);
  const coil::fault_stats& injected = coil::runtime::current()->driver().faults()->stats();
  co_return w && r && in == out && injected.short_io > 0;
}

bool with_faults(const std::string& path) {
  coil::runtime_options opts;
  opts.faults = {.enabled = true, .seed = 42, .eagain = 0.1, .short_io = 0.3, .delay = 0.2, .reorder = 0.5};
  // or, for a whole test run: COIL_FAULTS=42:eagain=0.1,short=0.3,delay=0.2,reorder=0.5
  auto rt = coil::runtime::create(opts);
  return rt && (*rt)->block_on(copy_survives(path));
}
// doc-end: faults

#ifdef COIL_DOC_HAVE_SECCOMP
// doc-begin: seccomp
// What Docker's default profile does: io_uring's system calls fail with EPERM.
// coil falls back to epoll and says why.
int without_io_uring() {
  return in_child([] {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr) return 1;
    for (int sys : {SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register)}) {
      if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), sys, 0) != 0) return 1;
    }
    const bool loaded = seccomp_load(ctx) == 0;
    seccomp_release(ctx);
    if (!loaded) return 1;
    ::unsetenv("COIL_DRIVER");
    auto rt = coil::runtime::create();  // logs "coil: io_uring unavailable (...)" once
    if (!rt || (*rt)->driver().kind() != coil::driver_kind::epoll) return 2;
    if ((*rt)->driver().uring_error() != std::errc::operation_not_permitted) return 3;
    return (*rt)->block_on(round_trip()) ? 0 : 4;
  });
}
// doc-end: seccomp
#endif

}  // namespace

int main() {
  example::temp_dir dir;
  const std::string path = dir.file("f");
  check(on_every_driver(round_trip), "both drivers");
  ::close(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  check(emfile(path) == 0, "emfile");
  check(short_write(path) == 0, "short write");
  check(with_faults(dir.file("g")), "fault injection");
#ifdef COIL_DOC_HAVE_SECCOMP
  check(without_io_uring() == 0, "seccomp fallback");
#endif
  return example::exit_code();
}
