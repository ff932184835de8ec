#include "idle.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "coil/io/buffer_ring.hpp"
#include "coil/net/tcp.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/time.hpp"

namespace coil_bench {
namespace {

using coil::net::socket_address;
using coil::net::tcp_stream;

uint64_t rss_bytes() {
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

bool raise_fd_limit(uint64_t n) {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur >= n) return true;
  r.rlim_cur = n;
  if (r.rlim_max < n) r.rlim_max = n;
  return ::setrlimit(RLIMIT_NOFILE, &r) == 0;
}

// One destination takes about 28k connections from one source address (the
// ephemeral port range): every 20,000 connections come from the next
// loopback source, 127.0.0.2, .3, ..., the port picked at connect time.
bool bind_source(int fd, uint64_t i) {
  if (i < 20'000) return true;
  const int one = 1;
  if (::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0) return false;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(static_cast<uint32_t>(0x7f000001u + i / 20'000));
  return ::bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) == 0;
}

// The child: connect every client, report, hold them until told to go.
[[noreturn]] void run_clients(const socket_address& addr, uint64_t n, int report_fd, int go_fd) {
  std::vector<int> fds;
  fds.reserve(n);
  char ok = 1;
  for (uint64_t i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || !bind_source(fd, i) || ::connect(fd, addr.native(), addr.size()) != 0) {
      std::fprintf(stderr, "coil-bench idle: connection %llu: %s\n", static_cast<unsigned long long>(i),
                   std::strerror(errno));
      ok = 0;
      break;
    }
    fds.push_back(fd);
  }
  (void)!::write(report_fd, &ok, 1);
  char c;
  (void)!::read(go_fd, &c, 1);
  for (int fd : fds) ::close(fd);
  ::_exit(ok ? 0 : 1);
}

struct server_state {
  uint64_t waiting = 0;  // tasks parked in their first receive
  uint64_t done = 0;
};

coil::task<void> hold_multishot(tcp_stream s, coil::buffer_ring& ring, server_state& st) {
  auto rx = s.recv_multishot(ring);
  ++st.waiting;
  for (;;) {
    auto b = co_await rx.next();
    if (!b || b->empty()) break;
  }
  ++st.done;
}

coil::task<void> hold_plain(tcp_stream s, uint64_t buffer, server_state& st) {
  std::vector<std::byte> buf(buffer);
  ++st.waiting;
  for (;;) {
    auto n = co_await s.recv(buf);
    if (!n || *n == 0) break;
  }
  ++st.done;
}

coil::task<std::string> serve(coil::net::tcp_listener& l, const idle_config& cfg, idle_result& out, int go_fd) {
  using namespace std::chrono_literals;
  coil::buffer_ring::ptr ring;
  if (cfg.multishot) {
    auto r = coil::buffer_ring::create(coil::runtime::current()->driver(), 64, 4096);
    if (!r) co_return "buffer ring: " + r.error().message();
    ring = std::move(*r);
  }
  server_state st;
  out.rss_before = rss_bytes();
  auto incoming = l.incoming();
  for (uint64_t i = 0; i < cfg.conns; ++i) {
    auto s = co_await incoming.next();
    if (!s) co_return "accept: " + s.error().message();
    auto t = cfg.multishot ? hold_multishot(std::move(*s), *ring, st) : hold_plain(std::move(*s), cfg.plain_buffer, st);
    coil::runtime::current()->spawn(std::move(t)).detach();
  }
  while (st.waiting < cfg.conns) {
    auto z = co_await coil::sleep_for(1ms);
    (void)z;
  }
  auto settle = co_await coil::sleep_for(50ms);  // every receive submitted
  (void)settle;
  out.rss_after = rss_bytes();
  (void)!::write(go_fd, "x", 1);
  while (st.done < cfg.conns) {
    auto z = co_await coil::sleep_for(1ms);
    (void)z;
  }
  co_return std::string();
}

}  // namespace

idle_result run_idle(const idle_config& cfg) {
  idle_result out;
  out.conns = cfg.conns;
  out.rss_start = rss_bytes();
  if (!raise_fd_limit(cfg.conns + 256)) {
    out.failure = "cannot raise RLIMIT_NOFILE to " + std::to_string(cfg.conns + 256);
    out.fd_limit = true;
    return out;
  }
  auto l = coil::net::tcp_listener::bind(socket_address::ipv4_loopback(0), {.backlog = 4096});
  if (!l) {
    out.failure = "listen: " + l.error().message();
    return out;
  }
  auto addr = l->local_address();
  int report[2], go[2];
  if (!addr || ::pipe2(report, O_CLOEXEC) < 0 || ::pipe2(go, O_CLOEXEC) < 0) {
    out.failure = std::string("setup: ") + std::strerror(errno);
    return out;
  }
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) {
    out.failure = std::string("fork: ") + std::strerror(errno);
    return out;
  }
  if (child == 0) {
    (void)l->release();
    run_clients(*addr, cfg.conns, report[1], go[0]);
  }
  ::close(report[1]);
  ::close(go[0]);
  coil::runtime_options ro;
  ro.uring.entries = 4096;  // plain mode keeps one receive per connection in flight
  if (auto rt = coil::runtime::create(ro)) {
    out.failure = (*rt)->block_on(serve(*l, cfg, out, go[1]));
  } else {
    out.failure = "runtime: " + rt.error().message();
  }
  char ok = 0;
  if (::read(report[0], &ok, 1) != 1 || !ok) {
    if (out.failure.empty()) out.failure = "the clients could not connect";
  }
  ::close(go[1]);
  ::close(report[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  const auto per_conn = [&](uint64_t from) {
    return out.conns > 0 && out.rss_after >= from
               ? static_cast<double>(out.rss_after - from) / static_cast<double>(out.conns)
               : 0.0;
  };
  out.rss_bytes_per_conn = per_conn(out.rss_before);
  out.process_bytes_per_conn = per_conn(out.rss_start);
  return out;
}

idle_result run_idle_fresh(const idle_config& cfg) {
  idle_result out;
  out.conns = cfg.conns;
  if (!raise_fd_limit(cfg.conns + 256)) {  // inherited by the child
    out.failure = "cannot raise RLIMIT_NOFILE to " + std::to_string(cfg.conns + 256);
    out.fd_limit = true;
    return out;
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) < 0) {
    out.failure = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipe_fds[1], STDOUT_FILENO);
  const std::string conns = std::to_string(cfg.conns);
  char arg0[] = "coil-bench", arg1[] = "idle", arg2[] = "--conns", arg4[] = "--mode";
  char arg5_ms[] = "multishot", arg5_plain[] = "plain";
  std::string conns_arg = conns;
  char* argv[] = {arg0, arg1, arg2, conns_arg.data(), arg4, cfg.multishot ? arg5_ms : arg5_plain, nullptr};
  std::fflush(nullptr);
  pid_t pid = -1;
  const int r = ::posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipe_fds[1]);
  if (r != 0) {
    ::close(pipe_fds[0]);
    out.failure = std::string("spawn: ") + std::strerror(r);
    return out;
  }
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const auto number_after = [&](const char* key) -> double {
    const size_t at = text.find(key);
    return at == std::string::npos ? -1 : std::strtod(text.c_str() + at + std::strlen(key), nullptr);
  };
  out.rss_bytes_per_conn = number_after("\"rss_bytes_per_conn\":");
  out.process_bytes_per_conn = number_after("\"process_rss_bytes_per_conn\":");
  out.rss_before = static_cast<uint64_t>(number_after("\"rss_before\":"));
  out.rss_after = static_cast<uint64_t>(number_after("\"rss_after\":"));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || out.rss_bytes_per_conn < 0) {
    out.failure = "coil-bench idle failed (status " + std::to_string(status) + ")";
  }
  return out;
}

}  // namespace coil_bench
