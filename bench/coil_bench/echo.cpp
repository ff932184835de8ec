// echo: server CPU per round trip of a TCP echo, coil against raw liburing
// and raw epoll servers, with the same coil client in a second process.
#include "echo.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "coil/io/buffer_ring.hpp"
#include "coil/net/tcp.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/time.hpp"
#include "raw_ring.hpp"

namespace coil_bench {
namespace {

using coil::net::socket_address;
using coil::net::tcp_stream;

constexpr size_t buf_size = 16 << 10;

void set_nodelay(int fd) {
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Sends every byte without blocking in send; a full socket buffer (rare
// with small messages) waits in poll.
void send_fully(int fd, const char* p, size_t n) {
  size_t off = 0;
  while (off < n) {
    const ssize_t w = ::send(fd, p + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      off += static_cast<size_t>(w);
    } else if (w < 0 && errno == EAGAIN) {
      pollfd pf{fd, POLLOUT, 0};
      (void)::poll(&pf, 1, -1);
    } else {
      return;
    }
  }
}

struct cpu_times {
  double user = 0;
  double system = 0;
};

cpu_times process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return {secs(u.ru_utime), secs(u.ru_stime)};
}

// ---- client (the child process) ---------------------------------------------------

struct client_state {
  bool stop = false;
  uint64_t trips = 0;
  uint64_t errors = 0;
};

coil::task<void> client_loop(tcp_stream& s, uint64_t msg, client_state& st) {
  std::vector<std::byte> out(msg, std::byte{'e'}), in(msg);
  while (!st.stop) {
    auto w = co_await s.send_all(out);
    if (!w) {
      ++st.errors;
      co_return;
    }
    auto r = co_await s.recv_exact(in);
    if (!r) {
      ++st.errors;
      co_return;
    }
    ++st.trips;
  }
}

coil::task<void> client_main(const echo_config& cfg, const socket_address& addr, client_state& st, double& secs) {
  coil::runtime& rt = *coil::runtime::current();
  std::vector<tcp_stream> streams;
  for (uint64_t i = 0; i < cfg.conns; ++i) {
    auto s = co_await tcp_stream::connect(addr);
    if (!s) {
      ++st.errors;
      co_return;
    }
    (void)s->set_nodelay(true);
    streams.push_back(std::move(*s));
  }
  std::vector<coil::join_handle<void>> loops;
  const int64_t t0 = now_ns();
  for (auto& s : streams) loops.push_back(rt.spawn(client_loop(s, cfg.msg, st)));
  auto z = co_await coil::sleep_for(std::chrono::duration<double>(cfg.seconds));
  (void)z;
  st.stop = true;
  for (auto& l : loops) co_await l;
  secs = seconds_since(t0);
  // Closing tells the server we are done: it exits after the last EOF.
}

struct client_report {
  uint64_t trips;
  uint64_t errors;
  double seconds;
};

[[noreturn]] void run_client(const echo_config& cfg, const socket_address& addr, int report_fd) {
  if (cfg.client_cpu >= 0) (void)pin_to_cpu(cfg.client_cpu);
  client_report rep{0, 1, 0};
  if (auto rt = coil::runtime::create()) {
    client_state st;
    (*rt)->block_on(client_main(cfg, addr, st, rep.seconds));
    rep = {st.trips, st.errors, rep.seconds};
  }
  const bool ok = ::write(report_fd, &rep, sizeof(rep)) == static_cast<ssize_t>(sizeof(rep));
  ::_exit(ok ? 0 : 1);
}

// ---- servers (the parent process): each returns after conns connections closed ----

coil::task<void> coil_serve(tcp_stream s, uint64_t& closed) {
  (void)s.set_nodelay(true);
  std::vector<std::byte> buf(buf_size);
  for (;;) {
    auto n = co_await s.recv(buf);
    if (!n || *n == 0) break;
    auto w = co_await s.send_all(std::span(buf).first(*n));
    if (!w) break;
  }
  ++closed;
}

coil::task<void> coil_server(coil::net::tcp_listener& l, uint64_t conns) {
  uint64_t closed = 0;
  std::vector<coil::join_handle<void>> handlers;
  for (uint64_t i = 0; i < conns; ++i) {
    auto s = co_await l.accept();
    if (!s) break;
    handlers.push_back(coil::runtime::current()->spawn(coil_serve(std::move(*s), closed)));
  }
  for (auto& h : handlers) co_await h;
}

// Multishot: one accept for every connection, and each connection's data
// arriving in buffers of one shared ring (none held while idle).
coil::task<void> coil_serve_multishot(tcp_stream s, coil::buffer_ring& ring, uint64_t& closed) {
  (void)s.set_nodelay(true);
  auto rx = s.recv_multishot(ring);
  for (;;) {
    auto b = co_await rx.next();
    if (!b || b->empty()) break;
    auto w = co_await s.send_all(b->bytes());
    if (!w) break;
  }
  ++closed;
}

coil::task<std::string> coil_server_multishot(coil::net::tcp_listener& l, uint64_t conns) {
  auto ring = coil::buffer_ring::create(coil::runtime::current()->driver(), 256, buf_size);
  if (!ring) co_return "buffer ring: " + ring.error().message();
  uint64_t closed = 0;
  std::vector<coil::join_handle<void>> handlers;
  auto incoming = l.incoming();
  for (uint64_t i = 0; i < conns; ++i) {
    auto s = co_await incoming.next();
    if (!s) break;
    handlers.push_back(coil::runtime::current()->spawn(coil_serve_multishot(std::move(*s), **ring, closed)));
  }
  for (auto& h : handlers) co_await h;
  co_return std::string();
}

std::string serve_coil(coil::unique_fd listen_fd, uint64_t conns, bool multishot,
                       std::optional<coil::runtime_stats>& stats) {
  auto l = coil::net::tcp_listener::from_fd(std::move(listen_fd));
  if (!l) return "listener: " + l.error().message();
  auto rt = coil::runtime::create();
  if (!rt) return "runtime: " + rt.error().message();
  std::string failure;
  if (multishot) {
    failure = (*rt)->block_on(coil_server_multishot(*l, conns));
  } else {
    (*rt)->block_on(coil_server(*l, conns));
  }
  stats = (*rt)->stats();
  return failure;
}

// Raw liburing: one operation in flight per connection (recv, then send of
// what arrived, then recv again), one submit-and-wait per loop, completions
// reaped in a batch. user_data = connection index << 2 | kind.
enum : uint64_t { k_accept = 0, k_recv = 1, k_send = 2 };

struct raw_conn {
  int fd = -1;
  uint32_t len = 0;
  uint32_t sent = 0;
  std::vector<char> buf;
};

// The raw servers' shared steps: an SQE (submitting when the SQ is full), a
// single-shot accept.
io_uring_sqe* raw_sqe(io_uring& ring) {
  io_uring_sqe* s = io_uring_get_sqe(&ring);
  while (s == nullptr) {
    io_uring_submit(&ring);
    s = io_uring_get_sqe(&ring);
  }
  return s;
}

void raw_accept(io_uring& ring, int listen_fd) {
  io_uring_sqe* s = raw_sqe(ring);
  io_uring_prep_accept(s, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, k_accept);
}

// Submits and waits, then hands each completion to on_cqe(kind, connection,
// cqe) until conns connections have closed. Returns an error text or "".
template <class F>
std::string raw_loop(io_uring& ring, const uint64_t& closed, uint64_t conns, F&& on_cqe) {
  while (closed < conns) {
    if (int r = io_uring_submit_and_wait(&ring, 1); r < 0 && r != -EINTR) {
      return std::string("submit: ") + std::strerror(-r);
    }
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      const uint64_t d = io_uring_cqe_get_data64(cqe);
      on_cqe(d & 3, d >> 2, *cqe);
    }
    io_uring_cq_advance(&ring, seen);
  }
  return {};
}

std::string serve_uring(int listen_fd, uint64_t conns) {
  io_uring ring;
  if (int r = setup_raw_ring(ring, 256); r < 0) return std::string("io_uring: ") + std::strerror(-r);
  std::vector<raw_conn> cs(conns);
  auto sqe = [&]() { return raw_sqe(ring); };
  auto recv = [&](uint64_t i) {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, cs[i].fd, cs[i].buf.data(), buf_size, 0);
    io_uring_sqe_set_data64(s, i << 2 | k_recv);
  };
  auto send = [&](uint64_t i) {
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, cs[i].fd, cs[i].buf.data() + cs[i].sent, cs[i].len - cs[i].sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, i << 2 | k_send);
  };
  auto accept = [&]() { raw_accept(ring, listen_fd); };
  uint64_t accepted = 0, closed = 0;
  auto drop = [&](uint64_t i) {
    ::close(cs[i].fd);
    ++closed;
  };
  accept();
  std::string failure = raw_loop(ring, closed, conns, [&](uint64_t kind, uint64_t i, const io_uring_cqe& cqe) {
    const int res = cqe.res;
    switch (kind) {
      case k_accept:
        if (res >= 0) {
          set_nodelay(res);
          cs[accepted].fd = res;
          cs[accepted].buf.resize(buf_size);
          recv(accepted++);
        }
        if (accepted < conns) accept();
        break;
      case k_recv:
        if (res <= 0) {
          drop(i);
        } else {
          cs[i].len = static_cast<uint32_t>(res);
          cs[i].sent = 0;
          send(i);
        }
        break;
      case k_send:
        if (res < 0) {
          drop(i);
          break;
        }
        cs[i].sent += static_cast<uint32_t>(res);
        if (cs[i].sent < cs[i].len) {
          send(i);
        } else {
          recv(i);
        }
        break;
    }
  });
  io_uring_queue_exit(&ring);
  return failure;
}

