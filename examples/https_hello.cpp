// https_hello [HOST:]PORT --cert CERT --key KEY
//
// http_hello over TLS: every request is answered with "Hello, world!",
// keep-alive by default (HTTP/1.1), "Connection: close" honoured, and
// pipelined requests that arrive together are answered with one write (one
// flight of TLS records). The handshake is bounded by with_timeout, so a
// client that connects and says nothing costs a task for five seconds, not
// forever. ALPN offers http/1.1. Not a general HTTP parser.
#include <strings.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "coil/coil.hpp"
#include "coil/tls/stream.hpp"
#include "listen_address.hpp"

namespace {

using namespace std::chrono_literals;
namespace tls = coil::tls;

constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\n"
    "Server: coil\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, world!";
constexpr std::string_view response_close =
    "HTTP/1.1 200 OK\r\n"
    "Server: coil\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "Connection: close\r\n"
    "\r\n"
    "Hello, world!";
constexpr size_t max_request = 16 << 10;
constexpr auto handshake_limit = 5s;

// The value of header `name` in head (which ends with the blank line), or "".
std::string_view header(std::string_view head, std::string_view name) {
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const size_t start = pos + 2;
    const size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos) break;
    std::string_view line = head.substr(start, end - start);
    if (line.size() > name.size() && line[name.size()] == ':' &&
        ::strncasecmp(line.data(), name.data(), name.size()) == 0) {
      std::string_view v = line.substr(name.size() + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return v;
    }
    pos = end;
  }
  return {};
}

struct request_info {
  size_t length = 0;  // head plus body bytes
  bool close = false;
};

// Parses one request at the front of in; length 0 if it is not complete yet.
request_info parse(std::string_view in) {
  const size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) return {};
  const std::string_view head = in.substr(0, end + 4);
  request_info r;
  r.length = head.size() + std::strtoul(std::string(header(head, "Content-Length")).c_str(), nullptr, 10);
  if (r.length > in.size()) return {};
  const std::string_view conn = header(head, "Connection");
  const bool http10 = head.find(" HTTP/1.0\r\n") != std::string_view::npos;
  r.close = (conn.size() == 5 && ::strncasecmp(conn.data(), "close", 5) == 0) ||
            (http10 && !(conn.size() == 10 && ::strncasecmp(conn.data(), "keep-alive", 10) == 0));
  return r;
}

coil::task<void> serve(coil::net::tcp_stream c, const tls::context& ctx) {
  (void)c.set_nodelay(true);
  auto s = co_await coil::with_timeout(tls::accept(ctx, std::move(c)), handshake_limit);
  if (!s) co_return;  // a client that failed the handshake or stayed silent
  std::string in;
  std::string out;
  std::vector<std::byte> buf(16 << 10);
  bool open = true;
  while (open) {
    auto n = co_await s->read_some(buf);
    if (!n || *n == 0) break;  // 0: the client's close_notify
    in.append(reinterpret_cast<const char*>(buf.data()), *n);
    size_t used = 0;
    for (;;) {
      const request_info r = parse(std::string_view(in).substr(used));
      if (r.length == 0) break;
      used += r.length;
      out += r.close ? response_close : response;
      if (r.close) {
        open = false;
        break;
      }
    }
    in.erase(0, used);
    if (in.size() > max_request) break;  // a request this large is not for us
    if (!out.empty()) {
      auto w = co_await s->write_all(out);
      if (!w) break;
      out.clear();
    }
  }
  (void)co_await s->shutdown();
  (void)co_await s->next_layer().close();
}

coil::task<int> run(coil::net::tcp_listener& listener, const tls::context& ctx) {
  for (;;) {
    auto s = co_await listener.accept();
    if (!s) {
      if (s.error() == std::errc::too_many_files_open || s.error() == std::errc::too_many_files_open_in_system) {
        auto z = co_await coil::sleep_for(std::chrono::milliseconds(10));
        (void)z;
        continue;
      }
      std::fprintf(stderr, "https_hello: accept: %s\n", s.error().message().c_str());
      co_return 1;
    }
    coil::runtime::current()->spawn(serve(std::move(*s), ctx)).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* usage_line = "usage: https_hello PORT|HOST:PORT --cert CERT.pem --key KEY.pem\n";
  std::optional<coil::net::socket_address> where;
  std::string cert, key;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if ((a == "--cert" || a == "--key") && i + 1 < argc) {
      (a == "--cert" ? cert : key) = argv[++i];
    } else if (!where && !a.starts_with("-")) {
      where = listen_address(argv[i]);
      if (!where) break;
    } else {
      where.reset();
      break;
    }
  }
  if (!where || cert.empty() || key.empty()) {
    std::fputs(usage_line, stderr);
    return 2;
  }
  // Built once and shared by every connection; a key that does not match
  // the certificate, or an unreadable file, is refused here.
  auto ctx = tls::context::server({
      .certificate_chain_file = cert,
      .private_key_file = key,
      .alpn = {"http/1.1"},
  });
  if (!ctx) {
    std::fprintf(stderr, "https_hello: %s, %s: %s\n", cert.c_str(), key.c_str(), ctx.error().message().c_str());
    return 1;
  }
  auto listener = coil::net::tcp_listener::bind(*where);
  if (!listener) {
    std::fprintf(stderr, "https_hello: bind: %s\n", listener.error().message().c_str());
    return 1;
  }
  auto rt = coil::runtime::create();
  if (!rt) return 1;
  auto addr = listener->local_address();
  std::printf("https_hello: listening on %s\n", addr ? addr->to_string().c_str() : "?");
  std::fflush(stdout);
  return (*rt)->block_on(run(*listener, *ctx));
}
