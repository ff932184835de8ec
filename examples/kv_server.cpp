// kv_server [HOST:]PORT [--cores N] [--idle SECONDS] [--grace SECONDS]
//           [--recv plain|multishot] [--max-clients N] [--max-bulk BYTES]
//           [--max-inline BYTES]
//
// A Redis-protocol (RESP2) key-value server: strings with expiry, the
// commands redis-benchmark and redis-cli use, pipelining (every request
// already received is answered, then the replies go out in one send), and
// redis-server's reply texts. Connections receive through a multishot recv
// into a per-core buffer ring (--recv plain: one recv per read). --cores N: N pinned cores, each accepting on
// its own SO_REUSEPORT listener and owning the keys that hash to it; a
// command on another core's key runs there (sharded<T>::invoke_on), and
// multi-key commands fan out and gather in request order. Limits: a bulk over
// --max-bulk (64 MiB) or an inline line or header over --max-inline (64 KiB)
// gets Redis's protocol error and the connection is closed; beyond
// --max-clients (10000) a new client gets "max number of clients reached";
// a client silent for --idle seconds (300) is closed. SIGINT/SIGTERM stop:
// accepting ends, every connection's reads end so that it answers what it
// has and closes; --grace seconds (5) later the rest are cancelled, and the
// exit status is 0. A second signal ends the process at once.
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "args.hpp"
#include "coil/coil.hpp"
#include "kv/commands.hpp"
#include "listen_address.hpp"

namespace {

namespace net = coil::net;

struct shard;

struct config {
  kv::limits lim;
  int64_t idle_ns = 300'000'000'000;
  int64_t grace_ns = 5'000'000'000;
  unsigned max_clients = 10'000;
  bool multishot = true;  // --recv multishot (plain: one recv per read)
  std::atomic<unsigned> clients{0};  // every core's
  coil::sharded<shard>* shards = nullptr;
  std::vector<net::tcp_listener>* listeners = nullptr;
};

// Replies gathered before a send: a batch's, or this much of a long one.
constexpr size_t max_batch = 64 << 10;

int64_t now_ns() { return coil::runtime::current()->now_ns(); }

// A connection as its core's stop and idle sweep see it.
struct conn_hook : coil::list_hook {
  int fd = -1;
  int64_t last_ns = 0;  // the last bytes received
};

// One core's part of the server: its keys and its connections.
struct shard {
  explicit shard(config* c) : cfg(c) {}

  // Ends accepting and every connection's reads: each answers what it has
  // received, sees the end of its stream, and closes.
  void begin_stop() noexcept {
    stopping = true;
    stop.set();
    conns.for_each([](conn_hook& h) { ::shutdown(h.fd, SHUT_RD); });
  }

