// xcore: cross-core round trips between two pinned cores. coil: --tasks
// tasks on core 1 each loop cores::submit_to(0, ...). --mode channel: the
// same request/reply traffic through two xchannels (core 1's tasks send a
// request and await a reply; one task on core 0 answers). Baseline (same
// run): the same pipelined traffic through two mutex+condvar queues.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "coil/rt/cores.hpp"
#include "coil/sync/xchannel.hpp"
#include "common.hpp"

namespace coil_bench {
namespace {

struct xcore_result {
  uint64_t trips = 0;
  double seconds = 0;
  double msgs_per_s() const noexcept { return seconds > 0 ? 2.0 * static_cast<double>(trips) / seconds : 0; }
};

// Pinned cores 0 and 1: core 0 runs server(), core 1 runs `tasks` copies of
// worker() and waits for them. Fills in the elapsed time.
template <class Server, class Worker>
void on_two_cores(xcore_result& out, int64_t start, uint64_t tasks, Server& server, Worker& worker) {
  auto r = coil::cores::run({.cpus = {0, 1}}, [&](unsigned core) -> coil::task<coil::result<void>> {
    if (core == 0) co_return co_await server();
    std::vector<coil::join_handle<void>> hs;
    for (uint64_t i = 0; i < tasks; ++i) hs.push_back(coil::runtime::current()->spawn(worker()));
    for (auto& h : hs) co_await h;
    co_return coil::result<void>{};
  });
  out.seconds = static_cast<double>(now_ns() - start) / 1e9;
  if (!r) std::fprintf(stderr, "xcore: %s\n", r.error().message().c_str());
}

xcore_result run_coil(uint64_t tasks, double seconds) {
  xcore_result out;
  uint64_t served = 0;  // core 0's
  const int64_t start = now_ns();
  const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  auto server = []() -> coil::task<coil::result<void>> { co_return coil::result<void>{}; };  // answers submit_to
  auto worker = [&]() -> coil::task<void> {
    while (now_ns() < end) {
      auto v = co_await coil::cores::submit_to(0, [&]() -> coil::task<uint64_t> { co_return ++served; });
      if (!v) co_return;
      ++out.trips;
    }
  };
  on_two_cores(out, start, tasks, server, worker);
  return out;
}

xcore_result run_channel(uint64_t tasks, double seconds) {
  xcore_result out;
  coil::xchannel<uint64_t> requests(tasks), replies(tasks);
  uint64_t workers_left = tasks;  // core 1's
  const int64_t start = now_ns();
  const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  auto server = [&]() -> coil::task<coil::result<void>> {
    for (;;) {
      auto v = co_await requests.recv();
      if (!v) co_return coil::result<void>{};  // closed: done
      auto s = co_await replies.send(*v + 1);
      if (!s) co_return s;
    }
  };
  auto worker = [&]() -> coil::task<void> {
    while (now_ns() < end) {
      auto s = co_await requests.send(out.trips);
      if (!s) break;
      auto v = co_await replies.recv();
      if (!v) break;
      ++out.trips;
    }
    if (--workers_left == 0) requests.close();
  };
  on_two_cores(out, start, tasks, server, worker);
  return out;
}

struct locked_queue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<uint64_t> items;
  void push(uint64_t v) {
    {
      std::lock_guard lock(mu);
      items.push_back(v);
    }
    cv.notify_one();
  }
  uint64_t pop() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return !items.empty(); });
    uint64_t v = items.front();
    items.pop_front();
    return v;
  }
};

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

xcore_result run_mutex(uint64_t in_flight, double seconds) {
  xcore_result out;
  locked_queue requests, replies;
  constexpr uint64_t quit = ~uint64_t{0};
  std::thread server([&] {
    pin(0);
    for (;;) {
      uint64_t v = requests.pop();
      if (v == quit) return;
      replies.push(v + 1);
    }
  });
  pin(1);
  const int64_t start = now_ns();
  const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  for (uint64_t i = 0; i < in_flight; ++i) requests.push(i);
  uint64_t outstanding = in_flight;
  while (outstanding > 0) {
    (void)replies.pop();
    ++out.trips;
    if (now_ns() < end) {
      requests.push(out.trips);
    } else {
      --outstanding;
    }
  }
  out.seconds = static_cast<double>(now_ns() - start) / 1e9;
  requests.push(quit);
  server.join();
  return out;
}

}  // namespace

int cmd_xcore(const options& opts) {
  const bool baseline = opts.baseline == "mutex";
  if (!opts.baseline.empty() && !baseline) {
    std::fprintf(stderr, "coil-bench: xcore supports --baseline mutex only\n");
    return 2;
  }
  const bool channel = opts.mode == "channel";
  if (baseline && channel) {
    std::fprintf(stderr, "coil-bench: xcore takes --baseline mutex or --mode channel, not both\n");
    return 2;
  }
  const xcore_result r = baseline  ? run_mutex(opts.tasks, opts.seconds)
                         : channel ? run_channel(opts.tasks, opts.seconds)
                                   : run_coil(opts.tasks, opts.seconds);
  const char* impl = baseline ? "mutex" : channel ? "coil-xchannel" : "coil";
  std::printf("xcore %s: %llu round trips in %.2f s, %llu in flight: %.0f msgs/s (%.0f ns per round trip)\n", impl,
              static_cast<unsigned long long>(r.trips), r.seconds, static_cast<unsigned long long>(opts.tasks),
              r.msgs_per_s(), r.trips ? r.seconds * 1e9 / static_cast<double>(r.trips) : 0.0);
  json_object j;
  j.add("bench", "xcore").add("impl", impl).add("msgs_per_s", r.msgs_per_s()).add("in_flight", opts.tasks);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace coil_bench
