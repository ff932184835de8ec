#include "coil/rt/signal.hpp"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "coil/rt/op.hpp"

namespace coil {

signal_set::signal_set() noexcept {
  sigemptyset(&signals_);
  sigemptyset(&unblock_);
}

result<signal_set> signal_set::create(std::initializer_list<int> signals) noexcept {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) {
    if (sigaddset(&set, s) != 0) return fail(std::errc::invalid_argument);
  }
  return create(set);
}

result<signal_set> signal_set::create(const sigset_t& signals) noexcept {
  // (glibc's sigisemptyset misses real-time signals: count them here.)
  int members = 0;
  for (int s = 1; s < NSIG; ++s) members += sigismember(&signals, s) == 1 ? 1 : 0;
  if (members == 0 || sigismember(&signals, SIGKILL) == 1 || sigismember(&signals, SIGSTOP) == 1) {
    return fail(std::errc::invalid_argument);
  }
  signal_set out;
  out.signals_ = signals;
  sigset_t before;
  if (const int e = pthread_sigmask(SIG_BLOCK, &signals, &before); e != 0) return fail(errno_code(e));
  // Only what was not blocked already goes back on destruction: sets nest.
  for (int s = 1; s < NSIG; ++s) {
    if (sigismember(&signals, s) == 1 && sigismember(&before, s) == 0) sigaddset(&out.unblock_, s);
  }
  out.fd_ = unique_fd(::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!out.fd_) {
    const int e = errno;
    pthread_sigmask(SIG_UNBLOCK, &out.unblock_, nullptr);
    return fail(errno_code(e));
  }
  return out;
}

signal_set::signal_set(signal_set&& o) noexcept
    : fd_(std::move(o.fd_)), signals_(o.signals_), unblock_(o.unblock_) {
  sigemptyset(&o.unblock_);
}

signal_set& signal_set::operator=(signal_set&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = std::move(o.fd_);
    signals_ = o.signals_;
    unblock_ = o.unblock_;
    sigemptyset(&o.unblock_);
  }
  return *this;
}

signal_set::~signal_set() { release(); }

void signal_set::release() noexcept {
  if (!fd_) return;
  fd_.reset();
  // A signal still pending meets its disposition now, as it would have
  // without the set (a late SIGTERM still ends the process).
  pthread_sigmask(SIG_UNBLOCK, &unblock_, nullptr);
  sigemptyset(&unblock_);
}

result<std::optional<signal_info>> signal_set::try_take() noexcept {
  signalfd_siginfo si;
  for (;;) {
    const ssize_t n = ::read(fd_.get(), &si, sizeof si);
    if (n == static_cast<ssize_t>(sizeof si)) break;
    if (n >= 0) return fail(std::errc::io_error);  // signalfd reads whole records
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return std::optional<signal_info>{};
    return fail(errno_code(errno));
  }
  signal_info out;
  out.signo = static_cast<int>(si.ssi_signo);
  out.code = si.ssi_code;
  out.pid = static_cast<pid_t>(si.ssi_pid);
  out.uid = static_cast<uid_t>(si.ssi_uid);
  out.status = si.ssi_status;
  out.value = static_cast<int64_t>(si.ssi_ptr);
  return std::optional<signal_info>(out);
}

task<result<signal_info>> signal_set::wait() {
  for (;;) {
    auto got = try_take();
    if (!got) co_return fail(got.error());
    if (*got) co_return **got;
    // Readiness, then a nonblocking read: another waiter may take the
    // signal first, and a cancelled wait has consumed nothing.
    auto ready = co_await wait_readable(fd_.get());
    if (!ready) co_return fail(ready.error());
  }
}

void signal_set::restore_default() noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int s = 1; s < NSIG; ++s) {
    if (sigismember(&signals_, s) == 1) ::sigaction(s, &dfl, nullptr);
  }
  pthread_sigmask(SIG_UNBLOCK, &signals_, nullptr);
  sigemptyset(&unblock_);  // unblocked now; the destructor has nothing to undo
}

}  // namespace coil