  config* cfg;
  kv::store db;
  coil::event stop;
  bool stopping = false;
  coil::buffer_ring* ring = nullptr;  // multishot recv buffers, when the driver has them
  coil::intrusive_list<conn_hook> conns;
};

unsigned owner_of(std::string_view key, unsigned cores) {
  return static_cast<unsigned>(kv::key_hash{}(key) % cores);
}

// Runs a command on `core` with that core's keys; gives its reply.
std::string run_on_shard(shard& s, const kv::command* c, std::vector<std::string> args) {
  std::string out;
  c->run(s.db, args.data(), args.size(), out);
  return out;
}

coil::task<void> run_remote(shard& sh, const kv::command& c, unsigned core, std::vector<std::string> args,
                            std::string& out) {
  auto r = co_await sh.cfg->shards->invoke_on(core, &run_on_shard, &c, coil::moved(args));
  if (r) {
    out.append(*r);
  } else {
    kv::reply_error(out, "ERR server is stopping");
  }
}

// The reply elements of an array reply ("*N\r\n" then N bulk replies).
std::vector<std::string_view> split_bulks(std::string_view r) {
  std::vector<std::string_view> items;
  size_t at = r.find('\n') + 1;
  while (at < r.size()) {
    const size_t eol = r.find('\n', at);
    long long len = -1;
    kv::parse_ll(r.substr(at + 1, eol - 1 - at - 1), len);
    const size_t end = len < 0 ? eol + 1 : eol + 1 + static_cast<size_t>(len) + 2;
    items.push_back(r.substr(at, end - at));
    at = end;
  }
  return items;
}

// A multi-key or every-core command across cores: each core runs it on the
// keys it owns (all at once), and the answers are merged as one core would
// give them: counts summed, MGET's values back in request order.
coil::task<void> run_fanout(shard& sh, const kv::command& c, std::string* a, size_t argc, std::string& out) {
  const unsigned n = coil::cores::count();
  const size_t step = c.key_args == kv::keys::pairs ? 2 : 1;
  std::vector<std::vector<std::string>> part(n, std::vector<std::string>{a[0]});
  std::vector<std::vector<size_t>> index(n);  // MGET: where each core's values go
  if (c.key_args == kv::keys::every_shard) {
    for (auto& p : part) p.assign(a, a + argc);
  } else {
    for (size_t i = 1; i < argc; i += step) {
      const unsigned o = owner_of(a[i], n);
      index[o].push_back(i - 1);
      for (size_t k = 0; k < step; ++k) part[o].push_back(std::move(a[i + k]));
    }
  }
  std::vector<coil::task<coil::result<std::string>>> calls;
  std::vector<unsigned> called;
  for (unsigned core = 0; core < n; ++core) {
    if (part[core].size() == 1 && c.key_args != kv::keys::every_shard) continue;
    calls.push_back(sh.cfg->shards->invoke_on(core, &run_on_shard, &c, coil::moved(part[core])));
    called.push_back(core);
  }
  auto replies = co_await coil::when_all(std::move(calls));
  for (const auto& r : replies) {
    if (!r) {
      kv::reply_error(out, "ERR server is stopping");
      co_return;
    }
    if ((*r)[0] == '-') {  // the same error on every core: give it once
      out.append(*r);
      co_return;
    }
  }
  const char kind = replies.front()->front();
  if (kind == ':') {
    long long sum = 0;
    for (const auto& r : replies) {
      long long v = 0;
      kv::parse_ll(std::string_view(*r).substr(1, r->size() - 3), v);
      sum += v;
    }
    kv::reply_int(out, sum);
  } else if (kind == '*') {
    std::vector<std::string_view> slot((argc - 1) / step);
    for (size_t i = 0; i < replies.size(); ++i) {
      const auto items = split_bulks(*replies[i]);
      for (size_t k = 0; k < items.size(); ++k) slot[index[called[i]][k]] = items[k];
    }
    kv::reply_array(out, slot.size());
    for (std::string_view s : slot) out.append(s);
  } else {
    out.append(*replies.front());
  }
}

// Whether every key of the request is this core's.
bool all_local(const kv::command& c, const std::string* a, size_t argc, unsigned here, unsigned n) {
  switch (c.key_args) {
    case kv::keys::none:
      return true;
    case kv::keys::first:
      return owner_of(a[1], n) == here;
    case kv::keys::every_shard:
      return false;
    case kv::keys::all:
    case kv::keys::pairs:
      break;
  }
  const size_t step = c.key_args == kv::keys::pairs ? 2 : 1;
  for (size_t i = 1; i < argc; i += step) {
    if (owner_of(a[i], n) != here) return false;
  }
  return true;
}

// What a connection's reader reads from: the socket's plain recv, or a
// multishot recv (the kernel keeps one receive armed per connection and
// fills buffers of the core's shared ring, which go back to the ring as soon
// as their bytes are copied out).
struct conn_source {
  net::tcp_stream* s;
  net::recv_stream* rx;  // nullptr: plain recv
  net::rx_buffer held;
  size_t at = 0;

