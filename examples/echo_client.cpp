// echo_client HOST:PORT [--conns N (16)] [--msg BYTES (64)] [--seconds S (5)] [--tls CA]
// HOST is a name (localhost) or an IP literal ([::1] for IPv6).
// --tls CA: every connection is a coil::tls client stream that verifies the
// server's certificate against the CA file and HOST.
//
// Load generator for an echo server: N connections, each sending a message
// and waiting for it to come back, over and over (an echo that differs is an
// error). Prints round trips per second and the p50/p99 latency of a round
// trip.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "args.hpp"
#include "coil/coil.hpp"
#if COIL_EXAMPLE_TLS
#include "coil/tls/stream.hpp"
#endif

namespace {

struct config {
  std::vector<coil::net::socket_address> addrs;  // HOST's, tried in turn
  size_t conns = 16;
  size_t msg = 64;
  double seconds = 5;
  std::string host;             // checked against the certificate with --tls
  const char* ca = nullptr;     // --tls
#if COIL_EXAMPLE_TLS
  const coil::tls::context* tls = nullptr;
#endif
};

struct totals {
  bool stop = false;
  uint64_t trips = 0;
  uint64_t errors = 0;
  std::vector<uint32_t> latency_ns;  // one sample per round trip
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Round trips over a connected stream (a tcp_stream, or a tls::stream over
// one) until the run ends.
template <class Stream>
coil::task<void> echo_loop(Stream& s, const config& cfg, totals& t) {
  const std::string out(cfg.msg, 'x');
  std::string in(cfg.msg, '\0');
  while (!t.stop) {
    const int64_t t0 = now_ns();
    auto w = co_await coil::write_all_to(s, std::as_bytes(std::span(out)));
    if (!w) {
      ++t.errors;
      break;
    }
    auto r = co_await coil::read_exact_from(s, std::as_writable_bytes(std::span(in)));
    if (!r || in != out) {  // the echo must be what was sent
      ++t.errors;
      break;
    }
    t.latency_ns.push_back(static_cast<uint32_t>(std::min<int64_t>(now_ns() - t0, UINT32_MAX)));
    ++t.trips;
  }
}

coil::task<void> connection(const config& cfg, totals& t) {
  auto s = co_await coil::net::tcp_stream::connect(cfg.addrs, std::chrono::seconds(5));
  if (!s) {
    std::fprintf(stderr, "echo_client: connect: %s\n", s.error().message().c_str());
    ++t.errors;
    co_return;
  }
  (void)s->set_nodelay(true);
#if COIL_EXAMPLE_TLS
  if (cfg.tls != nullptr) {
    auto ts = coil::tls::stream<coil::net::tcp_stream>::client(*cfg.tls, std::move(*s), {.server_name = cfg.host});
    if (!ts) {
      std::fprintf(stderr, "echo_client: tls: %s\n", ts.error().message().c_str());
      ++t.errors;
      co_return;
    }
    auto h = co_await coil::with_timeout(ts->handshake(), std::chrono::seconds(5));
    if (!h) {
      std::fprintf(stderr, "echo_client: handshake: %s\n", h.error().message().c_str());
      ++t.errors;
    } else {
      co_await echo_loop(*ts, cfg, t);
      (void)co_await ts->shutdown();
    }
    (void)co_await ts->next_layer().close();
    co_return;
  }
#endif
  co_await echo_loop(*s, cfg, t);
  (void)co_await s->close();
}

// Ends the run: every connection finishes its round trip, then stops.
coil::task<void> stop_after(double seconds, totals& t) {
  (void)co_await coil::sleep_for(std::chrono::duration<double>(seconds));
  t.stop = true;
}

coil::task<void> run(const config& cfg, totals& t) {
  std::vector<coil::task<void>> all;
  for (size_t i = 0; i < cfg.conns; ++i) all.push_back(connection(cfg, t));
  all.push_back(stop_after(cfg.seconds, t));
  co_await coil::when_all(std::move(all));
}

double percentile_us(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k] / 1000.0;
}

}  // namespace

constexpr const char* usage_line =
    "echo_client HOST:PORT [--conns N (1-100000)] [--msg BYTES (1-16777216)] [--seconds S (up to 86400)] "
    "[--tls CA]";

int main(int argc, char** argv) {
  config cfg;
  bool ok = argc >= 2 && argc % 2 == 0;
  if (ok) {
    // HOST is a name or an IP literal; resolved here, before the runtime starts.
    auto hp = coil::net::split_host_port(argv[1]);
    ok = static_cast<bool>(hp);
    if (hp) {
      auto addrs = coil::net::resolve_now(hp->host, hp->port);
      if (!addrs) {
        std::fprintf(stderr, "echo_client: %.*s: %s\n", static_cast<int>(hp->host.size()), hp->host.data(),
                     addrs.error().message().c_str());
        return 1;
      }
      cfg.addrs = std::move(*addrs);
      cfg.host = hp->host;
    }
  }
  // Bounded before anything is allocated: every connection is a task with
  // two message buffers, all started before the first connect.
  for (int i = 2; ok && i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    if (name == "--conns") {
      const auto v = parse_count(argv[i + 1], 1, 100'000);
      ok = v.has_value();
      cfg.conns = static_cast<size_t>(v.value_or(0));
    } else if (name == "--msg") {
      const auto v = parse_count(argv[i + 1], 1, 16 << 20);
      ok = v.has_value();
      cfg.msg = static_cast<size_t>(v.value_or(0));
    } else if (name == "--tls") {
      cfg.ca = argv[i + 1];
    } else if (name == "--seconds") {
      const auto v = parse_seconds(argv[i + 1], 86'400);
      ok = v.has_value();
      cfg.seconds = v.value_or(0);
    } else {
      ok = false;
    }
  }
  if (!ok) return usage(usage_line);
#if COIL_EXAMPLE_TLS
  std::optional<coil::tls::context> ctx;
  if (cfg.ca != nullptr) {
    auto c = coil::tls::context::client({.ca_file = cfg.ca});
    if (!c) {
      std::fprintf(stderr, "echo_client: %s: %s\n", cfg.ca, c.error().message().c_str());
      return 1;
    }
    ctx = std::move(*c);
    cfg.tls = &*ctx;
  }
#else
  if (cfg.ca != nullptr) {
    std::fprintf(stderr, "echo_client: built without TLS (COIL_TLS=OFF)\n");
    return 1;
  }
#endif
  auto rt = coil::runtime::create();
  if (!rt) {
    std::fprintf(stderr, "echo_client: %s\n", rt.error().message().c_str());
    return 1;
  }
  totals t;
  const int64_t t0 = now_ns();
  (*rt)->block_on(run(cfg, t));
  const double secs = static_cast<double>(now_ns() - t0) / 1e9;
  const double p50 = percentile_us(t.latency_ns, 0.50);
  const double p99 = percentile_us(t.latency_ns, 0.99);
  std::printf(
      "echo_client: %zu conns, %zu-byte messages, %.2f s: %.0f round trips/s, p50 %.1f us, p99 %.1f us, "
      "errors %llu\n",
      cfg.conns, cfg.msg, secs, static_cast<double>(t.trips) / secs, p50, p99,
      static_cast<unsigned long long>(t.errors));
  return t.errors == 0 ? 0 : 1;
}
