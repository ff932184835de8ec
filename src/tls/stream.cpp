#include "coil/tls/stream.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.hpp"

namespace coil::tls {
namespace detail {
namespace {

// BIO pair buffers. Output holds a few full records so a bulk write leaves
// in one send; input holds more than one record so a read rarely stops
// mid-record.
constexpr size_t output_buffer = 64 << 10;
constexpr size_t input_buffer = 32 << 10;

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

}  // namespace

result<std::unique_ptr<session>> session::make(const context& ctx, const client_options* client) noexcept {
  if (!ctx.valid()) return fail(errc::no_context);
  if ((client != nullptr) == ctx.is_server()) return fail(std::make_error_code(std::errc::invalid_argument));
  ERR_clear_error();
  std::unique_ptr<session> s(new session);
  s->ssl_ = SSL_new(ctx.native());
  if (s->ssl_ == nullptr) return fail(take_openssl_error(std::make_error_code(std::errc::not_enough_memory)));
  BIO* inner = nullptr;
  // The first size buffers what OpenSSL writes (outgoing), the second what
  // we write into the pair (incoming).
  if (BIO_new_bio_pair(&inner, output_buffer, &s->net_, input_buffer) != 1) {
    return fail(take_openssl_error(std::make_error_code(std::errc::not_enough_memory)));
  }
  SSL_set_bio(s->ssl_, inner, inner);
  SSL_set_app_data(s->ssl_, s.get());
  if (client == nullptr) {
    SSL_set_accept_state(s->ssl_);
    return s;
  }
  SSL_set_connect_state(s->ssl_);
  s->server_name_ = std::string(client->server_name);
  const std::string& name = s->server_name_;
  const bool verifies = (SSL_CTX_get_verify_mode(ctx.native()) & SSL_VERIFY_PEER) != 0;
  if (verifies && client->verify_hostname) {
    if (name.empty()) return fail(errc::no_server_name);
    X509_VERIFY_PARAM* param = SSL_get0_param(s->ssl_);
    const int ok = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                                       : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (ok != 1) return fail(take_openssl_error(std::make_error_code(std::errc::invalid_argument)));
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  if (!name.empty() && !is_ip_literal(name) && SSL_set_tlsext_host_name(s->ssl_, name.c_str()) != 1) {
    return fail(take_openssl_error(std::make_error_code(std::errc::invalid_argument)));
  }
  offer_cached_session(ctx.native(), s->ssl_, name);
  return s;
}

session::~session() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // frees OpenSSL's end of the pair
  if (net_ != nullptr) BIO_free(net_);
}

session::step session::fail_step(int ret, bool in_handshake) noexcept {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      ERR_clear_error();
      return {next::read};
    case SSL_ERROR_WANT_WRITE:
      ERR_clear_error();
      return {next::write};
    case SSL_ERROR_ZERO_RETURN:
      ERR_clear_error();
      return {next::eof};
    default:
      break;
  }
  const unsigned long e = ERR_peek_last_error();
  if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    const long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) {
      ERR_clear_error();
      return {next::error, 0, std::error_code(static_cast<int>(v), x509_category())};
    }
  }
  // A transport end where a record or handshake message should be.
  if (eof_ && (e == 0 || (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING))) {
    ERR_clear_error();
    return {next::error, 0, make_error_code(in_handshake ? errc::handshake_eof : errc::truncated)};
  }
  return {next::error, 0, take_openssl_error(make_error_code(errc::truncated))};
}

session::step session::handshake() noexcept {
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    handshake_done_ = true;
    return {next::done};
  }
  return fail_step(r, true);
}

session::step session::read(std::span<std::byte> buf) noexcept {
  ERR_clear_error();
  size_t n = 0;
  if (SSL_read_ex(ssl_, buf.data(), buf.size(), &n) == 1) return {next::done, n};
  return fail_step(0, !handshake_done_);
}

session::step session::write(std::span<const std::byte> buf) noexcept {
  if (shut_down_) return {next::eof};
  ERR_clear_error();
  size_t n = 0;
  if (SSL_write_ex(ssl_, buf.data(), buf.size(), &n) == 1) return {next::done, n};
  return fail_step(0, !handshake_done_);
}

session::step session::shutdown() noexcept {
  shut_down_ = true;
  ERR_clear_error();
  // 0: close_notify is queued (the peer's has not come), 1: both done.
  const int r = SSL_shutdown(ssl_);
  if (r >= 0) return {next::done};
  const step s = fail_step(r, false);
  // Queued but the output buffer is full: flush sends it.
  if (s.what == next::write || s.what == next::read) return {next::done};
  return s;
}

std::span<const std::byte> session::output() noexcept {
  char* p = nullptr;
  const int n = BIO_nread0(net_, &p);
  if (n <= 0) return {};
  return {reinterpret_cast<const std::byte*>(p), static_cast<size_t>(n)};
}

void session::sent(size_t n) noexcept {
  char* p = nullptr;
  (void)BIO_nread(net_, &p, static_cast<int>(n));
}

std::span<std::byte> session::input_space() noexcept {
  char* p = nullptr;
  const int n = BIO_nwrite0(net_, &p);
  if (n <= 0) return {};
  return {reinterpret_cast<std::byte*>(p), static_cast<size_t>(n)};
}

void session::received(size_t n) noexcept {
  char* p = nullptr;
  (void)BIO_nwrite(net_, &p, static_cast<int>(n));
}

void session::received_eof() noexcept {
  eof_ = true;
  (void)BIO_shutdown_wr(net_);
}

std::string_view session::alpn_protocol() const noexcept {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  if (p == nullptr) return {};
  return {reinterpret_cast<const char*>(p), len};
}

std::string_view session::protocol_version() const noexcept { return SSL_get_version(ssl_); }

std::string_view session::cipher() const noexcept {
  const char* c = SSL_get_cipher_name(ssl_);
  return c != nullptr ? c : "";
}

bool session::session_reused() const noexcept { return SSL_session_reused(ssl_) == 1; }

}  // namespace detail

task<result<stream<net::tcp_stream>>> connect(const context& ctx, std::string host, uint16_t port,
                                              client_options opts) {
  if (opts.server_name.empty()) opts.server_name = host;
  auto tcp = co_await net::tcp_stream::connect(host, port);  // host stays: server_name may view it
  if (!tcp) co_return fail(tcp.error());
  (void)tcp->set_nodelay(true);
  auto s = stream<net::tcp_stream>::client(ctx, std::move(*tcp), std::move(opts));
  if (!s) co_return fail(s.error());
  if (auto h = co_await s->handshake(); !h) co_return fail(h.error());
  co_return std::move(*s);
}

task<result<stream<net::tcp_stream>>> accept(const context& ctx, net::tcp_stream tcp) {
  (void)tcp.set_nodelay(true);
  auto s = stream<net::tcp_stream>::server(ctx, std::move(tcp));
  if (!s) co_return fail(s.error());
  if (auto h = co_await s->handshake(); !h) co_return fail(h.error());
  co_return std::move(*s);
}

}  // namespace coil::tls
