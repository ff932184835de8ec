// file_server [HOST:]PORT --root DIR [--cores N] [--tls CERT KEY] [--follow-symlinks]
//             [--idle SECONDS] [--header-timeout SECONDS] [--large-body sendfile|splice|read]
//
// An HTTP/1.1 static file server. GET and HEAD of regular files beneath
// --root, keep-alive and pipelining, single byte ranges (206, 416), 304 for
// If-Modified-Since, Content-Type by extension, index.html for a directory
// that has one (else 403: no listings). Paths are resolved by the kernel
// beneath the root's descriptor (openat2 with RESOLVE_BENEATH), so no
// request names a file outside it; symlinks leading out are refused unless
// --follow-symlinks. Every connection has one deadline, watched by one
// timer: --idle (default 60 s) between requests and between the writes of
// an answer, --header-timeout (default 10 s) for a whole request head from
// its first byte (a client dribbling its headers is cut off). Heads are at
// most 16 KiB (431) with a request line of at most 8 KiB (414). A body is
// read in 64 KiB pieces, the head and a small file in one send. Over plain
// TCP a larger body goes with sendfile(2) (--large-body sendfile, the
// default), file -> pipe -> socket with splice ops (splice), or through the
// buffer (read); docs/performance.md has the measurements. --tls serves https through
// coil::tls. SIGINT/SIGTERM: accepting stops, connections get two seconds,
// exit 0. --cores N: N pinned cores, each with its own SO_REUSEPORT listener.
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "args.hpp"
#include "coil/coil.hpp"
#include "file_server/http.hpp"
#include "listen_address.hpp"
#include "serve_cores.hpp"
#if FILE_SERVER_TLS
#include "coil/tls/stream.hpp"
#endif

namespace {

namespace net = coil::net;
using namespace file_server;

constexpr size_t chunk = 64 << 10;           // body bytes per read and send
constexpr size_t head_room = 1 << 10;        // an answer's head, before the body in the same buffer
constexpr size_t large_from = chunk;         // bodies at least this large count as large
constexpr int64_t grace_ns = 2'000'000'000;  // open connections' time to finish at a stop

// How a body larger than one buffer goes out over plain TCP (TLS always
// reads through the buffer).
enum class large_body { sendfile, splice, read };

struct config {
  int root = -1;         // O_PATH descriptor of --root
  uint64_t resolve = 0;  // openat2 resolve flags
  int64_t idle_ns = 60'000'000'000;
  int64_t header_ns = 10'000'000'000;
  large_body large = large_body::sendfile;
#if FILE_SERVER_TLS
  const coil::tls::context* tls = nullptr;
#endif
};

int64_t now_ns() { return coil::runtime::current()->now_ns(); }

// The Date header's value, formatted once a second per core.
std::string_view date_now() {
  thread_local time_t cached = 0;
  thread_local std::string text;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != cached || text.empty()) {
    cached = ts.tv_sec;
    text = http_date(cached);
  }
  return text;
}

// --- transports: plain TCP and TLS under the same names ---------------------------

auto send_bytes(net::tcp_stream& s, std::span<const std::byte> b) { return s.send_all(b); }
coil::task<void> end_stream(net::tcp_stream& s) { (void)co_await s.close(); }
// Lets a refused client read its answer: shut the write side, drop what it
// still sends for a moment (closing with unread bytes sends a reset that
// can destroy the answer before it is read), then close.
coil::task<coil::result<void>> drain_input(coil::buffered_reader<net::tcp_stream>& in) {
  for (size_t dropped = 0; dropped < (1u << 20);) {
    dropped += in.buffered().size();
    in.consume(in.buffered().size());
    auto n = co_await in.fill();
    if (!n) co_return coil::fail(n.error());
    if (*n == 0) co_return {};
  }
  co_return {};
}
coil::task<void> linger(net::tcp_stream& s, coil::buffered_reader<net::tcp_stream>& in) {
  (void)co_await s.shutdown_write();
  (void)co_await coil::with_timeout(drain_input(in), std::chrono::seconds(1));
}
int socket_fd(net::tcp_stream& s) { return s.fd(); }

#if FILE_SERVER_TLS
using tls_stream = coil::tls::stream<net::tcp_stream>;
coil::task<coil::transfer_result> send_bytes(tls_stream& s, std::span<const std::byte> b) { return s.write_all(b); }
coil::task<void> end_stream(tls_stream& s) {
  (void)co_await s.shutdown();
  (void)co_await s.next_layer().close();
}
coil::task<void> linger(tls_stream& s, coil::buffered_reader<tls_stream>&) { (void)co_await s.shutdown(); }
int socket_fd(tls_stream&) { return -1; }  // no splice through TLS
#endif

