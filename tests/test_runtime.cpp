// Runtime: tasks, spawn/join, batching, queue pressure, teardown safety.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <thread>
#include <vector>

#include "coil/net.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using coil::test::run;

task<int> add(int a, int b) { co_return a + b; }

task<int> nested(int depth) {
  if (depth == 0) co_return 0;
  int below = co_await nested(depth - 1);
  co_return below + 1;
}

TEST(Runtime, BlockOnReturnsValue) { EXPECT_EQ(run(add(2, 3)), 5); }

// `co_return {};` is the success of a task<result<void>> (and a
// value-initialized T elsewhere).
TEST(Runtime, CoReturnBracesGivesAnEmptySuccess) {
  auto ok = [](bool refuse) -> task<result<void>> {
    if (refuse) co_return fail(std::errc::invalid_argument);
    co_return {};
  };
  EXPECT_TRUE(run(ok(false)));
  auto bad = run(ok(true));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), std::errc::invalid_argument);
  auto zero = []() -> task<result<int>> { co_return {}; };
  auto z = run(zero());
  ASSERT_TRUE(z);
  EXPECT_EQ(*z, 0);
}

TEST(Runtime, DeepNestingUsesNoStack) {
  // Symmetric transfer: 100k nested awaits would overflow the stack otherwise.
  EXPECT_EQ(run(nested(100000)), 100000);
}

TEST(Runtime, SpawnJoinAndDetach) {
  int detached_ran = 0;
  auto body = [&]() -> task<int> {
    auto* rt = runtime::current();
    auto h1 = rt->spawn(add(1, 2));
    auto h2 = rt->spawn(add(10, 20));
    rt->spawn([](int& flag) -> task<void> {
        co_await yield();
        flag = 1;
      }(detached_ran))
        .detach();
    int a = co_await h2;
    int b = co_await h1;
    co_await yield();
    co_await yield();
    co_return a + b;
  };
  EXPECT_EQ(run(body()), 33);
  EXPECT_EQ(detached_ran, 1);
}

TEST(Runtime, JoinAfterTaskFinished) {
  auto body = []() -> task<int> {
    auto h = runtime::current()->spawn(add(4, 4));
    for (int i = 0; i < 3; ++i) co_await yield();
    EXPECT_TRUE(h.done());
    co_return co_await h;
  };
  EXPECT_EQ(run(body()), 8);
}

TEST(Runtime, OpsInOneTurnShareOneEnter) {
  COIL_REQUIRE_URING();
  constexpr int n = 100;
  auto body = []() -> task<result<void>> {
    auto* rt = runtime::current();
    std::vector<join_handle<result<void>>> hs;
    for (int i = 0; i < n; ++i) hs.push_back(rt->spawn([]() -> task<result<void>> { co_return co_await nop(); }()));
    const auto before = rt->stats().io;
    for (auto& h : hs) {
      auto r = co_await h;
      if (!r) co_return r;
    }
    const auto after = rt->stats().io;
    // All n tasks ran in one turn and pushed their nop; the park submitted
    // them together and reaped all n completions.
    EXPECT_EQ(after.enter_calls - before.enter_calls, 1u);
    EXPECT_EQ(after.submitted - before.submitted, static_cast<uint64_t>(n));
    EXPECT_EQ(after.completed - before.completed, static_cast<uint64_t>(n));
    co_return result<void>{};
  };
  auto r = run(body());
  EXPECT_TRUE(r) << r.error().message();
}

