#pragma once
// What the TLS sources share: ALPN's wire form, and client-side
// resumption: the latest session each host name gave, kept by the context
// (shared by every core that uses it, hence a lock, taken once per
// handshake, never per record).
#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "coil/core/result.hpp"

namespace coil::tls::detail {

// Each protocol prefixed by its length (names over 255 bytes are dropped).
std::string alpn_wire(const std::vector<std::string>& protos);

// Makes c remember sessions per host name (the SSL's app data is its
// detail::session, whose cache_key() names it).
result<void> enable_client_cache(SSL_CTX* c) noexcept;
// Offers name's remembered session on ssl, if c keeps one.
void offer_cached_session(SSL_CTX* c, SSL* ssl, const std::string& name) noexcept;

}  // namespace coil::tls::detail
