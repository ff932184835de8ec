// Guide: multicore.md. cores::run on (up to) two CPUs: cross-core calls,
// fire-and-forget work, a cross-core channel, the blocking pool and stop.
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>

#include <coil/coil.hpp>

#include "example_util.hpp"

namespace {

using example::check;

// Up to two CPUs this process may run on.
coil::cores_options two_cpus() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  coil::cores_options opts;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return opts;
  for (int c = 0; c < CPU_SETSIZE && opts.cpus.size() < 2; ++c) {
    if (CPU_ISSET(c, &allowed)) opts.cpus.push_back(c);
  }
  return opts;
}

// doc-begin: run
coil::task<coil::result<void>> core_main(unsigned core, coil::xchannel<int>& results) {
  const unsigned last = coil::cores::count() - 1;
  if (core != 0) co_return {};  // the others serve calls until every main is done

  // Runs a task on `last` and brings its value back here.
  auto where = co_await coil::cores::submit_to(last, []() -> coil::task<unsigned> {
    co_return coil::cores::current();
  });
  if (!where) co_return coil::fail(where.error());  // runtime_closed if `last` is going away
  check(*where == last, "submit_to");

  // Fire-and-forget: the callable moves to `last`, which spawns its task.
  for (int i = 0; i < 10; ++i) {
    auto sent = co_await coil::cores::spawn_on(last, [i, &results]() -> coil::task<void> {
      (void)co_await results.send(i * i);
    });
    if (!sent) co_return sent;
  }
  int sum = 0;
  for (int i = 0; i < 10; ++i) {
    auto v = co_await results.recv();
    if (!v) co_return coil::fail(v.error());
    sum += *v;
  }
  check(sum == 285, "spawn_on + xchannel");

  // Blocking code (getaddrinfo, hashing) runs on the process-wide pool.
  auto len = co_await coil::spawn_blocking([] { return std::string(1000, 'x').size(); });
  check(len && *len == 1000, "spawn_blocking");
  co_return {};
}

int run_cores() {
  coil::xchannel<int> results(16);  // shared by the cores, outlives them
  auto r = coil::cores::run(two_cpus(), [&](unsigned core) { return core_main(core, results); });
  if (!r) std::fprintf(stderr, "cores::run: %s\n", r.error().message().c_str());
  return r ? 0 : 1;
}
// doc-end: run

// doc-begin: stop
int stop_from_a_core() {
  auto r = coil::cores::run(two_cpus(), [](unsigned core) -> coil::task<coil::result<void>> {
    if (core == 0) {
      coil::cores::stop();  // thread-safe: cancels every core's tasks
      co_return {};
    }
    auto s = co_await coil::sleep_for(std::chrono::hours(1));  // ends with operation_canceled,
    co_return s;  // which, after stop(), cores::run does not count as an error
  });
  return r ? 0 : 1;
}
// doc-end: stop

// doc-begin: sharded
// One hit counter per core: each core counts its own, without locks.
struct hit_counter {
  uint64_t hits = 0;
  unsigned core = coil::cores::current();  // made on its own core
};

// The same code serves many cores (cores::run) or one (a plain runtime).
coil::task<coil::result<void>> count_hits(unsigned core, coil::sharded<hit_counter>& counters) {
  if (core != 0) co_return {};  // core 0 drives; the others serve its calls
  auto started = co_await counters.start();  // a hit_counter on every core
  if (!started) co_return started;
  // Every core at once (a connection handler would use counters.local()).
  auto counted = co_await counters.invoke_on_all([](hit_counter& c) { c.hits += c.core + 1; });
  if (!counted) co_return counted;
  uint64_t total = 0;
  for (unsigned c = 0; c < coil::cores::count(); ++c) {
    auto h = co_await counters.invoke_on(c, [](hit_counter& mine) { return mine.hits; });
    if (!h) co_return coil::fail(h.error());
    total += *h;
  }
  const uint64_t n = coil::cores::count();
  check(total == n * (n + 1) / 2, "sharded");
  co_return co_await counters.stop();  // each counter destroyed on its own core
}

int run_sharded(unsigned cores) {
  coil::sharded<hit_counter> counters;
  if (cores == 1) {  // `--cores 1`: no cores::run, cores::count() is 1
    auto rt = coil::runtime::create();
    if (!rt) return 1;
    return (*rt)->block_on(count_hits(0, counters)) ? 0 : 1;
  }
  auto r = coil::cores::run(two_cpus(), [&counters](unsigned core) { return count_hits(core, counters); });
  return r ? 0 : 1;
}
// doc-end: sharded

// doc-begin: block
// Plain synchronous code, no runtime in sight: each call runs the same
// operation co_await would, on this thread's private runtime.
int copy_prefix(const char* from, const char* to, std::size_t n) {
  auto in = coil::block(coil::file::open(from));
  if (!in) {
    std::fprintf(stderr, "open: %s\n", in.error().message().c_str());
    return 1;
  }
  std::string data(n, '\0');
  auto got = coil::block(in->read_at(std::as_writable_bytes(std::span(data)), 0));
  if (!got) return 1;
  auto out = coil::block(coil::file::create(to));
  if (!out) return 1;
  auto put = coil::block(out->write_at(std::as_bytes(std::span(data).first(*got)), 0));
  return put && *put == *got ? 0 : 1;
}
// doc-end: block

}  // namespace

int main() {
  const int a = run_cores();
  const int b = stop_from_a_core();
  char copy[] = "/tmp/coil-doc-block-XXXXXX";
  const int tmp = ::mkstemp(copy);
  const int c = tmp >= 0 ? copy_prefix("/etc/os-release", copy, 16) : 1;
  if (tmp >= 0) {
    ::unlink(copy);
    ::close(tmp);
  }
  check(c == 0, "blocking copy");
  check(run_sharded(1) == 0 && run_sharded(2) == 0, "sharded on one and two cores");
  return a == 0 && b == 0 && example::exit_code();
}
