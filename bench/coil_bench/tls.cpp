// tls: a TLS echo server in coil (coil::tls over tcp_stream) against the same
// server on Boost.Asio's ssl::stream (coil-peer-asio-tls), each in its own
// process pinned to one CPU, driven by coil's TLS client in this process on
// another CPU. Server CPU time comes from wait4 once the server is killed.
//
//   --mode handshake: --conns N clients, each looping connect + full
//     handshake + one 32-byte echo + close_notify + close; handshakes/s and
//     server CPU per handshake.
//   --mode bulk: --conns C connections, each echoing --msg-byte blocks (64K)
//     back and forth; MB/s one way and server CPU seconds per GB.
//
// Both servers load the same ECDSA P-256 certificate (made with the openssl
// CLI in a temp dir), keep no sessions and issue no tickets; the client
// offers only X25519 and keeps no sessions, so every handshake is full and
// both servers run the same suite (printed).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <openssl/ssl.h>

#include "coil/net/tcp.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/time.hpp"
#include "coil/rt/when.hpp"
#include "coil/tls/stream.hpp"
#include "benches.hpp"
#include "common.hpp"

namespace coil_bench {
namespace {

using namespace std::chrono_literals;
using coil::net::socket_address;
using coil::net::tcp_stream;
namespace tls = coil::tls;

struct tls_config {
  bool handshake = true;
  uint64_t conns = 0;  // 0: 16 (handshake) or 4 (bulk)
  uint64_t msg = 64 << 10;
  double seconds = 3;
  uint64_t rounds = 3;
  int server_cpu = 0;
  int client_cpu = 1;
  bool callgrind = false;  // count each server's instructions per handshake or byte
};

// ---- the coil server (a forked child, killed when the run ends) --------------

coil::task<void> serve(tcp_stream c, const tls::context& ctx) {
  (void)c.set_nodelay(true);
  auto s = co_await coil::with_timeout(tls::accept(ctx, std::move(c)), 10s);
  if (!s) co_return;
  std::vector<std::byte> buf(16 << 10);
  for (;;) {
    auto n = co_await s->read_some(buf);
    if (!n || *n == 0) break;
    auto w = co_await s->write_all(std::span(buf).first(*n));
    if (!w) break;
  }
  (void)co_await s->shutdown();
}

coil::task<void> accept_loop(coil::net::tcp_listener& l, const tls::context& ctx) {
  for (;;) {
    auto c = co_await l.accept();
    if (!c) co_return;
    coil::runtime::current()->spawn(serve(std::move(*c), ctx)).detach();
  }
}

// SIGTERM ends a server with exit(0) from a handler rather than the default
// action, so a server run under valgrind still writes its profile.
void exit_on_term(int) { ::_exit(0); }

[[noreturn]] void run_coil_server(int listen_fd, const std::string& dir) {
  ::signal(SIGTERM, exit_on_term);
  auto ctx = tls::context::server({.certificate_chain_file = dir + "/cert.pem",
                                   .private_key_file = dir + "/key.pem",
                                   .resumption = false});
  auto rt = coil::runtime::create();
  auto l = coil::net::tcp_listener::from_fd(coil::unique_fd(listen_fd));
  if (!ctx || !rt || !l) ::_exit(3);
  (*rt)->block_on(accept_loop(*l, *ctx));
  ::_exit(4);
}

// ---- the client (this process) -------------------------------------------------

struct client_state {
  bool stop = false;
  uint64_t done = 0;    // handshakes, or bytes echoed back
  uint64_t errors = 0;
  std::string first_error;
  std::string suite;  // version and cipher of the first connection
};

void note_error(client_state& st, const std::error_code& e, const char* what) {
  if (st.errors++ == 0) st.first_error = std::string(what) + ": " + e.message();
}

// Connects and runs a full handshake, bounded: a server that stops answering
// fails the run instead of hanging it.
coil::task<coil::result<tls::stream<tcp_stream>>> connect_tls(const tls::context& ctx, socket_address addr,
                                                              client_state& st) {
  auto c = co_await tcp_stream::connect(addr);
  if (!c) co_return coil::fail(c.error());
  (void)c->set_nodelay(true);
  auto s = tls::stream<tcp_stream>::client(ctx, std::move(*c), {.server_name = "localhost"});
  if (!s) co_return coil::fail(s.error());
  if (auto h = co_await coil::with_timeout(s->handshake(), 10s); !h) co_return coil::fail(h.error());
  if (st.suite.empty()) {
    st.suite = std::string(s->protocol_version()) + " " + std::string(s->cipher());
    if (s->session_reused()) st.suite += " (resumed!)";
  }
  co_return std::move(*s);
}

coil::task<void> handshake_loop(const tls::context& ctx, socket_address addr, client_state& st) {
  std::array<std::byte, 32> out{}, in{};
  while (!st.stop) {
    auto s = co_await connect_tls(ctx, addr, st);
    if (!s) {
      note_error(st, s.error(), "handshake");
      co_return;
    }
    auto w = co_await s->write_all(out);
    size_t have = 0;
    while (w && have < in.size()) {
      auto n = co_await s->read_some(std::span(in).subspan(have));
      if (!n || *n == 0) {
        note_error(st, n ? std::make_error_code(std::errc::connection_reset) : n.error(), "echo");
        co_return;
      }
      have += *n;
    }
    if (!w) {
      note_error(st, w.error(), "write");
      co_return;
    }
    (void)co_await s->shutdown();
    (void)co_await s->next_layer().close();
    ++st.done;
  }
}

coil::task<void> bulk_loop(const tls::context& ctx, socket_address addr, uint64_t msg, client_state& st) {
  auto s = co_await connect_tls(ctx, addr, st);
  if (!s) {
    note_error(st, s.error(), "handshake");
    co_return;
  }
  std::vector<std::byte> out(msg, std::byte{'b'}), in(msg);
  while (!st.stop) {
    // Fits the socket buffers both ways, so send-all-then-read cannot stall.
    auto w = co_await s->write_all(out);
    if (!w) {
      note_error(st, w.error(), "write");
      co_return;
    }
    size_t have = 0;
    while (have < in.size()) {
      auto n = co_await s->read_some(std::span(in).subspan(have));
      if (!n || *n == 0) {
        note_error(st, n ? std::make_error_code(std::errc::connection_reset) : n.error(), "read");
        co_return;
      }
      have += *n;
    }
    st.done += msg;
  }
  (void)co_await s->shutdown();
}

coil::task<double> client_main(const tls_config& cfg, const tls::context& ctx, socket_address addr,
                               client_state& st) {
  coil::runtime& rt = *coil::runtime::current();
  std::vector<coil::join_handle<void>> loops;
  const int64_t t0 = now_ns();
  for (uint64_t i = 0; i < cfg.conns; ++i) {
    loops.push_back(rt.spawn(cfg.handshake ? handshake_loop(ctx, addr, st) : bulk_loop(ctx, addr, cfg.msg, st)));
  }
  auto z = co_await coil::sleep_for(std::chrono::duration<double>(cfg.seconds));
  (void)z;
  st.stop = true;
  for (auto& l : loops) co_await l;
  co_return seconds_since(t0);
}

struct run_result {
  uint64_t done = 0;
  double seconds = 0;
  double server_cpu = 0;
  std::string suite;
  std::string failure;
};

// Runs one server (impl "coil" or "asio") against the client for
// cfg.seconds. A non-empty profile runs the server under callgrind, writing
// its counts to that file.
run_result run_once(const tls_config& cfg, const std::string& impl, const std::string& dir,
                    const tls::context& client_ctx, const std::string& profile = {}) {
  run_result out;
  coil::unique_fd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  (void)::setsockopt(lfd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  auto any = socket_address::ipv4_loopback(0);
  if (!lfd || ::bind(lfd.get(), any.native(), any.size()) < 0 || ::listen(lfd.get(), 4096) < 0) {
    out.failure = std::string("listen: ") + std::strerror(errno);
    return out;
  }
  socket_address addr;
  *addr.size_ptr() = socket_address::capacity();
  ::getsockname(lfd.get(), addr.native(), addr.size_ptr());
  const std::string peer = impl == "asio" ? peer_path("asio-tls") : self_path();
  if (peer.empty()) {
    out.failure = impl == "asio" ? missing_peer("asio-tls") : "cannot find coil-bench itself";
    return out;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    out.failure = std::string("fork: ") + std::strerror(errno);
    return out;
  }
  if (pid == 0) {
    if (cfg.server_cpu >= 0) (void)pin_to_cpu(cfg.server_cpu);
    if (impl == "coil" && profile.empty()) run_coil_server(lfd.release(), dir);
    (void)::fcntl(lfd.get(), F_SETFD, 0);  // the one descriptor the server inherits
    std::vector<std::string> args;
    if (!profile.empty()) {
      args = {"/usr/bin/valgrind", "--tool=callgrind", "--quiet", "--callgrind-out-file=" + profile};
    }
    args.push_back(peer);
    if (impl == "coil") {
      args.insert(args.end(), {"tls", "--coil-server", std::to_string(lfd.get()), dir});
    } else {
      args.insert(args.end(), {"tls", std::to_string(lfd.get()), dir + "/cert.pem", dir + "/key.pem"});
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  lfd.reset();  // the server's now
  client_state st;
  {
    auto rt = coil::runtime::create();
    if (!rt) {
      out.failure = "runtime: " + rt.error().message();
    } else {
      out.seconds = (*rt)->block_on(client_main(cfg, client_ctx, addr, st));
    }
  }
  ::kill(pid, SIGTERM);
  if (!profile.empty()) {
    // valgrind holds signals while a process waits in io_uring_enter: a
    // connection ends the idle coil server's wait, and the SIGTERM lands.
    coil::unique_fd poke(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (poke) (void)::connect(poke.get(), addr.native(), addr.size());
  }
  int status = 0;
  rusage u{};
  (void)::wait4(pid, &status, 0, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  out.server_cpu = secs(u.ru_utime) + secs(u.ru_stime);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    out.failure = impl + " server exited early (wait status " + std::to_string(status) + ")";
  } else if (st.errors != 0) {
    out.failure = std::to_string(st.errors) + " client errors, the first " + st.first_error;
  } else if (st.done == 0) {
    out.failure = "nothing done";
  }
  out.done = st.done;
  out.suite = st.suite;
  return out;
}

bool make_certificates(const std::string& dir) {
  const std::string d = dir + "/";
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
  const std::string quiet = " 2>/dev/null";
  std::FILE* f = std::fopen((d + "ext").c_str(), "w");
  if (f == nullptr) return false;
  std::fputs("subjectAltName=DNS:localhost,IP:127.0.0.1\n", f);
  std::fclose(f);
  auto sh = [](const std::string& c) { return std::system(c.c_str()) == 0; };
  return sh("openssl req -x509" + ec + "-keyout " + d + "ca.key -out " + d + "ca.pem -days 2 -subj /CN=bench-ca" +
            quiet) &&
         sh("openssl req" + ec + "-keyout " + d + "key.pem -out " + d + "cert.csr -subj /CN=localhost" + quiet) &&
         sh("openssl x509 -req -in " + d + "cert.csr -CA " + d + "ca.pem -CAkey " + d +
            "ca.key -CAcreateserial -out " + d + "cert.pem -days 1 -extfile " + d + "ext" + quiet);
}

bool parse(int argc, char** argv, tls_config& cfg) {
  bool mode_given = false;
  for (int i = 2; i < argc; ++i) {
    const std::string name = argv[i];
    if (name == "--callgrind") {
      cfg.callgrind = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    uint64_t n = 0;
    bool ok = true;
    if (name == "--mode") {
      ok = std::strcmp(v, "handshake") == 0 || std::strcmp(v, "bulk") == 0;
      cfg.handshake = std::strcmp(v, "handshake") == 0;
      mode_given = true;
    } else if (name == "--conns") {
      ok = parse_u64(v, cfg.conns, 1, 10'000);
    } else if (name == "--msg") {
      ok = parse_u64(v, cfg.msg, 1, 128 << 10);
    } else if (name == "--seconds") {
      ok = parse_seconds(v, cfg.seconds, 3600);
    } else if (name == "--rounds") {
      ok = parse_u64(v, cfg.rounds, 1, 1000);
    } else if (name == "--server-cpu" || name == "--client-cpu") {
      ok = parse_u64(v, n, 0, CPU_SETSIZE - 1);
      (name == "--server-cpu" ? cfg.server_cpu : cfg.client_cpu) = static_cast<int>(n);
    } else {
      ok = false;
    }
    if (!ok) return false;
  }
  if (cfg.conns == 0) cfg.conns = cfg.handshake ? 16 : 4;
  return mode_given;
}

// The instruction count callgrind wrote for a whole process, or 0.
uint64_t callgrind_total(const std::string& file) {
  std::FILE* f = std::fopen(file.c_str(), "r");
  if (f == nullptr) return 0;
  char line[256];
  uint64_t total = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "totals:", 7) == 0 || std::strncmp(line, "summary:", 8) == 0) {
      total = std::strtoull(std::strchr(line, ':') + 1, nullptr, 10);
    }
  }
  std::fclose(f);
  return total;
}

// Each server under callgrind for cfg.seconds and then three times as long:
// the difference in instructions over the difference in work is the cost of
// one handshake (or byte), without start-up and exit.
int callgrind_rounds(const tls_config& cfg, const std::vector<std::string>& impls, const std::string& dir,
                     const tls::context& client_ctx) {
  double per_unit[2] = {0, 0};
  for (size_t k = 0; k < 2; ++k) {
    uint64_t done[2] = {0, 0}, instr[2] = {0, 0};
    for (size_t run = 0; run < 2; ++run) {
      tls_config c = cfg;
      c.seconds = run == 0 ? cfg.seconds : 3 * cfg.seconds;
      const std::string profile = dir + "/callgrind." + impls[k] + "." + std::to_string(run);
      const run_result r = run_once(c, impls[k], dir, client_ctx, profile);
      if (!r.failure.empty()) {
        std::fprintf(stderr, "coil-bench: tls %s under callgrind: %s\n", impls[k].c_str(), r.failure.c_str());
        return 1;
      }
      done[run] = r.done;
      instr[run] = callgrind_total(profile);
    }
    if (instr[0] == 0 || instr[1] <= instr[0] || done[1] <= done[0]) {
      std::fprintf(stderr, "coil-bench: tls %s: no usable callgrind counts (is valgrind installed?)\n",
                   impls[k].c_str());
      return 1;
    }
    per_unit[k] = static_cast<double>(instr[1] - instr[0]) / static_cast<double>(done[1] - done[0]);
    std::printf("  %-5s %.*f instructions per %s (%llu and %llu %s, %llu and %llu instructions)\n",
                impls[k].c_str(), cfg.handshake ? 0 : 2, per_unit[k], cfg.handshake ? "handshake" : "byte",
                static_cast<unsigned long long>(done[0]), static_cast<unsigned long long>(done[1]),
                cfg.handshake ? "handshakes" : "bytes", static_cast<unsigned long long>(instr[0]),
                static_cast<unsigned long long>(instr[1]));
  }
  std::printf("  coil/asio server instructions per %s: %.3f\n", cfg.handshake ? "handshake" : "byte",
              per_unit[0] / per_unit[1]);
  json_object j;
  j.add("bench", "tls-callgrind").add("mode", cfg.handshake ? "handshake" : "bulk");
  j.add("coil_instructions", per_unit[0]).add("asio_instructions", per_unit[1]);
  j.add("coil_vs_asio_instructions", per_unit[0] / per_unit[1]);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace

int cmd_tls(int argc, char** argv) {
  // The coil server as a program of its own, for --callgrind (valgrind
  // follows an exec, not a fork): coil-bench tls --coil-server FD DIR.
  uint64_t server_fd = 0;
  if (argc == 5 && std::strcmp(argv[2], "--coil-server") == 0 && parse_u64(argv[3], server_fd, 0, INT_MAX)) {
    run_coil_server(static_cast<int>(server_fd), argv[4]);
  }
  tls_config cfg;
  if (!parse(argc, argv, cfg)) {
    std::fprintf(stderr,
                 "usage: coil-bench tls --mode handshake|bulk [--conns N (16|4)] [--msg BYTES (64K, bulk)]\n"
                 "       [--seconds S (3)] [--rounds N (3)] [--server-cpu N (0)] [--client-cpu N (1)]\n"
                 "       [--callgrind]\n");
    return 2;
  }
  char tmpl[] = "/tmp/coil-bench-tls-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "coil-bench: tls: mkdtemp: %s\n", std::strerror(errno));
    return 1;
  }
  const std::string dir = tmpl;
  struct cleanup {
    std::string dir;
    ~cleanup() { (void)std::system(("rm -rf " + dir).c_str()); }
  } gone{dir};
  if (!make_certificates(dir)) {
    std::fprintf(stderr, "coil-bench: tls: the openssl command could not make a certificate\n");
    return 1;
  }
  // The load generator: no verification (it would only add client work), no
  // sessions kept, X25519 only.
  auto client_ctx = tls::context::client({.verify_peer = false, .resumption = false});
  if (!client_ctx || SSL_CTX_set1_groups_list(client_ctx->native(), "X25519") != 1) {
    std::fprintf(stderr, "coil-bench: tls: client context failed\n");
    return 1;
  }
  if (cfg.client_cpu >= 0) (void)pin_to_cpu(cfg.client_cpu);
  const std::vector<std::string> impls = {"coil", "asio"};
  if (cfg.callgrind) return callgrind_rounds(cfg, impls, dir, *client_ctx);
  std::vector<std::vector<double>> rate(2), cpu(2);  // per second; server CPU us per handshake or s per GB
  std::vector<double> ratio;                         // coil/asio work per server CPU second, per round
  std::string suites[2];
  uint64_t total[2] = {0, 0};  // handshakes or bytes, every round
  for (uint64_t round = 0; round < cfg.rounds; ++round) {
    double per_cpu[2] = {0, 0};
    for (size_t step = 0; step < 2; ++step) {
      const size_t k = (step + round) % 2;
      const run_result r = run_once(cfg, impls[k], dir, *client_ctx);
      if (!r.failure.empty()) {
        std::fprintf(stderr, "coil-bench: tls %s: %s\n", impls[k].c_str(), r.failure.c_str());
        return 1;
      }
      suites[k] = r.suite;
      total[k] += r.done;
      const double done = static_cast<double>(r.done);
      rate[k].push_back(done / r.seconds);
      cpu[k].push_back(cfg.handshake ? r.server_cpu * 1e6 / done : r.server_cpu * double(1 << 30) / done);
      per_cpu[k] = done / r.server_cpu;
    }
    ratio.push_back(per_cpu[0] / per_cpu[1]);
  }
  const char* mode = cfg.handshake ? "handshake" : "bulk";
  std::printf("tls %s, %llu conns%s, %llu rounds of %.1f s, suite: coil %s, asio %s, group X25519\n", mode,
              static_cast<unsigned long long>(cfg.conns),
              cfg.handshake ? "" : (", " + std::to_string(cfg.msg) + "-byte blocks").c_str(),
              static_cast<unsigned long long>(cfg.rounds), cfg.seconds, suites[0].c_str(), suites[1].c_str());
  for (size_t k = 0; k < 2; ++k) {
    if (cfg.handshake) {
      std::printf("  %-5s median %s handshakes/s, %.1f us of server CPU per handshake (%llu handshakes)\n",
                  impls[k].c_str(), human(median(rate[k])).c_str(), median(cpu[k]),
                  static_cast<unsigned long long>(total[k]));
    } else {
      std::printf("  %-5s median %.1f MB/s, %.3f server CPU seconds per GiB (%llu bytes)\n", impls[k].c_str(),
                  median(rate[k]) / 1e6, median(cpu[k]), static_cast<unsigned long long>(total[k]));
    }
  }
  std::printf("  coil/asio %s per server CPU second: median of paired rounds %.3f\n",
              cfg.handshake ? "handshakes" : "bytes", median(ratio));
  json_object j;
  j.add("bench", "tls").add("mode", mode).add("conns", cfg.conns).add("rounds", cfg.rounds);
  j.add("coil_per_s", median(rate[0])).add("asio_per_s", median(rate[1]));
  j.add(cfg.handshake ? "coil_cpu_us_per_handshake" : "coil_cpu_s_per_gib", median(cpu[0]));
  j.add(cfg.handshake ? "asio_cpu_us_per_handshake" : "asio_cpu_s_per_gib", median(cpu[1]));
  j.add("coil_vs_asio_per_cpu", median(ratio)).add("suite", suites[0]);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace coil_bench
