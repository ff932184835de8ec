// Stopping a group of cores: whatever the tasks are doing (waiting on another
// core, detached, under load), cores::run returns, user code never runs with
// cores::count() == 0, and no descriptor is left open. Runs under TSan.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "coil/net.hpp"
#include "coil/rt/cores.hpp"
#include "coil/sync/xchannel.hpp"
#include "test_cores_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

// Ends the test binary if cores::run does not return: a hang is the failure
// this file exists to catch, and ctest's own timeout is minutes away.
class hang_guard {
 public:
  explicit hang_guard(std::chrono::seconds limit) {
    thread_ = std::thread([this, limit] {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
        std::fprintf(stderr, "cores::run did not return within %lld s\n", static_cast<long long>(limit.count()));
        std::_Exit(3);
      }
    });
  }
  ~hang_guard() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The reported hang: a detached task on core 1 loops on submit_to(0, ...)
// while core 0 stops the group.
TEST(CoresStop, DetachedCallerInsideSubmitToStops) {
  hang_guard guard(30s);
  std::atomic<long> calls{0};
  std::atomic<int> last_error{0};
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 1) {
      // Parameters, not captures: a lambda called in place dies with the
      // statement, its coroutine's frame lives on.
      runtime::current()->spawn([](std::atomic<long>& calls, std::atomic<int>& last_error) -> task<void> {
        for (;;) {
          auto v = co_await cores::submit_to(0, []() -> task<int> {
            co_await sleep_for(100us);
            co_return 1;
          });
          if (!v) {
            last_error = v.error().value();
            co_return;
          }
          calls.fetch_add(*v);
        }
      }(calls, last_error)).detach();
    } else {
      co_await sleep_for(50ms);
      cores::stop();
    }
    co_await sleep_for(1h);
    co_return result<void>{};
  });
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_GT(calls.load(), 0);
  EXPECT_NE(last_error.load(), 0);
}

// The caller's frame is destroyed (its task ignores cancellation past the
// grace) while the target is torn down too: each side answers the other.
TEST(CoresStop, CallersPastTheGraceAreDestroyedWithoutHanging) {
  hang_guard guard(30s);
  cores_options o = test::two_cores();
  o.stop_grace = 20ms;
  std::atomic<int> started{0};
  auto r = cores::run(o, [&](unsigned core) -> task<result<void>> {
    // Every task on each core calls the other core, whose function ignores
    // cancellation (a busy loop that only yields).
    for (int i = 0; i < 16; ++i) {
      runtime::current()->spawn([](unsigned core, std::atomic<int>& started) -> task<void> {
        (void)co_await cores::submit_to(1 - core, [&started]() -> task<int> {
          started.fetch_add(1);
          for (;;) {
            timespec ts{0, 100'000};
            nanosleep(&ts, nullptr);
            co_await coil::yield();
          }
          co_return 0;
        });
      }(core, started)).detach();
    }
    co_await sleep_for(20ms);
    if (core == 0) cores::stop();
    co_await sleep_for(1h);
    co_return result<void>{};
  });
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_GT(started.load(), 0);
}

// User code that runs during the stop (cancelled tasks finishing, callers
// getting their answers) sees the group as it was.
TEST(CoresStop, CountAndCurrentHoldWhileTasksWindDown) {
  hang_guard guard(30s);
  std::atomic<int> wound_down{0};
  std::atomic<int> bad{0};
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    for (int i = 0; i < 50; ++i) {
      runtime::current()->spawn([](unsigned core, int i, std::atomic<int>& bad, std::atomic<int>& wound_down) -> task<void> {
        const unsigned key = static_cast<unsigned>(i) * 2654435761u;
        for (;;) {
          auto v = co_await cores::submit_to(key % cores::count(), []() -> task<int> {
            co_await sleep_for(50us);
            co_return 0;
          });
          // Whatever ended the loop, the group is still whole here.
          if (cores::count() != 2 || cores::current() != core) bad.fetch_add(1);
          if (!v) break;
        }
        (void)(key % cores::count());  // SIGFPE if count() were 0
        wound_down.fetch_add(1);
      }(core, i, bad, wound_down)).detach();
    }
    if (core == 1) {
      co_await sleep_for(30ms);
      cores::stop();
    }
    co_await sleep_for(1h);
    co_return result<void>{};
  });
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(wound_down.load(), 100);  // each ran to its end, none destroyed mid-way
}

