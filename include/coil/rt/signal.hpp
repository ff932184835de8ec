#pragma once
// signal_set: POSIX signals as awaitable values, in any runtime.
//
//   auto sigs = coil::signal_set::create({SIGINT, SIGTERM});   // blocks them
//   auto s = co_await sigs->wait();                            // result<signal_info>
//   sigs->restore_default();  // a second SIGINT/SIGTERM now ends the process
//
// create() blocks the signals in the calling thread (pthread_sigmask) and
// opens a signalfd for them; the kernel keeps a blocked signal pending until
// wait() reads it, so nothing that arrives between two waits is lost. The
// kernel does merge a standard signal sent again while one of the same
// number is pending (two quick SIGUSR1 may be read as one); real-time
// signals (SIGRTMIN..SIGRTMAX) queue each one.
//
// Threads: the mask is per thread and inherited by threads created later.
// A signal sent to the process (kill(2)) goes to some thread that does not
// block it, and the set sees it only if every thread blocks it. So create
// the set before starting threads: before cores::run (the core threads
// inherit the mask; wait on one core), before a runtime's first
// spawn_blocking (coil's own worker threads block every signal anyway).
// A signal sent to one thread (pthread_kill) is seen only by a wait on that
// thread. Destroy the set on the thread that created it, after the threads
// that inherited its mask are done: it unblocks the signals it blocked, and
// one still pending then meets its usual disposition (a late SIGTERM still
// ends the process).
#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <optional>

#include "coil/core/result.hpp"
#include "coil/core/unique_fd.hpp"
#include "coil/rt/task.hpp"

namespace coil {

// One delivered signal (the fields of signalfd_siginfo that most programs use).
struct signal_info {
  int signo = 0;
  int code = 0;         // si_code: SI_USER (kill), SI_QUEUE, SI_TKILL, CLD_EXITED...
  pid_t pid = 0;        // the sender (SI_USER, SI_QUEUE) or the child (SIGCHLD)
  uid_t uid = 0;        // the sender's real user id
  int status = 0;       // SIGCHLD: the exit status or signal
  int64_t value = 0;    // sigqueue(3)'s sival_int / sival_ptr
};

// An awaitable set of signals (see the file description). Move-only.
class signal_set {
 public:
  // Blocks `signals` in the calling thread and starts receiving them.
  // EINVAL for an empty list, a bad number, or SIGKILL/SIGSTOP (which
  // cannot be blocked); errors of signalfd(2) otherwise.
  static result<signal_set> create(std::initializer_list<int> signals) noexcept;
  static result<signal_set> create(const sigset_t& signals) noexcept;

  signal_set(signal_set&& o) noexcept;
  signal_set& operator=(signal_set&& o) noexcept;
  signal_set(const signal_set&) = delete;
  signal_set& operator=(const signal_set&) = delete;
  ~signal_set();

  // The next signal of the set: one already pending at once, else the first
  // to arrive. Cancellable (stop tokens, when_any, with_timeout: a cancelled
  // wait consumes no signal). Several tasks may wait; each signal goes to one.
  // The set must outlive the wait.
  task<result<signal_info>> wait();
  // A pending signal without waiting; nullopt when none is.
  result<std::optional<signal_info>> try_take() noexcept;

  // For a graceful stop: from now on these signals have their default action
  // (SIG_DFL) and are unblocked in the calling thread, so the next one ends
  // the process with the usual status (killed by SIGTERM, for instance),
  // even if the stop hangs. One already pending is delivered at once. Call
  // it on a thread that lives until the end (the set's waiter is one).
  void restore_default() noexcept;

  // The signalfd (readable while a signal is pending), for callers that
  // poll themselves.
  int fd() const noexcept { return fd_.get(); }
  // The signals of the set.
  const sigset_t& signals() const noexcept { return signals_; }

 private:
  signal_set() noexcept;
  void release() noexcept;

  unique_fd fd_;
  sigset_t signals_;
  sigset_t unblock_;  // what the destructor unblocks: the set's signals not blocked before
};

}  // namespace coil
