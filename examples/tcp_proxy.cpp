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
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "args.hpp"
#include "coil/coil.hpp"
#include "listen_address.hpp"
#include "serve_cores.hpp"

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

  std::string what = ", relaying to ";
  what += argv[2];
  const serve_cores::options so{"tcp_proxy", cfg.grace_ns, cores};
  return serve_cores::run(*where, so, what.c_str(), [&cfg](net::tcp_stream s) { return relay(std::move(s), cfg); });
}