struct refused {
  std::atomic<int> submit{-1}, spawn{-1}, send{-1}, ran{0};
};

// A task the stop cancelled that reaches for another core on its way out
// gets an answer at once (runtime_closed or operation_canceled): nothing
// runs, nothing waits.
TEST(CoresStop, CrossCoreWorkFromAStoppedTaskIsRefused) {
  hang_guard guard(30s);
  refused out;
  xchannel<int> ch(1);
  auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
    if (core == 1) {
      runtime::current()->spawn([](refused& out, xchannel<int>& ch) -> task<void> {
        (void)co_await sleep_for(1h);  // until the stop
        auto v = co_await cores::submit_to(0, [&out]() -> task<int> {
          out.ran.fetch_add(1);
          co_return 1;
        });
        out.submit = v ? 0 : v.error().value();
        auto s = co_await cores::spawn_on(0, [&out]() -> task<void> {
          out.ran.fetch_add(1);
          co_return;
        });
        out.spawn = s ? 0 : s.error().value();
        (void)ch.try_send(1);
        auto c = co_await ch.send(2);  // full: would wait for a receiver
        out.send = c ? 0 : c.error().value();
      }(out, ch)).detach();
    } else {
      co_await sleep_for(10ms);
      cores::stop();
    }
    co_await sleep_for(1h);
    co_return result<void>{};
  });
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_EQ(out.ran.load(), 0);
  for (int e : {out.submit.load(), out.spawn.load(), out.send.load()}) {
    EXPECT_TRUE(e == static_cast<int>(errc::runtime_closed) || e == ECANCELED) << e;
  }
}

// The sharded-server pattern from the guide: connections detached on the
// core that accepted them, keys owned by core hash % count(), every request
// a submit_to to the owner. A client thread keeps it loaded; the group is
// stopped mid-load, 100 times.
TEST(CoresStop, ShardedServerUnderLoadStops100Times) {
  const int fds_before = test::open_fds();
  long total_replies = 0;
  double worst_ms = 0;
  for (int run = 0; run < 100; ++run) {
    hang_guard guard(30s);
    net::listen_options lo;
    lo.reuse_port = true;
    auto l0 = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0), lo);
    ASSERT_TRUE(l0) << l0.error().message();
    auto addr = l0->local_address();
    ASSERT_TRUE(addr);
    auto l1 = net::tcp_listener::bind(*addr, lo);
    ASSERT_TRUE(l1) << l1.error().message();
    net::tcp_listener* listeners[2] = {&*l0, &*l1};
    std::unordered_map<unsigned, unsigned> shard[2];

    std::atomic<bool> client_done{false};
    std::atomic<long> replies{0};
    std::chrono::steady_clock::time_point stop_at;
    std::thread client([&] {
      coil::block([&]() -> task<void> {
        std::vector<net::tcp_stream> conns;
        for (int i = 0; i < 4; ++i) {
          auto c = co_await net::tcp_stream::connect(*addr);
          if (c) conns.push_back(std::move(*c));
        }
        for (unsigned k = 0; !client_done.load(); ++k) {
          for (auto& c : conns) {
            const unsigned req = k;
            if (!co_await c.send_all(std::as_bytes(std::span(&req, 1)))) co_return;
            unsigned resp;
            auto n = co_await c.recv_exact(std::as_writable_bytes(std::span(&resp, 1)));
            if (!n) co_return;
            replies.fetch_add(1);
          }
        }
      }());
    });

    auto r = cores::run(test::two_cores(), [&](unsigned core) -> task<result<void>> {
      // Capture-free: detached connections outlive this main's frame.
      auto serve = [](net::tcp_stream s, std::unordered_map<unsigned, unsigned>* shard) -> task<void> {
        for (;;) {
          unsigned key;
          if (!co_await s.recv_exact(std::as_writable_bytes(std::span(&key, 1)))) co_return;
          const unsigned owner = key % cores::count();
          auto v = co_await cores::submit_to(owner, [shard, owner, key]() -> task<unsigned> {
            co_return ++shard[owner][key % 64];
          });
          if (!v) co_return;
          if (!co_await s.send_all(std::as_bytes(std::span(&*v, 1)))) co_return;
        }
      };
      if (core == 0) {
        runtime::current()->spawn([](std::chrono::steady_clock::time_point& at) -> task<void> {
          co_await sleep_for(20ms);
          at = std::chrono::steady_clock::now();
          cores::stop();
        }(stop_at)).detach();
      }
      for (;;) {
        auto c = co_await listeners[core]->accept();
        if (!c) break;
        runtime::current()->spawn(serve(std::move(*c), shard)).detach();
      }
      co_return result<void>{};
    });
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - stop_at).count();
    worst_ms = std::max(worst_ms, ms);
    client_done = true;
    client.join();
    ASSERT_TRUE(r) << "run " << run << ": " << r.error().message();
    total_replies += replies.load();
  }
  EXPECT_GT(total_replies, 0);
  EXPECT_EQ(test::open_fds(), fds_before);
  std::printf("100 stops under load: %ld replies, slowest stop %.1f ms\n", total_replies, worst_ms);
}

