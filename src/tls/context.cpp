#include "coil/tls/context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "internal.hpp"

namespace coil::tls {
namespace {

int version_number(version v) noexcept { return v == version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION; }

// Server: the first of our protocols the client offers.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                void* arg) {
  const auto* ours = static_cast<const std::string*>(arg);
  unsigned char* sel = nullptr;
  unsigned char sel_len = 0;
  if (SSL_select_next_proto(&sel, &sel_len, reinterpret_cast<const unsigned char*>(ours->data()),
                            static_cast<unsigned>(ours->size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no protocol in common: RFC 7301's no_application_protocol
  }
  *out = sel;
  *outlen = sel_len;
  return SSL_TLSEXT_ERR_OK;
}

void free_alpn(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<std::string*>(ptr); }

int alpn_index() {
  static const int i = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_alpn);
  return i;
}

result<void> common_setup(SSL_CTX* c, const context_options& o) {
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(c, version_number(o.min_version)) != 1 ||
      SSL_CTX_set_max_proto_version(c, version_number(o.max_version)) != 1) {
    return fail(take_openssl_error(std::make_error_code(std::errc::invalid_argument)));
  }
  // Renegotiation would make a writer wait for reads; release_buffers keeps
  // an idle connection's OpenSSL buffers freed.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
  if (!o.certificate_chain_file.empty() &&
      SSL_CTX_use_certificate_chain_file(c, o.certificate_chain_file.c_str()) != 1) {
    return fail(take_openssl_error(std::make_error_code(std::errc::invalid_argument)));
  }
  if (!o.private_key_file.empty()) {
    if (SSL_CTX_use_PrivateKey_file(c, o.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c) != 1) {
      return fail(take_openssl_error(std::make_error_code(std::errc::invalid_argument)));
    }
  }
  const bool verifies = o.verify_peer;
  if (verifies) {
    const int ok = o.ca_file.empty() ? SSL_CTX_set_default_verify_paths(c)
                                     : SSL_CTX_load_verify_locations(c, o.ca_file.c_str(), nullptr);
    if (ok != 1) return fail(take_openssl_error(std::make_error_code(std::errc::invalid_argument)));
  }
  return {};
}

}  // namespace

result<context> context::client(const context_options& o) noexcept {
  SSL_CTX* c = SSL_CTX_new(TLS_client_method());
  if (c == nullptr) return fail(take_openssl_error(std::make_error_code(std::errc::not_enough_memory)));
  context ctx(c, false);
  if (auto r = common_setup(c, o); !r) return fail(r.error());
  SSL_CTX_set_verify(c, o.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (!o.alpn.empty()) {
    const std::string wire = detail::alpn_wire(o.alpn);
    if (SSL_CTX_set_alpn_protos(c, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size())) != 0) {
      return fail(take_openssl_error(std::make_error_code(std::errc::invalid_argument)));
    }
  }
  if (o.resumption) {
    if (auto r = detail::enable_client_cache(c); !r) return fail(r.error());
  } else {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  }
  return ctx;
}

result<context> context::server(const context_options& o) noexcept {
  if (o.certificate_chain_file.empty() || o.private_key_file.empty()) {
    return fail(std::make_error_code(std::errc::invalid_argument));
  }
  SSL_CTX* c = SSL_CTX_new(TLS_server_method());
  if (c == nullptr) return fail(take_openssl_error(std::make_error_code(std::errc::not_enough_memory)));
  context ctx(c, true);
  context_options so = o;
  so.verify_peer = o.require_client_certificate;
  if (auto r = common_setup(c, so); !r) return fail(r.error());
  SSL_CTX_set_verify(c, o.require_client_certificate ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                     : SSL_VERIFY_NONE,
                     nullptr);
  static const unsigned char sid[] = "coil";
  SSL_CTX_set_session_id_context(c, sid, sizeof sid - 1);
  if (o.resumption) {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
  } else {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c, 0);
  }
  if (!o.alpn.empty()) {
    auto* wire = new std::string(detail::alpn_wire(o.alpn));
    SSL_CTX_set_ex_data(c, alpn_index(), wire);
    SSL_CTX_set_alpn_select_cb(c, select_alpn, wire);
  }
  return ctx;
}

context::context(const context& o) noexcept : ctx_(o.ctx_), server_(o.server_) {
  if (ctx_ != nullptr) SSL_CTX_up_ref(ctx_);
}

context& context::operator=(const context& o) noexcept {
  if (this != &o) {
    if (o.ctx_ != nullptr) SSL_CTX_up_ref(o.ctx_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ctx_ = o.ctx_;
    server_ = o.server_;
  }
  return *this;
}

context& context::operator=(context&& o) noexcept {
  if (this != &o) {
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ctx_ = std::exchange(o.ctx_, nullptr);
    server_ = o.server_;
  }
  return *this;
}

context::~context() {
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

bool kernel_tls_available() noexcept {
  const int fd = ::open("/proc/sys/net/ipv4/tcp_available_ulp", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[256] = {};
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  // A space-separated list: "mptcp tls".
  for (const char* p = buf; (p = std::strstr(p, "tls")) != nullptr; p += 3) {
    const bool start = p == buf || p[-1] == ' ';
    const bool end = p[3] == '\0' || p[3] == ' ' || p[3] == '\n';
    if (start && end) return true;
  }
  return false;
}

}  // namespace coil::tls