// --- answers ---------------------------------------------------------------------------

void append_common(std::string& h, status s, bool close) {
  h += "HTTP/1.1 ";
  h += std::to_string(static_cast<int>(s));
  h += ' ';
  h += reason(s);
  h += "\r\nServer: coil-file_server\r\nDate: ";
  h += date_now();
  h += "\r\n";
  if (close) h += "Connection: close\r\n";
}

// An error answer with its small HTML body (none for HEAD).
std::string error_answer(status s, bool close, bool head_only, std::string_view extra = {}) {
  const std::string body = error_body(s);
  std::string h;
  h.reserve(256 + body.size());
  append_common(h, s, close);
  h += "Content-Type: text/html\r\nContent-Length: ";
  h += std::to_string(body.size());
  h += "\r\n";
  h += extra;
  h += "\r\n";
  if (!head_only) h += body;
  return h;
}

status open_error_status(std::error_code e) {
  if (e == std::errc::no_such_file_or_directory || e == std::errc::not_a_directory ||
      e == std::errc::filename_too_long) {
    return status::not_found;
  }
  if (e == std::errc::cross_device_link || e == std::errc::too_many_symbolic_link_levels ||
      e == std::errc::permission_denied || e == std::errc::operation_not_permitted) {
    return status::forbidden;
  }
  return status::internal_error;
}

// The per-connection state an answer uses.
template <class Stream>
struct connection {
  Stream& s;
  const config& cfg;
  int64_t& deadline;
  std::unique_ptr<std::byte[]> buf;  // head_room + chunk, made at the first body
  coil::unique_fd pipe_r, pipe_w;    // made at the first spliced body

  std::byte* buffer() {
    if (!buf) buf = std::make_unique<std::byte[]>(head_room + chunk);
    return buf.get();
  }
};