// Runs body in a child with SIGINT/SIGTERM handled by cores::run; returns
// the child's wait status and what it wrote to stderr.
template <class Body>
std::pair<int, std::string> in_child(Body body) {
  int err[2];
  if (::pipe(err) != 0) return {-1, ""};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(err[1], 2);
    ::close(err[0]);
    ::close(err[1]);
    std::_Exit(body());
  }
  ::close(err[1]);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(err[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {status, out};
}

// A task that ignores cancellation holds the graceful stop up; a second
// SIGTERM ends the process at once, with a message.
TEST(CoresStop, SecondSignalDuringAGracefulStopExits) {
  auto [status, err] = in_child([] {
    cores_options o = test::two_cores();
    o.handle_signals = true;
    o.stop_grace = std::chrono::hours(1);
    auto r = cores::run(o, [](unsigned core) -> task<result<void>> {
      if (core == 0) {
        runtime::current()->spawn([]() -> task<void> {
          bool stopping = false;
          for (;;) {  // ignores cancellation
            auto z = co_await sleep_for(1ms);
            if (!z && !stopping) {
              // The first signal has been read (it cancelled us): this one
              // cannot merge with it.
              stopping = true;
              ::kill(::getpid(), SIGTERM);
            }
          }
        }()).detach();
        co_await sleep_for(20ms);
        ::kill(::getpid(), SIGTERM);
      }
      co_await sleep_for(1h);
      co_return result<void>{};
    });
    return r ? 0 : 1;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  EXPECT_NE(err.find("TERM during a graceful stop"), std::string::npos) << err;
}

TEST(CoresStop, OneSignalStopsGracefullyWithExitZero) {
  auto [status, err] = in_child([] {
    cores_options o = test::two_cores();
    o.handle_signals = true;
    std::atomic<int> cleaned{0};
    auto r = cores::run(o, [&](unsigned core) -> task<result<void>> {
      runtime::current()->spawn([](std::atomic<int>& cleaned) -> task<void> {
        (void)co_await sleep_for(1h);
        cleaned.fetch_add(1);  // cancelled tasks run to their end
      }(cleaned)).detach();
      if (core == 1) {
        co_await sleep_for(20ms);
        ::kill(::getpid(), SIGINT);
      }
      co_await sleep_for(1h);
      co_return result<void>{};
    });
    return r && cleaned.load() == 2 ? 0 : 1;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << err;
}

}  // namespace
