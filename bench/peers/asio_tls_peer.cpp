// coil-peer-asio-tls: coil-bench tls's echo server written with Boost.Asio's
// asio::ssl::stream (Debian's 1.81, OpenSSL 3 underneath), as its
// documentation teaches: C++20 coroutines on a single-threaded io_context
// with locking off.
//
//   tls LISTEN_FD CERT KEY   one coroutine per connection: async_handshake,
//                            then async_read_some / async_write of what
//                            arrived until the client's close_notify, then
//                            async_shutdown. Runs until killed; coil-bench
//                            reads its CPU time from wait4 after
//                            SIGTERM.
//
// Resumption is off (no session cache, no tickets) as in coil's server, so
// every handshake is a full one.
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <openssl/ssl.h>

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> serve(tcp::socket s, ssl::context& ctx) {
  boost::system::error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);
  ssl::stream<tcp::socket> t(std::move(s), ctx);
  auto [hec] = co_await t.async_handshake(ssl::stream_base::server, no_throw);
  if (hec) co_return;
  std::array<char, 16 << 10> buf;  // in the coroutine frame, as coil's server keeps its buffer
  for (;;) {
    auto [rec, n] = co_await t.async_read_some(asio::buffer(buf), no_throw);
    if (rec) break;  // asio::ssl::error::stream_truncated or eof (close_notify)
    auto [wec, w] = co_await asio::async_write(t, asio::buffer(buf.data(), n), no_throw);
    if (wec) break;
  }
  auto [sec] = co_await t.async_shutdown(no_throw);
  (void)sec;
}

asio::awaitable<void> accept_all(tcp::acceptor& acceptor, ssl::context& ctx) {
  for (;;) {
    auto [ec, s] = co_await acceptor.async_accept(no_throw);
    if (ec) {
      std::fprintf(stderr, "asio-tls: accept: %s\n", ec.message().c_str());
      co_return;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(s), ctx), asio::detached);
  }
}

// SIGTERM (how coil-bench stops a server) exits through _exit rather than the
// default action, so a run under valgrind still writes its profile.
void exit_on_term(int) { ::_exit(0); }

int run(int listen_fd, const char* cert, const char* key) {
  ::signal(SIGTERM, exit_on_term);
  ssl::context ctx(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(cert, ec);
  if (!ec) ctx.use_private_key_file(key, ssl::context::pem, ec);
  if (ec) {
    std::fprintf(stderr, "asio-tls: %s\n", ec.message().c_str());
    return 1;
  }
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(native, 0);
  asio::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  tcp::acceptor acceptor(io, tcp::v4(), listen_fd);
  asio::co_spawn(io, accept_all(acceptor, ctx), asio::detached);
  io.run();
  return 1;  // only a failed accept ends the loop
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "tls") == 0) return run(std::atoi(argv[2]), argv[3], argv[4]);
  std::fprintf(stderr, "usage: coil-peer-asio-tls tls LISTEN_FD CERT KEY\n");
  return 2;
}