// statx of an open descriptor, called directly: it never waits for the
// disk (the inode is in memory once open), and io_uring would hand a statx
// to a worker thread.
coil::result<void> stat_open(const coil::file& f, struct ::statx& st) {
  if (::statx(f.fd(), "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE | STATX_MTIME, &st) != 0) {
    return coil::fail(std::error_code(errno, std::system_category()));
  }
  return {};
}

// The file for a request: the path beneath the root, or a directory's
// index.html. A failure gives the status to answer.
coil::task<coil::result<coil::file>> open_target(const config& cfg, const std::string& path, status& why,
                                                 struct ::statx& st, bool& html) {
  const char* rel = path.empty() ? "." : path.c_str();
  auto f = co_await coil::file::open_at(cfg.root, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, cfg.resolve);
  if (!f) {
    why = open_error_status(f.error());
    co_return coil::fail(f.error());
  }
  if (auto s = stat_open(*f, st); !s) {
    why = status::internal_error;
    co_return coil::fail(s.error());
  }
  if (S_ISDIR(st.stx_mode)) {
    auto index = co_await coil::file::open_at(f->fd(), "index.html", O_RDONLY | O_NONBLOCK | O_NOCTTY, cfg.resolve);
    (void)co_await f->close();
    if (!index) {
      why =
          index.error() == std::errc::no_such_file_or_directory ? status::forbidden : open_error_status(index.error());
      co_return coil::fail(index.error());
    }
    if (auto s2 = stat_open(*index, st); !s2) {
      why = status::internal_error;
      co_return coil::fail(s2.error());
    }
    html = true;
    f = std::move(index);
  }
  if (!S_ISREG(st.stx_mode)) {
    why = status::forbidden;  // devices, FIFOs, sockets
    co_return coil::fail(std::errc::permission_denied);
  }
  co_return std::move(*f);
}

// Makes a blocking socket non-blocking until destroyed (io_uring needs
// coil's sockets blocking; the direct calls below need them not to be).
class nonblocking {
 public:
  explicit nonblocking(int fd) noexcept : fd_(fd), flags_(::fcntl(fd, F_GETFL)) {
    ok_ = flags_ >= 0 && ((flags_ & O_NONBLOCK) != 0 || ::fcntl(fd, F_SETFL, flags_ | O_NONBLOCK) == 0);
  }
  ~nonblocking() {
    if (ok_ && (flags_ & O_NONBLOCK) == 0) (void)::fcntl(fd_, F_SETFL, flags_);
  }
  nonblocking(const nonblocking&) = delete;
  nonblocking& operator=(const nonblocking&) = delete;
  bool ok() const noexcept { return ok_; }

 private:
  int fd_;
  int flags_;
  bool ok_ = false;
};

// The head and body over plain TCP with sendfile(2), as nginx sends: the
// head goes first with MSG_MORE so that it shares a segment with the body,
// then sendfile; a full send buffer waits for coil::wait_writable (a
// readiness op on either driver). A page-cache miss blocks the core while
// the kernel reads, as it does nginx without aio.
coil::task<bool> sendfile_body(connection<net::tcp_stream>& c, std::span<const std::byte> head, const coil::file& f,
                               uint64_t off, uint64_t left) {
  const int sock = c.s.fd();
  nonblocking nb(sock);
  if (!nb.ok()) co_return false;
  while (!head.empty() || left > 0) {
    ssize_t n;
    if (!head.empty()) {
      n = ::send(sock, head.data(), head.size(), MSG_MORE | MSG_NOSIGNAL);
    } else {
      off_t at = static_cast<off_t>(off);
      n = ::sendfile(sock, f.fd(), &at, static_cast<size_t>(std::min<uint64_t>(left, 0x7ffff000)));
    }
    if (n > 0) {
      const auto k = static_cast<size_t>(n);
      if (!head.empty()) {
        head = head.subspan(k);
      } else {
        off += k;
        left -= k;
      }
      c.deadline = now_ns() + c.cfg.idle_ns;
      continue;
    }
    if (n == 0 || errno != EAGAIN) co_return false;  // the file shrank, or the peer went
    auto ready = co_await coil::wait_writable(sock);
    if (!ready) co_return false;
  }
  co_return true;
}

// The rest of a body over plain TCP: file -> pipe -> socket with splice,
// the bytes never copied through user memory.
coil::task<bool> splice_body(connection<net::tcp_stream>& c, const coil::file& f, uint64_t off, uint64_t left) {
  if (!c.pipe_r.valid()) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) co_return false;
    c.pipe_r = coil::unique_fd(p[0]);
    c.pipe_w = coil::unique_fd(p[1]);
    (void)::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(chunk));
  }
  // splice reads at the file's position: this descriptor is this answer's own.
  if (::lseek(f.fd(), static_cast<off_t>(off), SEEK_SET) < 0) co_return false;
  while (left > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(left, chunk));
    auto in = co_await coil::op_awaiter<coil::ops::splice_in>(
        coil::ops::splice_in{f.fd(), c.pipe_w.get(), static_cast<uint32_t>(want)});
    if (!in || *in == 0) co_return false;
    c.deadline = now_ns() + c.cfg.idle_ns;
    for (size_t moved = 0; moved < *in;) {
      auto out = co_await c.s.splice_from_pipe(c.pipe_r.get(), *in - moved);
      if (!out || *out == 0) co_return false;  // the pipe keeps bytes: the connection ends
      moved += *out;
    }
    left -= *in;
  }
  co_return true;
}

// Sends [first, first + length) of f after the head already in c.buffer()
// (head_len bytes): the head with as much of the body as fits in one send,
// then chunk by chunk. False when the connection can no longer be used.
template <class Stream>
coil::task<bool> send_body(connection<Stream>& c, const coil::file& f, size_t head_len, uint64_t first,
                           uint64_t length) {
  std::byte* buf = c.buffer();
  const int sock = socket_fd(c.s);
  const bool by_fd = c.cfg.large != large_body::read && sock >= 0 && length >= large_from;  // sendfile or splice
  uint64_t off = first, left = length;
  size_t pending = head_len;  // bytes at buf ready to go
  if (!by_fd) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(left, head_room + chunk - head_len));
    auto n = co_await f.read_at(std::span(buf + head_len, want), off);
    if (!n || *n == 0) co_return false;  // the file shrank: the promised length cannot be kept
    pending += *n;
    off += *n;
    left -= *n;
  }
  c.deadline = now_ns() + c.cfg.idle_ns;
  if constexpr (std::is_same_v<Stream, net::tcp_stream>) {
    if (by_fd && c.cfg.large == large_body::sendfile) {
      co_return co_await sendfile_body(c, std::span<const std::byte>(buf, pending), f, off, left);
    }
  }
  auto w = co_await send_bytes(c.s, std::span<const std::byte>(buf, pending));
  if (!w) co_return false;
  if constexpr (std::is_same_v<Stream, net::tcp_stream>) {
    if (by_fd) co_return co_await splice_body(c, f, off, left);
  }
  while (left > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(left, chunk));
    auto n = co_await f.read_at(std::span(buf, want), off);
    if (!n || *n == 0) co_return false;
    c.deadline = now_ns() + c.cfg.idle_ns;
    auto sent = co_await send_bytes(c.s, std::span<const std::byte>(buf, *n));
    if (!sent) co_return false;
    off += *n;
    left -= *n;
  }
  co_return true;
}

