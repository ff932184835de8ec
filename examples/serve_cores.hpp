#pragma once
// The examples' server scaffolding (tcp_proxy, file_server): listeners on
// one or N pinned cores, an accept loop per core spawning each connection
// into a task_group, and a graceful stop. The first SIGINT/SIGTERM, watched
// on core 0, sets every core's stop event; each core then closes its
// listener and gives its open connections `grace` before cancelling them
// (with_timeout cancelling a join cancels the group and still waits for
// every connection). restore_default() after the first signal lets a
// second one end a stuck stop at once.
#include <sched.h>
#include <signal.h>
#include <string.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "coil/coil.hpp"

namespace serve_cores {

struct options {
  const char* name;    // the program, for messages
  int64_t grace_ns;    // open connections' time to finish at a stop
  unsigned cores = 0;  // 0: one runtime on the calling thread; N: N pinned cores
};

inline bool fd_exhausted(std::error_code e) {
  return e == std::errc::too_many_files_open || e == std::errc::too_many_files_open_in_system;
}

// Accepts until cancelled; every connection's task, spawn(stream), joins
// `conns`. EMFILE/ENFILE waits 10 ms (the connection waits in the backlog).
template <class Spawn>
coil::task<coil::result<void>> accept_loop(coil::net::tcp_listener& l, coil::task_group& conns, const options& o,
                                           Spawn& spawn) {
  for (;;) {
    auto s = co_await l.accept();
    if (!s) {
      if (s.error() == std::errc::operation_canceled) co_return coil::fail(s.error());
      if (fd_exhausted(s.error())) {
        auto slept = co_await coil::sleep_for(std::chrono::milliseconds(10));
        if (!slept) co_return coil::fail(slept.error());
        continue;
      }
      std::fprintf(stderr, "%s: accept: %s\n", o.name, s.error().message().c_str());
      co_return coil::fail(s.error());
    }
    conns.spawn(spawn(std::move(*s)));
  }
}

inline coil::task<coil::result<void>> join(coil::task_group& g) { co_return co_await g.join(); }

// One core's server: accept until `stop` is set, then the grace.
template <class Spawn>
coil::task<coil::result<void>> serve(coil::net::tcp_listener& l, const options& o, coil::event& stop, Spawn& spawn) {
  coil::task_group conns;
  auto first = co_await coil::when_any(accept_loop(l, conns, o, spawn), stop.wait());
  coil::result<void> r;
  if (first.index() == 0 && std::get<0>(first).error() != std::errc::operation_canceled) r = std::get<0>(first);
  (void)co_await l.close();  // new clients are refused from now on
  (void)co_await coil::with_timeout(join(conns), std::chrono::nanoseconds(o.grace_ns));
  co_return r;
}

// Core 0's signal watcher: the first SIGINT/SIGTERM sets every core's stop
// event (each on its own core: an event is single-core).
inline coil::task<void> stop_on_signal(coil::signal_set& sigs, coil::event* stops, const options& o) {
  auto sig = co_await sigs.wait();
  if (!sig) co_return;  // cancelled: the server ended another way
  std::fprintf(stderr, "%s: %s: stopping, connections get %.3g s\n", o.name, sigabbrev_np(sig->signo),
               static_cast<double>(o.grace_ns) / 1e9);
  sigs.restore_default();  // a second signal now ends the process
  for (unsigned core = 0; core < coil::cores::count(); ++core) {
    if (core == coil::cores::current()) {
      stops[core].set();
    } else {
      auto sent = co_await coil::cores::spawn_on(
          core,
          [](coil::event* e) -> coil::task<void> {
            e->set();
            co_return;
          },
          &stops[core]);
      (void)sent;
    }
  }
}

template <class Spawn>
coil::task<coil::result<void>> run_core(unsigned core, coil::net::tcp_listener& l, const options& o,
                                        coil::signal_set& sigs, coil::event* stops, Spawn& spawn) {
  coil::join_handle<void> watcher;
  if (core == 0) watcher = coil::runtime::current()->spawn(stop_on_signal(sigs, stops, o));
  auto r = co_await serve(l, o, stops[core], spawn);
  if (!r) coil::cores::stop();  // a failed core takes the others down
  if (watcher.valid()) {
    watcher.cancel();
    co_await std::move(watcher);
  }
  co_return r;
}

// Binds the listeners (one per core, SO_REUSEPORT when o.cores > 0; port 0
// picks a port once and the others join it), blocks SIGINT/SIGTERM before
// any thread starts, prints "NAME: listening on ADDR<what>" and serves
// until the stop. spawn(net::tcp_stream) gives a connection's task<void>.
// The exit status: 0 after a clean stop, 1 for a failure (printed), 2 for
// too few CPUs.
template <class Spawn>
int run(const coil::net::socket_address& where, const options& o, const char* what, Spawn spawn) {
  auto fail = [&](const char* step, std::error_code e) {
    std::fprintf(stderr, "%s: %s: %s\n", o.name, step, e.message().c_str());
    return 1;
  };
  coil::cores_options copts;
  if (o.cores > 0) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 1;
    for (int c = 0; c < CPU_SETSIZE && copts.cpus.size() < o.cores; ++c) {
      if (CPU_ISSET(c, &allowed)) copts.cpus.push_back(c);
    }
    if (copts.cpus.size() < o.cores) {
      std::fprintf(stderr, "%s: only %zu CPUs available\n", o.name, copts.cpus.size());
      return 2;
    }
  }
  coil::net::listen_options lo;
  lo.reuse_port = o.cores > 0;
  std::vector<coil::net::tcp_listener> listeners;
  coil::net::socket_address at = where;
  for (unsigned i = 0; i < std::max(o.cores, 1u); ++i) {
    auto l = coil::net::tcp_listener::bind(at, lo);
    if (!l) return fail("bind", l.error());
    if (auto local = l->local_address(); local) at = *local;
    listeners.push_back(std::move(*l));
  }
  auto sigs = coil::signal_set::create({SIGINT, SIGTERM});  // before any thread: every core blocks them
  if (!sigs) return fail("signals", sigs.error());
  auto stops = std::make_unique<coil::event[]>(listeners.size());
  std::printf("%s: listening on %s%s\n", o.name, at.to_string().c_str(), what);
  std::fflush(stdout);

  coil::result<void> r;
  if (o.cores == 0) {
    auto rt = coil::runtime::create();
    if (!rt) return fail("runtime", rt.error());
    r = (*rt)->block_on(run_core(0, listeners[0], o, *sigs, stops.get(), spawn));
  } else {
    r = coil::cores::run(copts,
                         [&](unsigned core) { return run_core(core, listeners[core], o, *sigs, stops.get(), spawn); });
  }
  if (!r && r.error() != std::errc::operation_canceled) return fail("stopped", r.error());
  return 0;
}

}  // namespace serve_cores