// Raw liburing in the design of coil's multishot server, written by hand (the
// floor for an io_uring server): multishot recv into a provided-buffer ring,
// the echo sent at once with send(MSG_DONTWAIT) (a short send waits in poll,
// as in the epoll server), the buffer handed back, one submit-and-wait per
// loop. Accepts are single-shot; they happen once per connection.
std::string serve_uring_multishot(int listen_fd, uint64_t conns) {
  constexpr unsigned n_bufs = 256;  // as coil's server
  io_uring ring;
  if (int r = setup_raw_ring(ring, 256); r < 0) return std::string("io_uring: ") + std::strerror(-r);
  // liburing 2.3 (Debian 12) has no io_uring_setup_buf_ring: map and register.
  const size_t ring_bytes = n_bufs * sizeof(io_uring_buf);
  void* mem = ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    io_uring_queue_exit(&ring);
    return std::string("mmap: ") + std::strerror(errno);
  }
  auto* br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(mem);
  reg.ring_entries = n_bufs;
  reg.bgid = 0;
  if (int r = io_uring_register_buf_ring(&ring, &reg, 0); r < 0) {
    ::munmap(mem, ring_bytes);
    io_uring_queue_exit(&ring);
    return std::string("buffer ring: ") + std::strerror(-r);
  }
  std::vector<char> bufs(n_bufs * buf_size);
  const int mask = io_uring_buf_ring_mask(n_bufs);
  for (unsigned b = 0; b < n_bufs; ++b) {
    io_uring_buf_ring_add(br, bufs.data() + b * buf_size, buf_size, static_cast<unsigned short>(b), mask,
                          static_cast<int>(b));
  }
  io_uring_buf_ring_advance(br, n_bufs);
  std::vector<int> fds(conns, -1);
  auto sqe = [&]() { return raw_sqe(ring); };
  auto arm = [&](uint64_t i) {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv_multishot(s, fds[i], nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = 0;
    io_uring_sqe_set_data64(s, i << 2 | k_recv);
  };
  auto accept = [&]() { raw_accept(ring, listen_fd); };
  uint64_t accepted = 0, closed = 0;
  accept();
  std::string failure = raw_loop(ring, closed, conns, [&](uint64_t kind, uint64_t i, const io_uring_cqe& cqe) {
    const int res = cqe.res;
    const bool more = cqe.flags & IORING_CQE_F_MORE;
    if (kind == k_accept) {
      if (res >= 0) {
        set_nodelay(res);
        fds[accepted] = res;
        arm(accepted++);
      }
      if (accepted < conns) accept();
    } else if (res > 0) {
      const auto bid = static_cast<unsigned short>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
      const char* p = bufs.data() + bid * buf_size;
      send_fully(fds[i], p, static_cast<size_t>(res));
      io_uring_buf_ring_add(br, bufs.data() + bid * buf_size, buf_size, bid, mask, 0);
      io_uring_buf_ring_advance(br, 1);
      if (!more) arm(i);
    } else if (res == -ENOBUFS) {
      if (!more) arm(i);
    } else if (!more) {
      ::close(fds[i]);  // EOF or error: the final CQE
      ++closed;
    }
  });
  (void)io_uring_unregister_buf_ring(&ring, 0);
  io_uring_queue_exit(&ring);
  ::munmap(mem, ring_bytes);
  return failure;
}

