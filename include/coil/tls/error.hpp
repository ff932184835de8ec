#pragma once
// TLS errors as values. Three categories:
//   tls::errc          what coil's TLS layer itself decides (a peer that
//                      closed without close_notify, a stream used before its
//                      handshake, ...);
//   openssl_category() OpenSSL's own errors (the packed ERR code: library and
//                      reason), message() giving OpenSSL's reason text;
//   x509_category()    certificate verification results (X509_V_ERR_*:
//                      expired, unknown CA, hostname mismatch...), message()
//                      giving X509_verify_cert_error_string's text.
// A handshake refused for a certificate reports the x509 code, so "expired"
// and "wrong host" are distinguishable without parsing text. A failed system
// call inside OpenSSL (a certificate file that cannot be opened) is the
// system error itself: std::errc::no_such_file_or_directory, not "system lib".
#include <system_error>

namespace coil::tls {

enum class errc {
  truncated = 1,       // the peer closed the connection without close_notify
  handshake_eof,       // the peer closed the connection during the handshake
  closed,              // written to after shutdown (close_notify already sent)
  no_server_name,      // a verifying client needs a host name (or verify_hostname off)
  no_context,          // the context is empty (its creation failed or it was moved from)
};

const std::error_category& tls_category() noexcept;
const std::error_category& openssl_category() noexcept;
const std::error_category& x509_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), tls_category()}; }

// The error at the head of this thread's OpenSSL error queue (the queue is
// then cleared), or `fallback` if the queue is empty.
std::error_code take_openssl_error(std::error_code fallback = make_error_code(errc::truncated)) noexcept;

}  // namespace coil::tls

template <>
struct std::is_error_code_enum<coil::tls::errc> : std::true_type {};