  coil::task<coil::result<size_t>> read_some(std::span<std::byte> out) {
    if (rx == nullptr) co_return co_await s->read_some(out);
    if (held.empty()) {
      auto b = co_await rx->next();
      if (!b) co_return coil::fail(b.error());
      if (b->empty()) co_return 0;  // the end of the stream
      held = std::move(*b);
      at = 0;
    }
    const size_t n = std::min(out.size(), held.size() - at);
    std::memcpy(out.data(), held.data() + at, n);
    at += n;
    if (at == held.size()) {
      held.reset();  // back to the ring at once
      at = 0;
    }
    co_return n;
  }
};

// Reads and drops what the client still sends (at most 1 MiB) until its
// end, so that closing does not reset the connection before the client
// reads the error.
coil::task<coil::result<void>> drain(coil::buffered_reader<conn_source>& in) {
  for (size_t dropped = 0; dropped < (1u << 20);) {
    dropped += in.buffered().size();
    in.consume(in.buffered().size());
    auto n = co_await in.fill();
    if (!n) co_return coil::fail(n.error());
    if (*n == 0) break;
  }
  co_return coil::result<void>{};
}

coil::task<void> serve_requests(net::tcp_stream& s, conn_source& src, shard& sh, conn_hook& hook);

coil::task<void> serve_conn(net::tcp_stream s, shard& sh) {
  conn_hook hook;
  hook.fd = s.fd();
  hook.last_ns = now_ns();
  sh.conns.push_back(hook);
  if (sh.stopping) ::shutdown(hook.fd, SHUT_RD);
  (void)s.set_nodelay(true);
  if (sh.ring != nullptr) {
    auto rx = s.recv_multishot(*sh.ring);
    conn_source src{&s, &rx, {}, 0};
    co_await serve_requests(s, src, sh, hook);
  } else {
    conn_source src{&s, nullptr, {}, 0};
    co_await serve_requests(s, src, sh, hook);
  }
  sh.conns.erase(hook);
  sh.cfg->clients.fetch_sub(1, std::memory_order_relaxed);
  (void)co_await s.close();
}

coil::task<void> serve_requests(net::tcp_stream& s, conn_source& src, shard& sh, conn_hook& hook) {
  const config& cfg = *sh.cfg;
  // The read buffer holds any header line or inline request; values stream
  // through it into the parser's arguments.
  coil::buffered_reader in(src, cfg.lim.max_inline + 1024);
  kv::request_parser parser(cfg.lim);
  std::string replies;
  const unsigned here = coil::cores::current();
  const unsigned n = coil::cores::count();
  bool open = true, refused = false;
  while (open) {
    // Every request already received is answered before the replies go out.
    for (;;) {
      const auto b = in.buffered();
      size_t used = 0;
      const auto st = parser.feed(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), used);
      in.consume(used);
      if (st == kv::request_parser::status::more) break;
      if (st == kv::request_parser::status::error) {
        std::string text = "ERR ";
        text.append(parser.error());
        kv::reply_error(replies, text);
        open = false;
        refused = true;
        break;
      }
      std::string* a = parser.args();
      const size_t argc = parser.argc();
      const kv::command* c = kv::find_command(a[0]);
      if (c == nullptr) {
        kv::reply_unknown(replies, a, argc);
      } else if (!kv::arity_ok(*c, argc)) {
        kv::reply_arity(replies, c->name);
      } else if (n == 1 || all_local(*c, a, argc, here, n)) {
        c->run(sh.db, a, argc, replies);  // the fast path: no other core involved
      } else if (c->key_args == kv::keys::first) {
        std::vector<std::string> args(std::make_move_iterator(a), std::make_move_iterator(a + argc));
        co_await run_remote(sh, *c, owner_of(args[1], n), std::move(args), replies);
      } else if (c->key_args == kv::keys::pairs && argc % 2 == 0) {
        kv::reply_arity(replies, c->name);
      } else {
        co_await run_fanout(sh, *c, a, argc, replies);
      }
      parser.trim();
      if (c != nullptr && c->run == kv::cmd::quit) {
        open = false;
        break;
      }
      if (replies.size() >= max_batch) {
        auto w = co_await s.send_all(replies);
        replies.clear();
        if (!w) {
          open = false;
          break;
        }
      }
    }
    if (!replies.empty()) {
      auto w = co_await s.send_all(replies);
      replies.clear();
      if (!w) break;
    }
    if (!open) break;
    auto got = co_await in.fill();
    if (!got || *got == 0) break;
    hook.last_ns = now_ns();
  }
  if (refused) {
    (void)co_await s.shutdown_write();
    (void)co_await coil::with_timeout(drain(in), std::chrono::seconds(1));
  }
}