// Raw epoll: level-triggered, non-blocking sockets, recv then send in the
// readiness callback.
std::string serve_epoll(int listen_fd, uint64_t conns) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return std::string("epoll_create1: ") + std::strerror(errno);
  const int fl = ::fcntl(listen_fd, F_GETFL);
  (void)::fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
  std::vector<char> buf(buf_size);
  std::vector<epoll_event> events(256);
  uint64_t closed = 0;
  auto drop = [&](int fd) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    ++closed;
  };
  while (closed < conns) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno != EINTR) break;
    for (int k = 0; k < n; ++k) {
      const int fd = events[static_cast<size_t>(k)].data.fd;
      if (fd == listen_fd) {
        for (;;) {
          const int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          set_nodelay(c);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(fd);
        continue;
      }
      if (r < 0) continue;
      send_fully(fd, buf.data(), static_cast<size_t>(r));
    }
  }
  ::close(ep);
  return {};
}

// Peers (the same server written with another library) are separate
// programs beside this one, each built from bench/peers/: the listener is
// passed by number, the CPU time comes from wait4 (startup included, as
// coil's servers count creating their runtime).
std::string serve_peer(const std::string& impl, int listen_fd, uint64_t conns, cpu_times& used) {
  std::string path = peer_path(impl);
  if (path.empty()) {
    return missing_peer(impl);
  }
  std::string fd_arg = std::to_string(listen_fd), conns_arg = std::to_string(conns);
  char mode[] = "echo";
  char* argv[] = {path.data(), mode, fd_arg.data(), conns_arg.data(), nullptr};
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    (void)::fcntl(listen_fd, F_SETFD, 0);  // the one descriptor the peer inherits
    ::execv(argv[0], argv);
    ::_exit(127);
  }
  int status = 0;
  rusage u{};
  if (::wait4(pid, &status, 0, &u) < 0) return std::string("wait4: ") + std::strerror(errno);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  used = {secs(u.ru_utime), secs(u.ru_stime)};
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return path + " failed (wait status " + std::to_string(status) + ")";
  }
  return {};
}

}  // namespace

