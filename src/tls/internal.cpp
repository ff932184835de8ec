#include "internal.hpp"

#include <mutex>
#include <string>
#include <unordered_map>

#include "coil/tls/error.hpp"
#include "coil/tls/stream.hpp"

namespace coil::tls::detail {

std::string alpn_wire(const std::vector<std::string>& protos) {
  std::string out;
  for (const auto& p : protos) {
    if (p.empty() || p.size() > 255) continue;
    out.push_back(static_cast<char>(p.size()));
    out += p;
  }
  return out;
}

namespace {

struct client_cache {
  static constexpr size_t max_names = 1024;  // bounded: cleared when full
  std::mutex lock;
  std::unordered_map<std::string, SSL_SESSION*> by_name;

  ~client_cache() {
    for (auto& [name, s] : by_name) SSL_SESSION_free(s);
  }
};

void free_cache(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<client_cache*>(ptr); }

int cache_index() {
  static const int i = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_cache);
  return i;
}

client_cache* cache_of(SSL_CTX* c) noexcept { return static_cast<client_cache*>(SSL_CTX_get_ex_data(c, cache_index())); }

// OpenSSL hands over a new session (TLS 1.3: a ticket, after the
// handshake); returning 1 keeps its reference.
int on_new_session(SSL* ssl, SSL_SESSION* sess) {
  auto* owner = static_cast<session*>(SSL_get_app_data(ssl));
  client_cache* cache = cache_of(SSL_get_SSL_CTX(ssl));
  if (owner == nullptr || cache == nullptr || owner->cache_key().empty()) return 0;
  std::lock_guard g(cache->lock);
  auto it = cache->by_name.find(owner->cache_key());
  if (it != cache->by_name.end()) {
    SSL_SESSION_free(it->second);
    it->second = sess;
    return 1;
  }
  if (cache->by_name.size() >= client_cache::max_names) {
    for (auto& [name, s] : cache->by_name) SSL_SESSION_free(s);
    cache->by_name.clear();
  }
  cache->by_name.emplace(owner->cache_key(), sess);
  return 1;
}

}  // namespace

result<void> enable_client_cache(SSL_CTX* c) noexcept {
  auto* cache = new client_cache;
  if (SSL_CTX_set_ex_data(c, cache_index(), cache) != 1) {
    delete cache;
    return fail(take_openssl_error(std::make_error_code(std::errc::not_enough_memory)));
  }
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(c, on_new_session);
  return {};
}

void offer_cached_session(SSL_CTX* c, SSL* ssl, const std::string& name) noexcept {
  client_cache* cache = cache_of(c);
  if (cache == nullptr || name.empty()) return;
  std::lock_guard g(cache->lock);
  auto it = cache->by_name.find(name);
  if (it != cache->by_name.end()) SSL_set_session(ssl, it->second);
}

}  // namespace coil::tls::detail