// A client over --max-clients: Redis's error, then the connection closes.
coil::task<void> refuse(net::tcp_stream s) {
  (void)co_await s.send_all(std::string_view("-ERR max number of clients reached\r\n"));
  (void)co_await s.close();
}

bool fd_exhausted(std::error_code e) {
  return e == std::errc::too_many_files_open || e == std::errc::too_many_files_open_in_system;
}

// Accepts until cancelled; every connection joins `conns`.
coil::task<coil::result<void>> accept_loop(net::tcp_listener& l, coil::task_group& conns, shard& sh) {
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
      std::fprintf(stderr, "kv_server: accept: %s\n", s.error().message().c_str());
      co_return coil::fail(s.error());
    }
    if (sh.cfg->clients.fetch_add(1, std::memory_order_relaxed) >= sh.cfg->max_clients) {
      sh.cfg->clients.fetch_sub(1, std::memory_order_relaxed);
      conns.spawn(refuse(std::move(*s)));
      continue;
    }
    conns.spawn(serve_conn(std::move(*s), sh));
  }
}

// Every 100 ms: a bounded expiry sweep, and the idle connections closed.
coil::task<void> tick(shard& sh) {
  for (;;) {
    auto slept = co_await coil::sleep_for(std::chrono::milliseconds(100));
    if (!slept) co_return;
    sh.db.sweep(256);
    const int64_t idle_ns = sh.cfg->idle_ns;
    const int64_t now = now_ns();
    sh.conns.for_each([&](conn_hook& h) {
      if (now - h.last_ns > idle_ns) ::shutdown(h.fd, SHUT_RDWR);
    });
  }
}

coil::task<coil::result<void>> join(coil::task_group& g) { co_return co_await g.join(); }

// One core's server: accept until stopped, then let the connections finish
// (reads ended: they answer what they have) for up to the grace.
coil::task<coil::result<void>> serve_core(shard& sh) {
  net::tcp_listener& l = (*sh.cfg->listeners)[coil::cores::current()];
  // Where the kernel or the driver (epoll) has no buffer rings, plain recv.
  coil::buffer_ring::ptr ring;
  if (sh.cfg->multishot) {
    auto made = coil::buffer_ring::create(coil::runtime::current()->driver(), 1024, 4096);
    if (made) ring = std::move(*made);
  }
  sh.ring = ring.get();
  coil::task_group conns;
  auto ticker = coil::runtime::current()->spawn(tick(sh));
  auto first = co_await coil::when_any(accept_loop(l, conns, sh), sh.stop.wait());
  coil::result<void> r;
  if (first.index() == 0 && std::get<0>(first).error() != std::errc::operation_canceled) r = std::get<0>(first);
  (void)co_await l.close();
  sh.begin_stop();
  (void)co_await coil::with_timeout(join(conns), std::chrono::nanoseconds(sh.cfg->grace_ns));
  ticker.cancel();
  co_await std::move(ticker);
  if (!r) {  // a failed core takes the others down
    auto all = co_await sh.cfg->shards->invoke_on_all([](shard& s) { s.begin_stop(); });
    (void)all;
  }
  co_return r;
}

coil::task<void> stop_on_signal(coil::signal_set& sigs, config& cfg) {
  auto sig = co_await sigs.wait();
  if (!sig) co_return;  // cancelled: the server ended another way
  std::fprintf(stderr, "kv_server: %s: stopping\n", sigabbrev_np(sig->signo));
  sigs.restore_default();  // a second signal now ends the process
  auto all = co_await cfg.shards->invoke_on_all([](shard& s) { s.begin_stop(); });
  (void)all;
}