// Answers one parsed request; false when the connection is to end.
template <class Stream>
coil::task<bool> answer(connection<Stream>& c, const request& r) {
  struct ::statx st {};
  status why = status::ok;
  bool html = false;
  auto f = co_await open_target(c.cfg, r.path, why, st, html);
  if (!f) {
    const std::string e = error_answer(why, r.close, r.head);
    auto w = co_await send_bytes(c.s, coil::bytes_of(e));
    co_return w && !r.close;
  }
  const uint64_t size = st.stx_size;
  const time_t mtime = static_cast<time_t>(st.stx_mtime.tv_sec);
  const std::string last_modified = http_date(mtime);
  bool not_modified = false;
  if (!r.if_modified_since.empty()) {
    const auto since = parse_http_date(r.if_modified_since);
    not_modified = since && mtime <= *since;
  }
  byte_range range{0, size == 0 ? 0 : size - 1};
  range_kind kind = not_modified ? range_kind::whole : parse_range(r.range, size, range);
  status s = not_modified ? status::not_modified : kind == range_kind::partial ? status::partial : status::ok;
  if (kind == range_kind::unsatisfiable) {
    std::string extra = "Content-Range: bytes */";
    extra += std::to_string(size);
    extra += "\r\n";
    const std::string e = error_answer(status::range_not_satisfiable, r.close, r.head, extra);
    (void)co_await f->close();
    auto w = co_await send_bytes(c.s, coil::bytes_of(e));
    co_return w && !r.close;
  }
  const uint64_t length = s == status::not_modified ? 0 : kind == range_kind::partial ? range.length() : size;
  std::string h;
  h.reserve(320);
  append_common(h, s, r.close);
  if (r.http10 && !r.close) h += "Connection: keep-alive\r\n";
  h += "Last-Modified: ";
  h += last_modified;
  h += "\r\n";
  if (s != status::not_modified) {
    h += "Content-Type: ";
    h += html ? std::string_view("text/html") : content_type(r.path);
    h += "\r\nContent-Length: ";
    h += std::to_string(length);
    h += "\r\nAccept-Ranges: bytes\r\n";
    if (s == status::partial) {
      h += "Content-Range: bytes ";
      h += std::to_string(range.first);
      h += '-';
      h += std::to_string(range.last);
      h += '/';
      h += std::to_string(size);
      h += "\r\n";
    }
  }
  h += "\r\n";
  bool ok = true;
  if (r.head || length == 0 || h.size() > head_room) {
    auto w = co_await send_bytes(c.s, coil::bytes_of(h));
    ok = static_cast<bool>(w);
  } else {
    std::memcpy(c.buffer(), h.data(), h.size());
    ok = co_await send_body(c, *f, h.size(), range.first, length);
  }
  (void)co_await f->close();
  co_return ok && !r.close;
}

// --- connections -----------------------------------------------------------------------

// Reads and answers requests until the client ends, an answer ends the
// connection, or the deadline's watchdog cancels this.
template <class Stream>
coil::task<void> serve_requests(Stream& s, const config& cfg, int64_t& deadline) {
  coil::buffered_reader in(s, max_head);
  connection<Stream> c{s, cfg, deadline, nullptr, {}, {}};
  request r;
  for (;;) {
    size_t scanned = 0;
    bool started = !in.buffered().empty();
    if (started) deadline = std::min(deadline, now_ns() + cfg.header_ns);
    status why = status::ok;
    head_state st = head_state::incomplete;
    for (;;) {
      st = try_parse(in, scanned, r, why);
      if (st != head_state::incomplete) break;
      auto n = co_await in.fill();
      if (!n || *n == 0) co_return;  // the client's end (or an error): nothing to answer
      if (!started) {
        started = true;
        deadline = now_ns() + cfg.header_ns;  // the whole head from its first byte
      }
    }
    if (st == head_state::refused) {
      std::string extra;
      if (why == status::method_not_allowed) extra = "Allow: GET, HEAD\r\n";
      const std::string e = error_answer(why, true, false, extra);
      deadline = now_ns() + cfg.idle_ns;
      auto w = co_await send_bytes(s, coil::bytes_of(e));
      if (w) co_await linger(s, in);
      co_return;
    }
    deadline = now_ns() + cfg.idle_ns;
    const bool go_on = co_await answer(c, r);
    if (!go_on) co_return;
    deadline = now_ns() + cfg.idle_ns;
  }
}