// On io_uring, owners resume from the park's CQ walk. Here the first owner
// destroys a frame whose completion is next in the same walk: its
// destructor's cancel_and_wait reaps that CQE (a nested reap), and the walk
// goes on past it without touching the freed frame (ASan watches). The
// third completion, reaped by the nested reap, still reaches its owner.
TEST(Runtime, OwnerResumedFromTheWalkDestroysAFrameWhoseCompletionComesNext) {
  struct shared {
    task<void> victim;
    bool victim_resumed = false;
    int killer_done = 0;
  };
  auto victim = [](bool& resumed) -> task<void> {
    (void)co_await nop();
    resumed = true;
  };
  auto killer = [](shared& s) -> task<void> {
    auto first = co_await nop();
    EXPECT_TRUE(first);
    s.victim = task<void>();  // mid-nop: its CQE follows this one
    auto second = co_await nop();
    EXPECT_TRUE(second);
    ++s.killer_done;
  };
  auto body = [](shared& s, task<void>& k) -> task<result<void>> {
    // Pushed in this order, so the CQ holds killer, victim, body.
    k.handle().resume();
    s.victim.handle().resume();
    auto mine = co_await nop();
    if (!mine) co_return mine;
    while (s.killer_done == 0) {
      auto r = co_await nop();
      if (!r) co_return r;
    }
    co_return result<void>{};
  };
  for (int round = 0; round < 20; ++round) {
    shared s;
    s.victim = victim(s.victim_resumed);
    task<void> k = killer(s);
    auto r = run(body(s, k));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_FALSE(s.victim_resumed);
    EXPECT_FALSE(s.victim.valid());
    EXPECT_EQ(s.killer_done, 1);
  }
}

TEST(Runtime, SmallRingWithTenThousandOpsCompletesEachOnce) {
  COIL_REQUIRE_URING();
  test::temp_dir dir;
  const std::string path = dir.file("data");
  {
    std::vector<char> data(1 << 16);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  runtime_options opts;
  opts.uring.entries = 16;
  constexpr int n = 10000;
  std::vector<int> completions(n, 0);
  auto body = [&]() -> task<int> {
    auto f = co_await file::open(path.c_str());
    EXPECT_TRUE(f);
    auto* rt = runtime::current();
    std::vector<join_handle<bool>> hs;
    hs.reserve(n);
    for (int i = 0; i < n; ++i) {
      hs.push_back(rt->spawn([](const file& f, int i, int& count) -> task<bool> {
        if (i % 2 == 0) {
          auto r = co_await nop();
          ++count;
          co_return static_cast<bool>(r);
        }
        char b[8];
        const uint64_t off = static_cast<uint64_t>(i % 8000) * 8;
        auto r = co_await f.read_at(std::as_writable_bytes(std::span(b)), off);
        ++count;
        if (!r || *r != 8) co_return false;
        for (int k = 0; k < 8; ++k) {
          if (b[k] != static_cast<char>((off + k) * 7)) co_return false;
        }
        co_return true;
      }(*f, i, completions[i])));
    }
    int ok = 0;
    for (auto& h : hs) ok += co_await h;
    co_return ok;
  };
  auto rt = runtime::create(opts);
  ASSERT_TRUE(rt);
  EXPECT_EQ((*rt)->block_on(body()), n);
  for (int c : completions) ASSERT_EQ(c, 1);
  const auto s = (*rt)->stats().io;
  EXPECT_EQ((*rt)->driver().cq_overflow(), 0u);
  EXPECT_LE(s.in_flight_max, (*rt)->driver().ring_capacity());
  EXPECT_GT(s.queued_for_space, 0u);
}

// A reader parked on an empty pipe, with its buffer in its own frame.
task<result<size_t>> read_pipe(int fd) {
  char buf[128];
  file f(unique_fd(::dup(fd)));
  co_return co_await f.read(std::as_writable_bytes(std::span(buf)));
}

TEST(Runtime, DestroyingTasksMidReadNeverLetsKernelWriteFreedMemory) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const int fds_before = test::open_fds();
  for (int iter = 0; iter < 10000 / 8; ++iter) {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    auto starter = [&]() -> task<void> {
      for (int k = 0; k < 8; ++k) runtime::current()->spawn(read_pipe(p[0])).detach();
      co_await yield();  // readers run and submit
      co_await yield();
    };
    (*rt)->block_on(starter());
    EXPECT_EQ((*rt)->driver().in_flight(), 8u);
    rt->reset();  // destroys 8 frames with reads in flight
  }
  // No read consumed pipe data after its frame died: the byte is still there.
  ASSERT_EQ(::write(p[1], "z", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'z');
  EXPECT_EQ(test::open_fds(), fds_before);
  ::close(p[0]);
  ::close(p[1]);
}

TEST(Runtime, LateOpenResultIsClosedNotLeaked) {
  test::temp_dir dir;
  const std::string path = dir.file("f");
  ::close(::open(path.c_str(), O_CREAT | O_WRONLY, 0644));
  const int fds_before = test::open_fds();
  for (int iter = 0; iter < 50; ++iter) {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    auto starter = [&]() -> task<void> {
      for (int k = 0; k < 16; ++k) {
        runtime::current()
            ->spawn([](const char* p) -> task<void> {
              auto f = co_await file::open(p);
              co_await sleep_for(std::chrono::hours(1));  // keeps f open if it got here
            }(path.c_str()))
            .detach();
      }
      co_await yield();
    };
    (*rt)->block_on(starter());
    rt->reset();  // opens in flight are drained; any fd they produced is closed
  }
  EXPECT_EQ(test::open_fds(), fds_before);
}

TEST(Runtime, DeadlockIsReportedNotHung) {
  struct never {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    void await_resume() const noexcept {}
  };
  auto body = []() -> task<result<int>> {
    co_await never{};
    co_return 1;
  };
  auto r = run(body());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::deadlock);
}

