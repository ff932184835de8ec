// http_hello PORT|HOST:PORT
//
// A minimal HTTP/1.1 server answering every request with "Hello, world!".
// Keep-alive by default (HTTP/1.1), "Connection: close" honoured, and
// pipelining: answers to requests already received wait in a buffered_writer
// and go out with one flush per batch. A request head over 16 KiB gets 431,
// a bad Content-Length 400, and the connection closes. SIGINT/SIGTERM stop
// accepting, give open connections a second to finish, and exit 0 (a second
// signal ends the process at once). Enough for load generators such as wrk;
// not a general HTTP parser.
#include <signal.h>
#include <strings.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string_view>

#include "coil/coil.hpp"
#include "listen_address.hpp"

namespace {

namespace net = coil::net;

constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\nServer: coil\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
constexpr std::string_view response_close =
    "HTTP/1.1 200 OK\r\nServer: coil\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    "Connection: close\r\n\r\nHello, world!";
constexpr std::string_view too_large =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
constexpr std::string_view bad_request = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
constexpr size_t max_head = 16 << 10;  // the reader's buffer: the request line and headers together

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

struct request {
  bool close = false;
};

// Reads one request (head, then the body it announces, skipped). Errors:
// too_long for a head over max_head, invalid_argument for a bad
// Content-Length, end_of_stream when the client is done.
coil::task<coil::result<request>> read_request(coil::buffered_reader<net::tcp_stream>& in) {
  size_t room = max_head;
  bool http10 = false, keep_alive = false, close = false;
  uint64_t body = 0;
  for (bool first = true;; first = false) {
    auto line = co_await in.read_line(room);  // a view: used before the next read
    if (!line) co_return coil::fail(line.error());
    room -= std::min(room, line->size() + 2);
    if (room == 0) co_return coil::fail(coil::errc::too_long);
    if (first) {
      http10 = line->ends_with(" HTTP/1.0");
      continue;
    }
    if (line->empty()) break;  // the end of the head
    const size_t colon = line->find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line->substr(0, colon);
    std::string_view value = line->substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (equals_nocase(name, "Connection")) {
      close = close || equals_nocase(value, "close");
      keep_alive = keep_alive || equals_nocase(value, "keep-alive");
    } else if (equals_nocase(name, "Content-Length")) {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), body);
      if (ec != std::errc() || end != value.data() + value.size()) co_return coil::fail(std::errc::invalid_argument);
    }
  }
  // The body is dropped as it arrives: nothing of it is kept.
  while (body > 0) {
    if (in.buffered().empty()) {
      auto n = co_await in.fill();
      if (!n) co_return coil::fail(n.error());
      if (*n == 0) co_return coil::fail(coil::errc::unexpected_eof);
    }
    const size_t k = static_cast<size_t>(std::min<uint64_t>(body, in.buffered().size()));
    in.consume(k);
    body -= k;
  }
  co_return request{close || (http10 && !keep_alive)};
}

// Whether a whole request head is already buffered (so its answer can wait
// for the same flush).
bool another_request_buffered(const coil::buffered_reader<net::tcp_stream>& in) {
  const auto b = in.buffered();
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size()).find("\r\n\r\n") != std::string_view::npos;
}

// Reads and drops what the client still sends (at most 1 MiB) until its
// end: closing with unread bytes would send a reset, which can destroy the
// refusal before the client reads it.
coil::task<coil::result<void>> discard_rest(coil::buffered_reader<net::tcp_stream>& in) {
  for (size_t dropped = 0; dropped < (1u << 20);) {
    dropped += in.buffered().size();
    in.consume(in.buffered().size());
    auto n = co_await in.fill();
    if (!n) co_return coil::fail(n.error());
    if (*n == 0) co_return {};
  }
  co_return {};
}

coil::task<void> serve(net::tcp_stream s) {
  (void)s.set_nodelay(true);
  coil::buffered_reader in(s, max_head);
  coil::buffered_writer out(s);
  for (;;) {
    auto req = co_await read_request(in);
    if (!req) {
      // Anything but the client's clean end gets a last answer.
      const bool refused = req.error() == coil::errc::too_long || req.error() == std::errc::invalid_argument;
      if (refused) {
        (void)co_await out.write(req.error() == coil::errc::too_long ? too_large : bad_request);
        (void)co_await out.flush();
        (void)co_await s.shutdown_write();
        (void)co_await coil::with_timeout(discard_rest(in), std::chrono::seconds(1));
      }
      break;
    }
    auto w = co_await out.write(req->close ? response_close : response);
    if (!w) break;
    if (req->close || !another_request_buffered(in)) {
      auto f = co_await out.flush();
      if (!f) break;
    }
    if (req->close) break;
  }
  (void)co_await s.close();
}

bool fd_exhausted(std::error_code e) {
  return e == std::errc::too_many_files_open || e == std::errc::too_many_files_open_in_system;
}

// Accepts until cancelled; every connection joins `conns`.
coil::task<coil::result<void>> accept_loop(net::tcp_listener& listener, coil::task_group& conns) {
  for (;;) {
    auto s = co_await listener.accept();
    if (!s) {
      if (s.error() == std::errc::operation_canceled) co_return coil::fail(s.error());
      // EMFILE/ENFILE: the connection waits in the backlog; try again shortly.
      if (fd_exhausted(s.error())) {
        auto slept = co_await coil::sleep_for(std::chrono::milliseconds(10));
        if (!slept) co_return coil::fail(slept.error());
        continue;
      }
      std::fprintf(stderr, "http_hello: accept: %s\n", s.error().message().c_str());
      co_return coil::fail(s.error());
    }
    conns.spawn(serve(std::move(*s)));
  }
}

coil::task<coil::result<void>> join(coil::task_group& g) { co_return co_await g.join(); }

// Serves until an accept error (1) or SIGINT/SIGTERM (0); then open
// connections get a second before they are cancelled.
coil::task<int> run(net::tcp_listener& listener, coil::signal_set& sigs) {
  coil::task_group conns;
  auto first = co_await coil::when_any(accept_loop(listener, conns), sigs.wait());
  if (first.index() == 1) {
    sigs.restore_default();  // a second signal ends the process
    std::fprintf(stderr, "http_hello: stopping\n");
  }
  (void)co_await listener.close();
  (void)co_await coil::with_timeout(join(conns), std::chrono::seconds(1));
  co_return first.index() == 1 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto where = argc == 2 ? listen_address(argv[1]) : std::nullopt;
  if (!where) {
    std::fprintf(stderr, "usage: http_hello PORT|HOST:PORT\n");
    return 2;
  }
  auto listener = net::tcp_listener::bind(*where);
  if (!listener) {
    std::fprintf(stderr, "http_hello: bind: %s\n", listener.error().message().c_str());
    return 1;
  }
  auto sigs = coil::signal_set::create({SIGINT, SIGTERM});  // before the runtime's threads
  if (!sigs) return 1;
  auto rt = coil::runtime::create();
  if (!rt) return 1;
  auto addr = listener->local_address();
  std::printf("http_hello: listening on %s\n", addr ? addr->to_string().c_str() : "?");
  std::fflush(stdout);
  return (*rt)->block_on(run(*listener, *sigs));
}
