// signal_set: signals as awaited values on any runtime, with real kill(2)
// and sigqueue(3) of this process. Each test runs in its own process (ctest),
// so blocking a signal here touches no other test. The threaded tests run
// under TSan in scripts/test.
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <set>

#include "coil/rt/cores.hpp"
#include "coil/rt/signal.hpp"
#include "test_cores_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

bool blocked_here(int sig) {
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return sigismember(&now, sig) == 1;
}

// Forks; the child runs fn and exits with its value. Returns the raw wait
// status. SIGALRM ends a child that hangs.
template <class Fn>
int child_status(Fn fn) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(60);
    ::_exit(fn());
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

TEST(SignalSet, ASignalSentWhileNobodyWaitsIsNotLost) {
  auto sigs = signal_set::create({SIGUSR1});
  ASSERT_TRUE(sigs) << sigs.error().message();
  ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);  // before any runtime or wait exists
  test::run([](signal_set& s) -> task<void> {
    co_await sleep_for(1ms);  // a few loop turns with nobody waiting
    auto got = co_await s.wait();
    CO_ASSERT_OK(got);
    EXPECT_EQ(got->signo, SIGUSR1);
    EXPECT_EQ(got->code, SI_USER);
    EXPECT_EQ(got->pid, ::getpid());
    EXPECT_EQ(got->uid, ::getuid());
    auto none = s.try_take();
    CO_ASSERT_OK(none);
    EXPECT_FALSE(none->has_value());
  }(*sigs));
}

TEST(SignalSet, TwoDifferentSignalsAreBothDelivered) {
  auto sigs = signal_set::create({SIGUSR1, SIGUSR2});
  ASSERT_TRUE(sigs) << sigs.error().message();
  test::run([](signal_set& s) -> task<void> {
    ::kill(::getpid(), SIGUSR2);
    ::kill(::getpid(), SIGUSR1);
    std::set<int> seen;
    for (int i = 0; i < 2; ++i) {
      auto got = co_await s.wait();
      CO_ASSERT_OK(got);
      seen.insert(got->signo);
    }
    EXPECT_EQ(seen, (std::set<int>{SIGUSR1, SIGUSR2}));
  }(*sigs));
}

// The waiter parks first; a second task sends the signal.
TEST(SignalSet, AWaitingTaskWakesWhenTheSignalArrives) {
  auto sigs = signal_set::create({SIGUSR1});
  ASSERT_TRUE(sigs);
  test::run([](signal_set& s) -> task<void> {
    auto waiter = runtime::current()->spawn(s.wait());
    co_await sleep_for(5ms);
    EXPECT_FALSE(waiter.done());
    ::kill(::getpid(), SIGUSR1);
    auto got = co_await waiter;
    CO_ASSERT_OK(got);
    EXPECT_EQ(got->signo, SIGUSR1);
  }(*sigs));
}

// Real-time signals queue one per send, with their values, in order.
TEST(SignalSet, RealTimeSignalsQueueEachWithItsValue) {
  const int rt = SIGRTMIN + 1;
  auto sigs = signal_set::create({rt});
  ASSERT_TRUE(sigs);
  for (int v = 1; v <= 3; ++v) {
    sigval val{};
    val.sival_int = v;
    ASSERT_EQ(::sigqueue(::getpid(), rt, val), 0);
  }
  test::run([](signal_set& s, int rt) -> task<void> {
    for (int v = 1; v <= 3; ++v) {
      auto got = co_await s.wait();
      CO_ASSERT_OK(got);
      EXPECT_EQ(got->signo, rt);
      EXPECT_EQ(got->code, SI_QUEUE);
      EXPECT_EQ(static_cast<int>(got->value), v);
    }
  }(*sigs, rt));
}

TEST(SignalSet, DestructionRestoresTheMaskAndSetsNest) {
  ASSERT_FALSE(blocked_here(SIGUSR1));
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, nullptr);  // blocked by someone else before
  {
    auto outer = signal_set::create({SIGUSR1, SIGUSR2});
    ASSERT_TRUE(outer);
    EXPECT_TRUE(blocked_here(SIGUSR1));
    {
      auto inner = signal_set::create({SIGUSR1});
      ASSERT_TRUE(inner);
      auto moved = std::move(*inner);  // the moved-from set restores nothing
    }
    EXPECT_TRUE(blocked_here(SIGUSR1));  // still the outer set's
  }
  EXPECT_FALSE(blocked_here(SIGUSR1));
  EXPECT_TRUE(blocked_here(SIGUSR2));  // left as it was found
  pthread_sigmask(SIG_UNBLOCK, &usr2, nullptr);
}

TEST(SignalSet, BadSignalListsAreErrors) {
  EXPECT_TRUE(test::fails_with(signal_set::create({}), std::errc::invalid_argument));
  EXPECT_TRUE(test::fails_with(signal_set::create({SIGKILL}), std::errc::invalid_argument));
  EXPECT_TRUE(test::fails_with(signal_set::create({SIGUSR1, SIGSTOP}), std::errc::invalid_argument));
  EXPECT_TRUE(test::fails_with(signal_set::create({0}), std::errc::invalid_argument));
  EXPECT_TRUE(test::fails_with(signal_set::create({4096}), std::errc::invalid_argument));
  EXPECT_FALSE(blocked_here(SIGUSR1));
}