TEST(Runtime, ResultTypesAreValuesNotExceptions) {
  auto body = []() -> task<result<size_t>> {
    file f;  // not open: fd -1
    char b[4];
    co_return co_await f.read_at(std::as_writable_bytes(std::span(b)), 0);
  };
  auto r = run(body());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::bad_file_descriptor);
}

TEST(RuntimeDeathTest, TaskAwaitedTwiceAsserts) {
  auto body = []() -> task<int> {
    auto t = add(1, 1);
    int a = co_await std::move(t);
    int b = co_await std::move(t);  // NOLINT: deliberate misuse
    co_return a + b;
  };
  EXPECT_DEATH(run(body()), "awaiting an empty task|task awaited twice");
}

TEST(RuntimeDeathTest, SecondRuntimeOnOneThreadAsserts) {
  EXPECT_DEATH(
      {
        auto a = runtime::create();
        auto b = runtime::create();
      },
      "already owns a coil runtime");
}

TEST(RuntimeDeathTest, SpawnFromAnotherThreadAsserts) {
  EXPECT_DEATH(
      {
        auto rt = runtime::create();
        runtime* r = rt->get();
        std::thread t([r] { r->spawn(add(1, 2)).detach(); });
        t.join();
      },
      "does not own the runtime");
}

TEST(Runtime, NewRuntimeAfterPreviousDestroyed) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run(add(i, i)), 2 * i);
  EXPECT_EQ(runtime::current(), nullptr);
}

// Per-operation state lives in coroutine frames: the sizes the design notes
// state, exactly, so a change that grows (or shrinks) them is seen.
static_assert(sizeof(completion) == 40);
static_assert(sizeof(op_awaiter<ops::read>) == 128);
static_assert(sizeof(sleep_awaiter) == 104);
static_assert(sizeof(net::tcp_stream) == 24);

}  // namespace

namespace {

void on_sigusr1(int) {}

TEST(Runtime, SignalsDuringParkAreNotErrors) {
  struct sigaction sa {};
  sa.sa_handler = on_sigusr1;  // no SA_RESTART: io_uring_enter returns EINTR
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  const pthread_t self = pthread_self();
  std::atomic<bool> stop{false};
  std::thread pester([&] {
    while (!stop.load()) {
      pthread_kill(self, SIGUSR1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  auto body = [&]() -> coil::task<bool> {
    bool ok = true;
    for (int i = 0; i < 20; ++i) {
      auto s = co_await coil::sleep_for(std::chrono::milliseconds(2));
      ok = ok && static_cast<bool>(s);
      auto n = co_await coil::nop();
      ok = ok && static_cast<bool>(n);
    }
    // A read that parks until data arrives from the other thread.
    std::thread writer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      (void)::write(p[1], "s", 1);
    });
    char c = 0;
    coil::file f(coil::unique_fd(::dup(p[0])));
    auto r = co_await f.read(std::as_writable_bytes(std::span(&c, 1)));
    writer.join();
    co_return ok && r && *r == 1 && c == 's';
  };
  EXPECT_TRUE(coil::test::run(body()));
  stop = true;
  pester.join();
  sigaction(SIGUSR1, &old, nullptr);
  ::close(p[0]);
  ::close(p[1]);
}

}  // namespace