// Ends once the connection's deadline has passed (it moves while the
// connection works).
coil::task<void> watchdog(const int64_t& deadline) {
  for (int64_t due = deadline; now_ns() < due; due = deadline) {
    auto slept = co_await coil::sleep_until_ns(due);
    if (!slept) co_return;  // cancelled: the connection ended first
  }
}

template <class Stream>
coil::task<void> serve_stream(Stream& s, const config& cfg) {
  int64_t deadline = now_ns() + cfg.idle_ns;
  (void)co_await coil::when_any(serve_requests(s, cfg, deadline), watchdog(deadline));
  co_await end_stream(s);
}

coil::task<void> serve(net::tcp_stream s, const config& cfg) {
  (void)s.set_nodelay(true);
#if FILE_SERVER_TLS
  if (cfg.tls != nullptr) {
    auto t =
        co_await coil::with_timeout(coil::tls::accept(*cfg.tls, std::move(s)), std::chrono::nanoseconds(cfg.header_ns));
    if (!t) co_return;  // a failed or silent handshake; the socket is closed
    co_await serve_stream(*t, cfg);
    co_return;
  }
#endif
  co_await serve_stream(s, cfg);
}

int usage() {
  return ::usage(
      "file_server [HOST:]PORT --root DIR [--cores N (1-1024)] [--tls CERT KEY] [--follow-symlinks] "
      "[--idle SECONDS] [--header-timeout SECONDS] "
      "[--large-body sendfile|splice|read]");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  config cfg;
  unsigned cores = 0;
  const char* root = nullptr;
  const char* cert = nullptr;
  const char* key = nullptr;
  bool follow = false;
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--follow-symlinks") {
      follow = true;
    } else if (a == "--large-body" && i + 1 < argc) {
      const std::string_view how = argv[++i];
      if (how == "sendfile") {
        cfg.large = large_body::sendfile;
      } else if (how == "splice") {
        cfg.large = large_body::splice;
      } else if (how == "read") {
        cfg.large = large_body::read;
      } else {
        return usage();
      }
    } else if (i + 1 >= argc) {
      return usage();
    } else if (a == "--root") {
      root = argv[++i];
    } else if (a == "--tls" && i + 2 < argc) {
      cert = argv[++i];
      key = argv[++i];
    } else if (a == "--idle" || a == "--header-timeout") {
      const auto s = parse_seconds(argv[++i], 86'400);
      if (!s) return usage();
      (a == "--idle" ? cfg.idle_ns : cfg.header_ns) = static_cast<int64_t>(*s * 1e9);
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
    std::fprintf(stderr, "file_server: bad address or port %s\n", argv[1]);
    return usage();
  }
  if (root == nullptr) {
    std::fprintf(stderr, "file_server: --root DIR is required\n");
    return usage();
  }
  // The root is opened once; every path is resolved beneath this descriptor.
  const int root_fd = ::open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    std::fprintf(stderr, "file_server: --root %s: %s\n", root, std::strerror(errno));
    return 2;
  }
  cfg.root = root_fd;
  // Magic links (/proc/self/fd/...) never; symlinks only beneath the root
  // unless --follow-symlinks (the normalized path has no "..", so only a
  // followed symlink can lead out).
  cfg.resolve = RESOLVE_NO_MAGICLINKS | (follow ? 0 : RESOLVE_BENEATH);
#if FILE_SERVER_TLS
  coil::tls::context tls_ctx;
  if (cert != nullptr) {
    auto ctx = coil::tls::context::server({
        .certificate_chain_file = cert,
        .private_key_file = key,
        .alpn = {"http/1.1"},
    });
    if (!ctx) {
      std::fprintf(stderr, "file_server: %s, %s: %s\n", cert, key, ctx.error().message().c_str());
      return 1;
    }
    tls_ctx = std::move(*ctx);
    cfg.tls = &tls_ctx;
  }
#else
  if (cert != nullptr) {
    (void)key;
    std::fprintf(stderr, "file_server: built without TLS (COIL_TLS=OFF)\n");
    return 2;
  }
#endif

  // A splice into a socket whose peer has gone raises SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  std::string what = ", root ";
  what += root;
  const serve_cores::options so{"file_server", grace_ns, cores};
  const int status =
      serve_cores::run(*where, so, what.c_str(), [&cfg](net::tcp_stream s) { return serve(std::move(s), cfg); });
  ::close(root_fd);
  return status;
}
