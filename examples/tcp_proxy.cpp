// tcp_proxy [HOST:]PORT UPSTREAM_HOST:PORT [--idle SECONDS] [--grace SECONDS] [--cores N]
//
// A TCP proxy: every connection accepted on [HOST:]PORT is relayed both ways
// to UPSTREAM (connected within 5 s) with copy_bidirectional, half-close
// included: a client that ends its stream still reads the upstream's reply.
// --idle S (default 300): a connection with no bytes either way for S
// seconds is closed at both ends. SIGINT/SIGTERM stop gracefully: accepting
// ends, open connections get --grace S (default 5) to finish, then are
// cancelled, and the exit status is 0; a second signal during the stop ends
// the process at once. --cores N: N pinned cores, each accepting on its own
// SO_REUSEPORT listener.
#include <sched.h>
#include <signal.h>
#include <string.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string_view>
#include <vector>

#include "args.hpp"
#include "coil/coil.hpp"
#include "listen_address.hpp"

namespace {

namespace net = coil::net;

struct config {
  std::vector<net::socket_address> upstream;
  int64_t idle_ns = 300'000'000'000;
  int64_t grace_ns = 5'000'000'000;
};

constexpr auto connect_timeout = std::chrono::seconds(5);

int64_t now_ns() { return coil::runtime::current()->now_ns(); }

// The stream the copy sees: the socket, stamping `last` whenever a read or
// write completes, so the idle watchdog knows when bytes last moved.
struct stamped {
  net::tcp_stream& s;
  int64_t& last;