// A cancelled wait (timeout, when_any, cancel) ends with an error and takes
// nothing: the next signal still reaches the next wait.
TEST(SignalSet, CancelledWaitsConsumeNothing) {
  auto sigs = signal_set::create({SIGUSR1});
  ASSERT_TRUE(sigs);
  test::run([](signal_set& s) -> task<void> {
    auto timed = co_await with_timeout(s.wait(), 10ms);
    EXPECT_TRUE(test::fails_with(timed, std::errc::timed_out));
    auto raced = co_await when_any(s.wait(), sleep_for(5ms));
    EXPECT_EQ(raced.index(), 1u);
    auto h = runtime::current()->spawn(s.wait());
    co_await sleep_for(1ms);
    h.cancel();
    auto cancelled = co_await h;
    EXPECT_TRUE(test::fails_with(cancelled, std::errc::operation_canceled));
    ::kill(::getpid(), SIGUSR1);
    auto got = co_await with_timeout(s.wait(), 1h);
    CO_ASSERT_OK(got);
    EXPECT_EQ(got->signo, SIGUSR1);
  }(*sigs));
}

// The pattern of a graceful stop: the first SIGTERM starts it, restore_default
// lets a second one end the process (killed by SIGTERM) though the stop hangs.
TEST(SignalSet, ASecondSigtermEndsAProcessStuckInItsStop) {
  const int status = child_status([] {
    auto sigs = signal_set::create({SIGINT, SIGTERM});
    if (!sigs) return 2;
    auto rt = runtime::create();
    if (!rt) return 3;
    auto r = (*rt)->block_on([](signal_set& s) -> task<result<void>> {
      ::kill(::getpid(), SIGTERM);
      auto first = co_await s.wait();
      if (!first || first->signo != SIGTERM) co_return fail(std::errc::io_error);
      s.restore_default();
      ::kill(::getpid(), SIGTERM);  // the operator insists
      co_await sleep_for(1h);       // a stop that never ends
      co_return result<void>{};
    }(*sigs));
    return r ? 0 : 4;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

// One that arrived before restore_default (pending) ends the process there.
TEST(SignalSet, ASigintPendingAtRestoreDefaultEndsTheProcess) {
  const int status = child_status([] {
    auto sigs = signal_set::create({SIGINT, SIGTERM});
    if (!sigs) return 2;
    auto rt = runtime::create();
    if (!rt) return 3;
    auto r = (*rt)->block_on([](signal_set& s) -> task<result<void>> {
      ::kill(::getpid(), SIGTERM);
      auto first = co_await s.wait();
      if (!first) co_return fail(first.error());
      ::kill(::getpid(), SIGINT);  // pending: blocked still
      co_await sleep_for(1ms);
      s.restore_default();
      co_return result<void>{};
    }(*sigs));
    return r ? 5 : 4;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  EXPECT_EQ(WTERMSIG(status), SIGINT);
}

// Made before cores::run, the set's mask is every core's: a signal sent to
// the process waits for core 0's wait, whichever core sends it.
TEST(SignalSet, CoresInheritTheMaskAndOneCoreWaits) {
  auto sigs = signal_set::create({SIGUSR1});
  ASSERT_TRUE(sigs);
  std::atomic<int> got{0};
  std::atomic<int> masked{0};
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (blocked_here(SIGUSR1)) masked.fetch_add(1);
    if (core == 1) {
      ::kill(::getpid(), SIGUSR1);
      co_return result<void>{};
    }
    auto s = co_await sigs->wait();
    if (!s) co_return fail(s.error());
    got.store(s->signo);
    co_return result<void>{};
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(got.load(), SIGUSR1);
  EXPECT_EQ(masked.load(), 2);
}

// spawn_blocking's threads block every signal, so a set made after the
// runtime still gets a signal sent from (or while) such a thread runs.
TEST(SignalSet, SpawnBlockingThreadsNeverTakeTheSignal) {
  test::run([]() -> task<void> {
    auto warm = co_await spawn_blocking([] { return 0; });  // the pool's thread exists before the set
    CO_ASSERT_OK(warm);
    auto sigs = signal_set::create({SIGUSR1});
    CO_ASSERT_OK(sigs);
    auto sent = co_await spawn_blocking([] {
      const bool masked = blocked_here(SIGUSR1);
      ::kill(::getpid(), SIGUSR1);
      return masked;
    });
    CO_ASSERT_OK(sent);
    EXPECT_TRUE(*sent);
    auto got = co_await sigs->wait();
    CO_ASSERT_OK(got);
    EXPECT_EQ(got->signo, SIGUSR1);
  }());
}

}  // namespace