bool is_echo_peer(const std::string& impl) { return impl == "asio" || impl == "asio-uring" || impl == "libuv"; }

echo_result run_echo(const echo_config& cfg) {
  echo_result out;
  // A plain blocking listener made before the fork; each server adapts it.
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
  int report[2];
  if (::pipe2(report, O_CLOEXEC) < 0) {
    out.failure = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) {
    out.failure = std::string("fork: ") + std::strerror(errno);
    return out;
  }
  if (child == 0) {
    lfd.reset();
    ::close(report[0]);
    run_client(cfg, addr, report[1]);
  }
  ::close(report[1]);
  if (cfg.server_cpu >= 0) (void)pin_to_cpu(cfg.server_cpu);
  const kernel_counters counters = kernel_counters::start();
  cpu_times cpu0 = process_cpu_seconds();
  cpu_times cpu1{};
  if (is_echo_peer(cfg.impl)) {
    cpu0 = {};
    out.failure = serve_peer(cfg.impl, lfd.get(), cfg.conns, cpu1);
  } else if (cfg.impl == "uring") {
    out.failure = serve_uring(lfd.get(), cfg.conns);
  } else if (cfg.impl == "uring-multishot") {
    out.failure = serve_uring_multishot(lfd.get(), cfg.conns);
  } else if (cfg.impl == "epoll") {
    out.failure = serve_epoll(lfd.get(), cfg.conns);
  } else {
    out.failure = serve_coil(std::move(lfd), cfg.conns, cfg.impl == "coil-multishot", out.stats);
  }
  if (!is_echo_peer(cfg.impl)) cpu1 = process_cpu_seconds();
  if (counters.valid()) out.kernel = counters.read();
  out.server_user_seconds = cpu1.user - cpu0.user;
  out.server_cpu_seconds = out.server_user_seconds + (cpu1.system - cpu0.system);
  if (!out.failure.empty()) ::kill(child, SIGKILL);  // it may wait for a server that is gone
  client_report rep{};
  if (::read(report[0], &rep, sizeof(rep)) != static_cast<ssize_t>(sizeof(rep)) && out.failure.empty()) {
    out.failure = "the client died";
  }
  ::close(report[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  out.trips = rep.trips;
  out.errors = rep.errors;
  out.seconds = rep.seconds;
  return out;
}

std::vector<double> echo_rounds_result::ratios(size_t a, size_t b) const {
  std::vector<double> out;
  for (size_t r = 0; r < us[a].size() && r < us[b].size(); ++r) {
    if (us[b][r] > 0) out.push_back(us[a][r] / us[b][r]);
  }
  return out;
}

echo_rounds_result run_echo_rounds(const std::vector<std::string>& impls, const echo_config& base, uint64_t rounds,
                                   const std::string& progress_label) {
  const size_t n = impls.size();
  echo_rounds_result out;
  out.us.resize(n);
  out.user_us.resize(n);
  out.pooled.resize(n);
  for (uint64_t round = 0; round < rounds; ++round) {
    for (size_t step = 0; step < n; ++step) {
      const size_t k = (step + round) % n;
      echo_config cfg = base;
      cfg.impl = impls[k];
      echo_result r;
      if (progress_label.empty()) {
        r = run_echo(cfg);
      } else {
        progress prog(progress_label + " " + cfg.impl + " round " + std::to_string(round + 1), cfg.seconds);
        r = run_echo(cfg);
      }
      if (!r.failure.empty() || r.errors != 0 || r.trips == 0) {
        out.failure = cfg.impl + ": " + (r.failure.empty() ? "errors " + std::to_string(r.errors) : r.failure);
        return out;
      }
      out.us[k].push_back(r.server_cpu_us_per_trip());
      out.user_us[k].push_back(r.server_user_us_per_trip());
      echo_result& sum = out.pooled[k];
      sum.trips += r.trips;
      sum.seconds += r.seconds;
      sum.server_cpu_seconds += r.server_cpu_seconds;
      sum.server_user_seconds += r.server_user_seconds;
      if (r.kernel && (round == 0 || sum.kernel)) {
        if (!sum.kernel) sum.kernel.emplace();
        sum.kernel->syscalls += r.kernel->syscalls;
        sum.kernel->switches += r.kernel->switches;
      } else {
        sum.kernel.reset();  // counted in some rounds only: no total
      }
    }
  }
  return out;
}

}  // namespace coil_bench
