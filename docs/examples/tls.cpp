// Guide: tls.md. A TLS echo over 127.0.0.1 with certificates made by the
// openssl command-line tool, a client that checks the server's name, and
// what a refused certificate looks like.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <coil/coil.hpp>
#include <coil/tls/stream.hpp>
#include <openssl/x509_vfy.h>

#include "example_util.hpp"

using namespace std::chrono_literals;
namespace net = coil::net;
namespace tls = coil::tls;

namespace {

using example::check;

// doc-begin: contexts
// Built once at start-up and shared by every connection (and every core).
struct tls_setup {
  tls::context server;
  tls::context client;
};

coil::result<tls_setup> make_contexts(const std::string& dir) {
  auto server = tls::context::server({
      .certificate_chain_file = dir + "/cert.pem",
      .private_key_file = dir + "/key.pem",
      .alpn = {"echo/1"},
  });
  if (!server) return coil::fail(server.error());  // e.g. a key that does not match
  // Verifies the server against this CA (empty: the system's store).
  auto client = tls::context::client({.ca_file = dir + "/ca.pem", .alpn = {"echo/1"}});
  if (!client) return coil::fail(client.error());
  return tls_setup{std::move(*server), std::move(*client)};
}
// doc-end: contexts

// doc-begin: server
// One task per connection: handshake (bounded), then echo until the
// client's close_notify, then our own.
coil::task<void> serve(net::tcp_stream c, const tls::context& ctx) {
  auto s = co_await coil::with_timeout(tls::accept(ctx, std::move(c)), 5s);
  if (!s) co_return;  // a bad client: x509, openssl or tls::errc code
  std::vector<std::byte> buf(16 << 10);
  for (;;) {
    auto n = co_await s->read_some(buf);
    if (!n || *n == 0) break;  // 0: close_notify; tls::errc::truncated: no close_notify
    auto w = co_await s->write_all(std::span(buf).first(*n));
    if (!w) break;
  }
  (void)co_await s->shutdown();
}
// doc-end: server

// doc-begin: client
coil::task<coil::result<std::string>> ask(const tls::context& ctx, uint16_t port) {
  // Connects, sends SNI "localhost" and checks the certificate names it.
  auto s = co_await tls::connect(ctx, "localhost", port);
  if (!s) co_return coil::fail(s.error());
  std::printf("%.*s, %.*s, ALPN %.*s\n", static_cast<int>(s->protocol_version().size()),
              s->protocol_version().data(), static_cast<int>(s->cipher().size()), s->cipher().data(),
              static_cast<int>(s->alpn_protocol().size()), s->alpn_protocol().data());
  auto w = co_await s->write_all("hello over TLS");
  if (!w) co_return coil::fail(w.error());
  std::string got(14, '\0');
  size_t have = 0;
  while (have < got.size()) {
    auto n = co_await s->read_some(std::as_writable_bytes(std::span(got)).subspan(have));
    if (!n) co_return coil::fail(n.error());
    if (*n == 0) break;
    have += *n;
  }
  if (auto r = co_await s->shutdown(); !r) co_return coil::fail(r.error());
  co_return got.substr(0, have);
}
// doc-end: client

// doc-begin: refused
coil::task<void> wrong_name(const tls::context& ctx, uint16_t port) {
  // The certificate names localhost and 127.0.0.1, not this.
  auto s = co_await tls::connect(ctx, "127.0.0.1", port, {.server_name = "example.com"});
  check(!s, "refused");
  if (!s) {
    check(s.error().category() == tls::x509_category(), "an x509 error");
    check(s.error().value() == X509_V_ERR_HOSTNAME_MISMATCH, "hostname mismatch");
    std::printf("refused: %s\n", s.error().message().c_str());  // "hostname mismatch"
  }
}
// doc-end: refused

coil::task<void> accept_n(net::tcp_listener& l, const tls::context& ctx, int n) {
  std::vector<coil::join_handle<void>> conns;
  for (int i = 0; i < n; ++i) {
    auto c = co_await l.accept();
    if (!c) break;
    conns.push_back(coil::runtime::current()->spawn(serve(std::move(*c), ctx)));
  }
  for (auto& c : conns) co_await std::move(c);
}

coil::task<void> demo(const tls_setup& tls) {
  auto l = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
  check(static_cast<bool>(l), "bind");
  if (!l) co_return;
  const uint16_t port = l->local_address()->port();
  auto srv = coil::runtime::current()->spawn(accept_n(*l, tls.server, 2));
  auto back = co_await ask(tls.client, port);
  check(back && *back == "hello over TLS", "echo over TLS");
  co_await wrong_name(tls.client, port);
  co_await std::move(srv);
}

bool make_certificates(const std::string& d) {
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
  const std::string cmds[] = {
      "openssl req -x509" + ec + "-keyout " + d + "/ca.key -out " + d + "/ca.pem -days 1 -subj /CN=doc-ca",
      "openssl req" + ec + "-keyout " + d + "/key.pem -out " + d + "/cert.csr -subj /CN=localhost",
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > " + d + "/ext",
      "openssl x509 -req -in " + d + "/cert.csr -CA " + d + "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -out " +
          d + "/cert.pem -days 1 -extfile " + d + "/ext",
  };
  for (const auto& c : cmds) {
    if (std::system((c + " >/dev/null 2>&1").c_str()) != 0) return false;
  }
  return true;
}

}  // namespace

int main() {
  example::temp_dir dir;
  check(dir.ok() && make_certificates(dir.path()), "test certificates (openssl)");
  if (example::failures != 0) return example::exit_code();
  auto tls = make_contexts(dir.path());
  check(static_cast<bool>(tls), "contexts");
  if (!tls) return example::exit_code();
  auto rt = coil::runtime::create();
  check(static_cast<bool>(rt), "runtime");
  if (!rt) return example::exit_code();
  (*rt)->block_on(demo(*tls));
  return example::exit_code();
}