  coil::task<coil::result<size_t>> read_some(std::span<std::byte> buf) {
    auto n = co_await s.read_some(buf);
    last = now_ns();
    co_return n;
  }
  coil::task<coil::result<size_t>> write_some(std::span<const std::byte> buf) {
    auto n = co_await s.write_some(buf);
    last = now_ns();
    co_return n;
  }
  auto shutdown_write() { return s.shutdown_write(); }
};

// Ends once nothing has moved for idle_ns (it re-arms while bytes flow).
coil::task<void> idle_watchdog(const int64_t& last, int64_t idle_ns) {
  for (int64_t due = last + idle_ns; now_ns() < due; due = last + idle_ns) {
    auto slept = co_await coil::sleep_until_ns(due);
    if (!slept) co_return;  // cancelled: the copy ended first
  }
}

coil::task<void> relay(net::tcp_stream client, const config& cfg) {
  auto up = co_await net::tcp_stream::connect(cfg.upstream, connect_timeout);
  if (!up) {
    if (up.error() != std::errc::operation_canceled) {
      std::fprintf(stderr, "tcp_proxy: upstream: %s\n", up.error().message().c_str());
    }
    co_return;  // the client is closed: it sees the end of the stream
  }
  (void)client.set_nodelay(true);
  (void)up->set_nodelay(true);
  int64_t last = now_ns();
  stamped a{client, last};
  stamped b{*up, last};
  auto r = co_await coil::when_any(coil::copy_bidirectional(a, b), idle_watchdog(last, cfg.idle_ns));
  if (r.index() == 0) {
    const coil::bidirectional_result& moved = std::get<0>(r);
    // Resets are a client's or upstream's business; a cancel is our stop.
    if (!moved && moved.error() != std::errc::operation_canceled && moved.error() != std::errc::connection_reset &&
        moved.error() != std::errc::broken_pipe) {
      std::fprintf(stderr, "tcp_proxy: relay: %s\n", moved.error().message().c_str());
    }
  }
  // Both sockets close here; after an idle timeout that is the whole point.
  (void)co_await up->close();
  (void)co_await client.close();
}

bool fd_exhausted(std::error_code e) {
  return e == std::errc::too_many_files_open || e == std::errc::too_many_files_open_in_system;
}

// Accepts until cancelled; every connection joins `conns`.
coil::task<coil::result<void>> accept_loop(net::tcp_listener& l, coil::task_group& conns, const config& cfg) {
  for (;;) {
    auto s = co_await l.accept();
    if (!s) {
      if (s.error() == std::errc::operation_canceled) co_return coil::fail(s.error());
      // EMFILE/ENFILE: the connection waits in the backlog; try again shortly.
      if (fd_exhausted(s.error())) {
        auto slept = co_await coil::sleep_for(std::chrono::milliseconds(10));
        if (!slept) co_return coil::fail(slept.error());
        continue;
      }
      std::fprintf(stderr, "tcp_proxy: accept: %s\n", s.error().message().c_str());
      co_return coil::fail(s.error());
    }
    conns.spawn(relay(std::move(*s), cfg));
  }
}

coil::task<coil::result<void>> join(coil::task_group& g) { co_return co_await g.join(); }

// One core's proxy: accept until `stop` is set, then give the open
// connections the grace and cancel what is left (with_timeout cancelling a
// join cancels the group and still waits for every connection).
coil::task<coil::result<void>> serve(net::tcp_listener& l, const config& cfg, coil::event& stop) {
  coil::task_group conns;
  auto first = co_await coil::when_any(accept_loop(l, conns, cfg), stop.wait());
  coil::result<void> r;
  if (first.index() == 0 && std::get<0>(first).error() != std::errc::operation_canceled) r = std::get<0>(first);
  (void)co_await l.close();  // new clients are refused from now on
  (void)co_await coil::with_timeout(join(conns), std::chrono::nanoseconds(cfg.grace_ns));
  co_return r;
}

// Core 0's signal watcher: the first SIGINT/SIGTERM sets every core's stop
// event (each on its own core: an event is single-core).
coil::task<void> stop_on_signal(coil::signal_set& sigs, coil::event* stops, const config& cfg) {
  auto sig = co_await sigs.wait();
  if (!sig) co_return;  // cancelled: the proxy ended another way
  std::fprintf(stderr, "tcp_proxy: %s: stopping, connections get %.3g s\n", sigabbrev_np(sig->signo),
               static_cast<double>(cfg.grace_ns) / 1e9);
  sigs.restore_default();  // a second signal now ends the process
  for (unsigned core = 0; core < coil::cores::count(); ++core) {
    if (core == coil::cores::current()) {
      stops[core].set();
    } else {
      auto sent = co_await coil::cores::spawn_on(
          core, [](coil::event* e) -> coil::task<void> {
            e->set();
            co_return;
          },
          &stops[core]);
      (void)sent;
    }
  }
}

coil::task<coil::result<void>> run_core(unsigned core, net::tcp_listener& l, const config& cfg,
                                        coil::signal_set& sigs, coil::event* stops) {
  coil::join_handle<void> watcher;
  if (core == 0) watcher = coil::runtime::current()->spawn(stop_on_signal(sigs, stops, cfg));
  auto r = co_await serve(l, cfg, stops[core]);
  if (!r) coil::cores::stop();  // a failed core takes the others down
  if (watcher.valid()) {
    watcher.cancel();
    co_await std::move(watcher);
  }
  co_return r;
}

int usage() {
  return ::usage(
      "tcp_proxy [HOST:]PORT UPSTREAM_HOST:PORT [--idle SECONDS (up to 86400)] [--grace SECONDS (up to 3600)] "
      "[--cores N (1-1024)]");
}

int fail(const char* what, std::error_code e) {
  std::fprintf(stderr, "tcp_proxy: %s: %s\n", what, e.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  config cfg;
  unsigned cores = 0;
  for (int i = 3; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return usage();
    if (a == "--idle" || a == "--grace") {
      const auto s = parse_seconds(argv[++i], a == "--idle" ? 86'400 : 3'600);
      if (!s) return usage();
      (a == "--idle" ? cfg.idle_ns : cfg.grace_ns) = static_cast<int64_t>(*s * 1e9);
    } else if (a == "--cores") {
      const auto n = parse_count(argv[++i], 1, CPU_SETSIZE);
      if (!n) return usage();
      cores = static_cast<unsigned>(*n);
    } else {
      return usage();
    }
  }
  const auto where = listen_address(argv[1]);
  if (!where) {
    std::fprintf(stderr, "tcp_proxy: bad address or port %s\n", argv[1]);
    return usage();
  }
  // The upstream is a name or an IP literal, resolved once, before starting.
  auto hp = net::split_host_port(argv[2]);
  if (!hp) {
    std::fprintf(stderr, "tcp_proxy: bad upstream %s\n", argv[2]);
    return usage();
  }
  auto addrs = net::resolve_now(hp->host, hp->port);
  if (!addrs) return fail(argv[2], addrs.error());
  cfg.upstream = std::move(*addrs);

  coil::cores_options opts;
  if (cores > 0) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 1;
    for (int c = 0; c < CPU_SETSIZE && opts.cpus.size() < cores; ++c) {
      if (CPU_ISSET(c, &allowed)) opts.cpus.push_back(c);
    }
    if (opts.cpus.size() < cores) {
      std::fprintf(stderr, "tcp_proxy: only %zu CPUs available\n", opts.cpus.size());
      return 2;
    }
  }
  // One listener per core (SO_REUSEPORT: the kernel spreads connections),
  // all bound first; port 0 picks a port once and the others join it.
  net::listen_options lo;
  lo.reuse_port = cores > 0;
  std::vector<net::tcp_listener> listeners;
  net::socket_address at = *where;
  for (unsigned i = 0; i < std::max(cores, 1u); ++i) {
    auto l = net::tcp_listener::bind(at, lo);
    if (!l) return fail("bind", l.error());
    if (auto local = l->local_address(); local) at = *local;
    listeners.push_back(std::move(*l));
  }
  // Before any thread starts, so that every core thread blocks them too.
  auto sigs = coil::signal_set::create({SIGINT, SIGTERM});
  if (!sigs) return fail("signals", sigs.error());
  auto stops = std::make_unique<coil::event[]>(listeners.size());
  std::printf("tcp_proxy: listening on %s, relaying to %s\n", at.to_string().c_str(), argv[2]);
  std::fflush(stdout);

  coil::result<void> r;
  if (cores == 0) {
    auto rt = coil::runtime::create();
    if (!rt) return fail("runtime", rt.error());
    r = (*rt)->block_on(run_core(0, listeners[0], cfg, *sigs, stops.get()));
  } else {
    r = coil::cores::run(opts, [&](unsigned core) {
      return run_core(core, listeners[core], cfg, *sigs, stops.get());
    });
  }
  if (!r && r.error() != std::errc::operation_canceled) return fail("stopped", r.error());
  return 0;
}