// Core 0's main (or the only one): makes every core's shard, serves on all
// of them, and ends the shards once every core has stopped.
coil::task<coil::result<void>> run_server(config& cfg, coil::signal_set& sigs) {
  auto started = co_await cfg.shards->start(&cfg);
  if (!started) co_return started;
  auto watcher = coil::runtime::current()->spawn(stop_on_signal(sigs, cfg));
  auto served = co_await cfg.shards->invoke_on_all([](shard& s) { return serve_core(s); });
  watcher.cancel();
  co_await std::move(watcher);
  auto stopped = co_await cfg.shards->stop();
  co_return served ? stopped : served;
}

coil::task<coil::result<void>> nothing() { co_return coil::result<void>{}; }

int usage() {
  return ::usage(
      "kv_server [HOST:]PORT [--cores N (1-1024)] [--idle SECONDS (up to 86400)] [--grace SECONDS (up to 3600)] "
      "[--recv plain|multishot] [--max-clients N (1-1000000)] [--max-bulk BYTES (1-1073741824)] [--max-inline BYTES (64-16777216)]");
}

int fail(const char* what, std::error_code e) {
  std::fprintf(stderr, "kv_server: %s: %s\n", what, e.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  config cfg;
  unsigned cores = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return usage();
    if (a == "--idle" || a == "--grace") {
      const auto s = parse_seconds(argv[++i], a == "--idle" ? 86'400 : 3'600);
      if (!s) return usage();
      (a == "--idle" ? cfg.idle_ns : cfg.grace_ns) = static_cast<int64_t>(*s * 1e9);
    } else if (a == "--cores") {
      const auto n = parse_count(argv[++i], 1, 1024);
      if (!n) return usage();
      cores = static_cast<unsigned>(*n);
    } else if (a == "--recv") {
      const std::string_view v = argv[++i];
      if (v != "plain" && v != "multishot") return usage();
      cfg.multishot = v == "multishot";
    } else if (a == "--max-clients") {
      const auto n = parse_count(argv[++i], 1, 1'000'000);
      if (!n) return usage();
      cfg.max_clients = static_cast<unsigned>(*n);
    } else if (a == "--max-bulk") {
      const auto n = parse_count(argv[++i], 1, 1ll << 30);
      if (!n) return usage();
      cfg.lim.max_bulk = static_cast<size_t>(*n);
      cfg.lim.max_request = std::max(cfg.lim.max_request, cfg.lim.max_bulk);
    } else if (a == "--max-inline") {
      const auto n = parse_count(argv[++i], 64, 16 << 20);
      if (!n) return usage();
      cfg.lim.max_inline = static_cast<size_t>(*n);
    } else {
      return usage();
    }
  }
  const auto where = listen_address(argv[1]);
  if (!where) {
    std::fprintf(stderr, "kv_server: bad address or port %s\n", argv[1]);
    return usage();
  }

  coil::cores_options opts;
  if (cores > 0) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 1;
    for (int c = 0; c < CPU_SETSIZE && opts.cpus.size() < cores; ++c) {
      if (CPU_ISSET(c, &allowed)) opts.cpus.push_back(c);
    }
    if (opts.cpus.size() < cores) {
      std::fprintf(stderr, "kv_server: only %zu CPUs available\n", opts.cpus.size());
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
  coil::sharded<shard> shards;
  cfg.shards = &shards;
  cfg.listeners = &listeners;
  std::printf("kv_server: listening on %s\n", at.to_string().c_str());
  std::fflush(stdout);

  coil::result<void> r;
  if (cores == 0) {
    auto rt = coil::runtime::create();
    if (!rt) return fail("runtime", rt.error());
    r = (*rt)->block_on(run_server(cfg, *sigs));
  } else {
    // Core 0 drives; the other cores' mains end at once and their cores
    // serve the calls core 0 sends them (serve_core among them).
    r = coil::cores::run(opts, [&](unsigned core) { return core == 0 ? run_server(cfg, *sigs) : nothing(); });
  }
  if (!r && r.error() != std::errc::operation_canceled) return fail("stopped", r.error());
  return 0;
}
