// echo_server PORT|HOST:PORT [--mode plain|multishot] [--cores N] [--tls CERT KEY]
//
// A TCP echo server on 0.0.0.0:PORT (or HOST:PORT): one task per connection, each looping
// recv -> send_all until the peer closes. "plain" (the default) gives every
// connection its own 16 KiB recv buffer. "multishot" accepts with one
// multishot accept and receives with multishot recvs into one shared ring of
// provided buffers: an idle connection holds no buffer (this server's RSS
// grows by about 800 bytes per idle connection, against 17 KB in plain mode).
// --cores N: N pinned cores (cores::run), each accepting on its own
// SO_REUSEPORT listener, so the kernel spreads connections over them;
// SIGINT/SIGTERM stop every core. Single-core: SIGUSR1 prints the pending
// operations (opcode, fd, age, task) to stderr.
// --tls CERT KEY: each connection is a coil::tls server stream (plain mode);
// one context serves every connection on every core.
#include <sched.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "args.hpp"
#include "coil/coil.hpp"
#include "listen_address.hpp"
#if COIL_EXAMPLE_TLS
#include "coil/tls/stream.hpp"
#endif

namespace {

coil::task<void> serve(coil::net::tcp_stream s) {
  co_await coil::set_task_name("echo conn");
  (void)s.set_nodelay(true);
  std::vector<std::byte> buf(16 << 10);
  for (;;) {
    auto n = co_await s.recv(buf);
    if (!n || *n == 0) break;  // peer closed, or reset
    auto w = co_await s.send_all(std::span(buf).first(*n));
    if (!w) break;
  }
  (void)co_await s.close();
}

#if COIL_EXAMPLE_TLS
// A client that connects and never finishes its handshake costs a task for
// this long, not forever.
constexpr auto handshake_limit = std::chrono::seconds(5);

coil::task<void> serve_tls(coil::net::tcp_stream c, const coil::tls::context& ctx) {
  co_await coil::set_task_name("echo tls conn");
  (void)c.set_nodelay(true);
  auto s = co_await coil::with_timeout(coil::tls::accept(ctx, std::move(c)), handshake_limit);
  if (!s) co_return;
  std::vector<std::byte> buf(16 << 10);
  for (;;) {
    auto n = co_await s->read_some(buf);
    if (!n || *n == 0) break;  // close_notify, truncation or reset
    auto w = co_await s->write_all(std::span(buf).first(*n));
    if (!w) break;
  }
  (void)co_await s->shutdown();
  (void)co_await s->next_layer().close();
}

const coil::tls::context* tls_context = nullptr;
#endif

// Plain mode's task for one connection.
coil::task<void> serve_plain(coil::net::tcp_stream s) {
#if COIL_EXAMPLE_TLS
  if (tls_context != nullptr) return serve_tls(std::move(s), *tls_context);
#endif
  return serve(std::move(s));
}

coil::task<void> serve_multishot(coil::net::tcp_stream s, coil::buffer_ring& ring) {
  (void)s.set_nodelay(true);
  auto rx = s.recv_multishot(ring);
  for (;;) {
    auto b = co_await rx.next();
    if (!b || b->empty()) break;  // peer closed, or reset
    auto w = co_await s.send_all(b->bytes());
    if (!w) break;
  }  // b goes back to the ring here
  (void)co_await s.close();
}

// SIGUSR1 comes through a signal_set, so the dump runs on the runtime's own
// thread, not in a signal handler.
coil::task<void> dump_on_sigusr1(coil::signal_set& sigs) {
  co_await coil::set_task_name("sigusr1");
  for (;;) {
    auto sig = co_await sigs.wait();
    if (!sig) break;
    coil::runtime::current()->dump_in_flight(stderr);
  }
}

// After a failed accept: whether to accept again. EMFILE/ENFILE leave the
// connection waiting in the backlog: pause briefly and retry. A cancel
// (--cores: a signal) or any other error ends the server.
coil::task<bool> accept_again(std::error_code e) {
  if (e == std::errc::too_many_files_open || e == std::errc::too_many_files_open_in_system) {
    auto slept = co_await coil::sleep_for(std::chrono::milliseconds(10));
    co_return slept.has_value();
  }
  if (e != std::errc::operation_canceled) std::fprintf(stderr, "echo_server: accept: %s\n", e.message().c_str());
  co_return false;
}

// 0 when stopped (a cancel), 1 after an accept error.
int exit_status(std::error_code e) { return e == std::errc::operation_canceled ? 0 : 1; }

coil::task<int> run_multishot(coil::net::tcp_listener& listener) {
  // Multishot recv needs a registered buffer ring; where the kernel or a
  // sandbox refuses one, connections get plain recvs (accept stays multishot).
  auto ring = coil::buffer_ring::create(coil::runtime::current()->driver(), 1024, 4096);
  if (!ring) {
    std::fprintf(stderr, "echo_server: no buffer ring (%s): receiving with plain recv\n",
                 ring.error().message().c_str());
  }
  auto incoming = listener.incoming();
  for (;;) {
    auto s = co_await incoming.next();
    if (!s) {
      const bool again = co_await accept_again(s.error());  // then the next next() accepts
      if (again) continue;
      co_return exit_status(s.error());
    }
    if (ring) {
      coil::runtime::current()->spawn(serve_multishot(std::move(*s), **ring)).detach();
    } else {
      coil::runtime::current()->spawn(serve(std::move(*s))).detach();
    }
  }
}

bool multishot_mode = false;

coil::task<int> run(coil::net::tcp_listener& listener) {
  if (multishot_mode) co_return co_await run_multishot(listener);
  for (;;) {
    auto s = co_await listener.accept();
    if (!s) {
      const bool again = co_await accept_again(s.error());
      if (again) continue;
      co_return exit_status(s.error());
    }
    coil::runtime::current()->spawn(serve_plain(std::move(*s))).detach();
  }
}

coil::task<coil::result<void>> core_main(coil::net::tcp_listener& listener) {
  const int rc = co_await run(listener);
  if (rc != 0) co_return coil::fail(std::errc::io_error);
  co_return {};
}

int usage() {
  return ::usage("echo_server PORT|HOST:PORT [--mode plain|multishot] [--cores N (1-1024)] [--tls CERT KEY]");
}

// One SO_REUSEPORT listener per core, all bound before the cores start (port
// 0 picks a port once; the others join it).
int run_cores(coil::net::socket_address where, unsigned n) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 1;
  coil::cores_options opts;
  for (int c = 0; c < CPU_SETSIZE && opts.cpus.size() < n; ++c) {
    if (CPU_ISSET(c, &allowed)) opts.cpus.push_back(c);
  }
  if (opts.cpus.size() < n) {
    std::fprintf(stderr, "echo_server: only %zu CPUs available\n", opts.cpus.size());
    return 2;
  }
  opts.handle_signals = true;
  coil::net::listen_options lo;
  lo.reuse_port = true;
  std::vector<coil::net::tcp_listener> listeners;
  for (unsigned i = 0; i < n; ++i) {
    auto l = coil::net::tcp_listener::bind(where, lo);
    if (!l) {
      std::fprintf(stderr, "echo_server: bind: %s\n", l.error().message().c_str());
      return 1;
    }
    if (i == 0) {
      auto addr = l->local_address();
      if (addr) where = *addr;
      std::printf("echo_server: listening on %s with %u cores\n", addr ? addr->to_string().c_str() : "?", n);
      std::fflush(stdout);
    }
    listeners.push_back(std::move(*l));
  }
  auto r = coil::cores::run(opts, [&](unsigned core) { return core_main(listeners[core]); });
  if (!r && r.error() != std::errc::operation_canceled) {
    std::fprintf(stderr, "echo_server: %s\n", r.error().message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  long cores = 0;
  const char* cert = nullptr;
  const char* key = nullptr;
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--mode" && i + 1 < argc &&
        (std::string_view(argv[i + 1]) == "plain" || std::string_view(argv[i + 1]) == "multishot")) {
      multishot_mode = std::string_view(argv[++i]) == "multishot";
    } else if (a == "--cores" && i + 1 < argc) {
      const auto n = parse_count(argv[++i], 1, CPU_SETSIZE);
      if (!n) return usage();
      cores = static_cast<long>(*n);
    } else if (a == "--tls" && i + 2 < argc) {
      cert = argv[++i];
      key = argv[++i];
    } else {
      return usage();
    }
  }
  const auto parsed = listen_address(argv[1]);
  if (!parsed) {
    std::fprintf(stderr, "echo_server: bad address or port %s\n", argv[1]);
    return usage();
  }
  const coil::net::socket_address where = *parsed;
#if COIL_EXAMPLE_TLS
  std::optional<coil::tls::context> ctx;
  if (cert != nullptr) {
    if (multishot_mode) {
      std::fprintf(stderr, "echo_server: --tls needs --mode plain (TLS reads its own records)\n");
      return usage();
    }
    // Built once and shared by every connection and core; a key that does
    // not match the certificate, or an unreadable file, is refused here.
    auto c = coil::tls::context::server({.certificate_chain_file = cert, .private_key_file = key});
    if (!c) {
      std::fprintf(stderr, "echo_server: %s, %s: %s\n", cert, key, c.error().message().c_str());
      return 1;
    }
    ctx = std::move(*c);
    tls_context = &*ctx;
  }
#else
  if (cert != nullptr) {
    (void)key;
    std::fprintf(stderr, "echo_server: built without TLS (COIL_TLS=OFF)\n");
    return 1;
  }
#endif
  if (cores > 0) return run_cores(where, static_cast<unsigned>(cores));
  auto listener = coil::net::tcp_listener::bind(where);
  if (!listener) {
    std::fprintf(stderr, "echo_server: bind: %s\n", listener.error().message().c_str());
    return 1;
  }
  // Before the runtime (and its threads), and outliving it and the waiting task.
  auto usr1 = coil::signal_set::create({SIGUSR1});
  auto rt = coil::runtime::create();
  if (!rt) {
    std::fprintf(stderr, "echo_server: %s\n", rt.error().message().c_str());
    return 1;
  }
  if (usr1) (*rt)->spawn(dump_on_sigusr1(*usr1)).detach();
  auto addr = listener->local_address();
  std::printf("echo_server: listening on %s\n", addr ? addr->to_string().c_str() : "?");
  std::fflush(stdout);
  return (*rt)->block_on(run(*listener));
}
