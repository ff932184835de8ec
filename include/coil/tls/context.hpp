#pragma once
// tls::context: what every TLS connection of one role shares: certificates
// and key, how peers are verified, ALPN, protocol versions and session
// resumption. Build it once (at start-up) and share it: copies share one
// OpenSSL SSL_CTX, which is safe to use from every core at once.
//
//   auto ctx = coil::tls::context::client();                     // system CAs
//   auto ctx = coil::tls::context::server({.certificate_chain_file = "cert.pem",
//                                          .private_key_file = "key.pem"});
#include <string>
#include <vector>

#include "coil/core/result.hpp"
#include "coil/tls/error.hpp"

typedef struct ssl_ctx_st SSL_CTX;  // NOLINT: OpenSSL's own declaration

namespace coil::tls {

enum class version { tls1_2, tls1_3 };

struct context_options {
  // PEM files. A server needs both; a client presents them when the server
  // asks for a certificate.
  std::string certificate_chain_file;
  std::string private_key_file;
  // Clients verify the server's certificate (against ca_file, or the system
  // store when it is empty) unless verify_peer is off; servers ask for and
  // verify client certificates only with require_client_certificate.
  bool verify_peer = true;
  bool require_client_certificate = false;
  std::string ca_file;
  // ALPN protocols in order of preference ("h2", "http/1.1"); a server picks
  // the first of its own list the client also offers.
  std::vector<std::string> alpn;
  version min_version = version::tls1_2;
  version max_version = version::tls1_3;
  // Resumption: servers issue tickets and keep a session cache; clients keep
  // the latest session per host name and offer it on the next connection.
  bool resumption = true;
};

class context {
 public:
  // A context for connecting out. Verification of the server's certificate
  // and host name is on unless turned off here (verify_peer) or per stream.
  static result<context> client(const context_options& opts = {}) noexcept;
  // A context for accepting: certificate_chain_file and private_key_file
  // are required (and must match).
  static result<context> server(const context_options& opts) noexcept;

  context() noexcept = default;
  context(const context& o) noexcept;
  context& operator=(const context& o) noexcept;
  context(context&& o) noexcept : ctx_(o.ctx_), server_(o.server_) { o.ctx_ = nullptr; }
  context& operator=(context&& o) noexcept;
  ~context();

  bool valid() const noexcept { return ctx_ != nullptr; }
  bool is_server() const noexcept { return server_; }
  // The OpenSSL context, for settings coil does not wrap (still shared).
  SSL_CTX* native() const noexcept { return ctx_; }

 private:
  context(SSL_CTX* c, bool server) noexcept : ctx_(c), server_(server) {}
  SSL_CTX* ctx_ = nullptr;
  bool server_ = false;
};

// Whether the kernel offers TLS offload here (the "tls" ULP is available).
bool kernel_tls_available() noexcept;

}  // namespace coil::tls
