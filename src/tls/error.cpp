#include "coil/tls/error.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <string>

namespace coil::tls {
namespace {

class tls_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "coil.tls"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::truncated:
        return "TLS peer closed the connection without close_notify (truncated)";
      case errc::handshake_eof:
        return "TLS peer closed the connection during the handshake";
      case errc::closed:
        return "TLS stream written to after its shutdown";
      case errc::no_server_name:
        return "TLS client verifies the peer but has no host name to check";
      case errc::no_context:
        return "empty TLS context";
    }
    return "unknown TLS error";
  }
};

class openssl_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "openssl"; }
  std::string message(int ev) const override {
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(ev), buf, sizeof buf);
    // "error:0A000086:SSL routines::certificate verify failed": keep the
    // reason, which is what a reader wants; the code stays in value().
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ev));
    return reason != nullptr ? std::string(reason) : std::string(buf);
  }
};

class x509_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "x509"; }
  std::string message(int ev) const override { return X509_verify_cert_error_string(ev); }
};

}  // namespace

const std::error_category& tls_category() noexcept {
  static const tls_category_impl c;
  return c;
}
const std::error_category& openssl_category() noexcept {
  static const openssl_category_impl c;
  return c;
}
const std::error_category& x509_category() noexcept {
  static const x509_category_impl c;
  return c;
}

std::error_code take_openssl_error(std::error_code fallback) noexcept {
  // The last error is the most specific one (earlier entries are context),
  // except that a failed system call (a certificate file that does not
  // exist) is reported by its errno: "system lib" says nothing.
  unsigned long last = 0;
  int sys_errno = 0;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    last = e;
    if (ERR_GET_LIB(e) == ERR_LIB_SYS && ERR_GET_REASON(e) > 0) sys_errno = ERR_GET_REASON(e);
  }
  if (sys_errno != 0) return {sys_errno, std::system_category()};
  if (last == 0) return fallback;
  return {static_cast<int>(last), openssl_category()};
}

}  // namespace coil::tls
