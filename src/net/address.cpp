#include "coil/net/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <charconv>
#include <cstddef>
#include <cstring>

namespace coil::net {

namespace {

constexpr size_t sun_path_size = sizeof(sockaddr_un::sun_path);
constexpr socklen_t sun_path_offset = offsetof(sockaddr_un, sun_path);

auto invalid() noexcept { return fail(std::errc::invalid_argument); }

result<uint16_t> parse_port(std::string_view s) noexcept {
  if (s.empty() || s.size() > 5) return invalid();
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v > 65535) return invalid();
  return static_cast<uint16_t>(v);
}

}  // namespace

socket_address socket_address::ipv4(std::array<uint8_t, 4> ip, uint16_t port) noexcept {
  socket_address a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  std::memcpy(&sin->sin_addr, ip.data(), 4);
  a.len_ = sizeof(sockaddr_in);
  return a;
}

socket_address socket_address::ipv6(const std::array<uint8_t, 16>& ip, uint16_t port, uint32_t scope_id) noexcept {
  socket_address a;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  std::memcpy(&sin6->sin6_addr, ip.data(), 16);
  sin6->sin6_scope_id = scope_id;
  a.len_ = sizeof(sockaddr_in6);
  return a;
}

socket_address socket_address::ipv6_any(uint16_t port) noexcept { return ipv6({}, port); }

socket_address socket_address::ipv6_loopback(uint16_t port) noexcept {
  std::array<uint8_t, 16> ip{};
  ip[15] = 1;
  return ipv6(ip, port);
}

result<socket_address> socket_address::parse_ip(std::string_view ip, uint16_t port) noexcept {
  // inet_pton wants a NUL-terminated string; the longest literal with a scope
  // fits easily (INET6_ADDRSTRLEN + IF_NAMESIZE).
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (ip.empty() || ip.size() >= sizeof(buf)) return invalid();
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  if (ip.find(':') == std::string_view::npos) {
    std::array<uint8_t, 4> v4{};
    if (::inet_pton(AF_INET, buf, v4.data()) != 1) return invalid();
    return ipv4(v4, port);
  }
  uint32_t scope = 0;
  if (char* pct = std::strchr(buf, '%')) {
    *pct = '\0';
    std::string_view name(pct + 1);
    if (name.empty()) return invalid();
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), scope);
    if (ec != std::errc{} || end != name.data() + name.size()) {
      scope = ::if_nametoindex(pct + 1);
      if (scope == 0) return invalid();
    }
  }
  std::array<uint8_t, 16> v6{};
  if (::inet_pton(AF_INET6, buf, v6.data()) != 1) return invalid();
  return ipv6(v6, port, scope);
}

result<socket_address> socket_address::parse(std::string_view text) noexcept {
  if (!text.empty() && text[0] == '/') return unix_path(text);
  if (!text.empty() && text[0] == '@') return unix_abstract(text.substr(1));
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return invalid();
    host = text.substr(1, close - 1);
    if (host.find(':') == std::string_view::npos) return invalid();  // "[1.2.3.4]:80"
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return invalid();
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return invalid();  // bare IPv6 needs brackets
    port = text.substr(colon + 1);
  }
  auto p = parse_port(port);
  if (!p) return fail(p.error());
  return parse_ip(host, *p);
}

result<socket_address> socket_address::unix_path(std::string_view path) noexcept {
  if (path.empty() || path.find('\0') != std::string_view::npos) return invalid();
  if (path.size() >= sun_path_size) return fail(std::errc::filename_too_long);
  socket_address a;
  auto* sun = reinterpret_cast<sockaddr_un*>(&a.storage_);
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, path.data(), path.size());
  a.len_ = static_cast<socklen_t>(sun_path_offset + path.size() + 1);
  return a;
}

result<socket_address> socket_address::unix_abstract(std::string_view name) noexcept {
  if (name.size() + 1 > sun_path_size) return fail(std::errc::filename_too_long);
  socket_address a;
  auto* sun = reinterpret_cast<sockaddr_un*>(&a.storage_);
  sun->sun_family = AF_UNIX;
  sun->sun_path[0] = '\0';
  std::memcpy(sun->sun_path + 1, name.data(), name.size());
  a.len_ = static_cast<socklen_t>(sun_path_offset + 1 + name.size());
  return a;
}

result<socket_address> socket_address::from_native(const sockaddr* addr, socklen_t len) noexcept {
  if (addr == nullptr || len > capacity()) return invalid();
  socket_address a;
  std::memcpy(&a.storage_, addr, len);
  a.len_ = len;
  return a;
}

bool socket_address::is_abstract() const noexcept {
  const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage_);
  return is_unix() && len_ > sun_path_offset && sun->sun_path[0] == '\0';
}

bool socket_address::is_unnamed() const noexcept { return is_unix() && len_ <= sun_path_offset; }

uint16_t socket_address::port() const noexcept {
  switch (family()) {
    case AF_INET: return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    case AF_INET6: return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    default: return 0;
  }
}

void socket_address::set_port(uint16_t port) noexcept {
  switch (family()) {
    case AF_INET: reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port); break;
    case AF_INET6: reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port); break;
    default: break;
  }
}

std::string socket_address::to_string() const {
  char buf[INET6_ADDRSTRLEN + 16];
  switch (family()) {
    case AF_INET: {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage_);
      ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
      return std::string(buf) + ":" + std::to_string(port());
    }
    case AF_INET6: {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
      ::inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
      // Appends only: g++ 12 -O3 warns falsely (-Wrestrict) on "x" + string&&.
      std::string s = "[";
      s += buf;
      if (sin6->sin6_scope_id != 0) {
        s += '%';
        s += std::to_string(sin6->sin6_scope_id);
      }
      s += "]:";
      s += std::to_string(port());
      return s;
    }
    case AF_UNIX: {
      if (is_unnamed()) return "(unnamed)";
      const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage_);
      const size_t n = len_ - sun_path_offset;
      if (is_abstract()) {
        std::string s = "@";
        s.append(sun->sun_path + 1, n - 1);
        return s;
      }
      // Paths from the kernel may or may not count the trailing NUL.
      return std::string(sun->sun_path, strnlen(sun->sun_path, n));
    }
    default: return "";
  }
}

bool operator==(const socket_address& a, const socket_address& b) noexcept {
  if (a.family() != b.family()) return false;
  switch (a.family()) {
    case AF_UNSPEC: return true;
    case AF_UNIX:
      if (a.is_abstract() || b.is_abstract() || a.is_unnamed() || b.is_unnamed()) {
        return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
      }
      return a.to_string() == b.to_string();
    case AF_INET: {
      const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage_);
      const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage_);
      return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AF_INET6: {
      const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage_);
      const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage_);
      return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
             std::memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
    }
    default: return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
  }
}

}  // namespace coil::net
