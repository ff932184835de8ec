// http_hello PORT|HOST:PORT
//
// A minimal HTTP/1.1 server answering every request with "Hello, world!".
// Keep-alive by default (HTTP/1.1), "Connection: close" honoured, and
// pipelining: all complete requests in one read are answered with one send.
// Enough for load generators such as wrk; not a general HTTP parser.
#include <strings.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "coil/coil.hpp"
#include "listen_address.hpp"

namespace {

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

coil::task<void> serve(coil::net::tcp_stream s) {
  (void)s.set_nodelay(true);
  std::string in;
  std::string out;
  std::vector<std::byte> buf(16 << 10);
  bool open = true;
  while (open) {
    auto n = co_await s.recv(buf);
    if (!n || *n == 0) break;
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
      auto w = co_await s.send_all(std::as_bytes(std::span(out.data(), out.size())));
      if (!w) break;
      out.clear();
    }
  }
  (void)co_await s.close();
}

coil::task<int> run(coil::net::tcp_listener& listener) {
  for (;;) {
    auto s = co_await listener.accept();
    if (!s) {
      if (s.error() == std::errc::too_many_files_open || s.error() == std::errc::too_many_files_open_in_system) {
        auto z = co_await coil::sleep_for(std::chrono::milliseconds(10));
        (void)z;
        continue;
      }
      std::fprintf(stderr, "http_hello: accept: %s\n", s.error().message().c_str());
      co_return 1;
    }
    coil::runtime::current()->spawn(serve(std::move(*s))).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto where = argc == 2 ? listen_address(argv[1]) : std::nullopt;
  if (!where) {
    std::fprintf(stderr, "usage: http_hello PORT|HOST:PORT\n");
    return 2;
  }
  auto listener = coil::net::tcp_listener::bind(*where);
  if (!listener) {
    std::fprintf(stderr, "http_hello: bind: %s\n", listener.error().message().c_str());
    return 1;
  }
  auto rt = coil::runtime::create();
  if (!rt) return 1;
  auto addr = listener->local_address();
  std::printf("http_hello: listening on %s\n", addr ? addr->to_string().c_str() : "?");
  std::fflush(stdout);
  return (*rt)->block_on(run(*listener));
}
