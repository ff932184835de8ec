#include "coil/net/resolve.hpp"

#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <memory>

#include "coil/rt/blocking.hpp"

namespace coil::net {

namespace {

class resolve_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "coil.resolve"; }
  std::string message(int code) const override { return ::gai_strerror(-code); }
};

std::error_code gai_error(int eai, int saved_errno) noexcept {
  switch (eai) {
    case EAI_SYSTEM:
      return errno_code(saved_errno != 0 ? saved_errno : EIO);
    case EAI_MEMORY:
      return std::make_error_code(std::errc::not_enough_memory);
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
      return resolve_errc::host_not_found;
    default:
      return {-eai, resolve_category()};
  }
}

// An IP literal of an acceptable family, resolved without getaddrinfo.
bool literal(std::string_view host, uint16_t port, int family, socket_address& out) noexcept {
  if (host.empty()) return false;
  auto a = socket_address::parse_ip(host, port);
  if (!a || (family != AF_UNSPEC && a->family() != family)) return false;
  out = *a;
  return true;
}

}  // namespace

const std::error_category& resolve_category() noexcept {
  static const resolve_category_impl c;
  return c;
}

result<std::vector<socket_address>> resolve_now(std::string_view host, uint16_t port, const resolve_options& opts) {
  if (socket_address a; literal(host, port, opts.family, a)) return std::vector<socket_address>{a};
  addrinfo hints{};
  hints.ai_family = opts.family;
  hints.ai_socktype = opts.socktype;
  hints.ai_flags = AI_NUMERICSERV | (opts.passive ? AI_PASSIVE : 0) | (opts.numeric_only ? AI_NUMERICHOST : 0) |
                   (opts.configured_only ? AI_ADDRCONFIG : 0);
  const std::string name(host);  // getaddrinfo wants it NUL-terminated
  const std::string service = std::to_string(port);
  addrinfo* list = nullptr;
  errno = 0;
  if (int r = ::getaddrinfo(name.empty() ? nullptr : name.c_str(), service.c_str(), &hints, &list); r != 0) {
    return fail(gai_error(r, errno));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(list, ::freeaddrinfo);
  std::vector<socket_address> out;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    auto a = socket_address::from_native(ai->ai_addr, ai->ai_addrlen);
    // Socket type 0 lists each address once per type; keep the first.
    if (a && std::find(out.begin(), out.end(), *a) == out.end()) out.push_back(*a);
  }
  if (out.empty()) return fail(resolve_errc::host_not_found);
  return out;
}

task<result<std::vector<socket_address>>> resolve(std::string host, uint16_t port, resolve_options opts) {
  if (socket_address a; literal(host, port, opts.family, a)) co_return std::vector<socket_address>{a};
  co_return co_await spawn_blocking(
      [](const std::string& h, uint16_t p, const resolve_options& o) { return resolve_now(h, p, o); }, std::move(host),
      port, opts);
}

result<host_port> split_host_port(std::string_view text) noexcept {
  host_port out;
  std::string_view port;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") return fail(std::errc::invalid_argument);
    out.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.find(':');
    // More than one colon and no brackets: an IPv6 literal that swallowed the port.
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
      return fail(std::errc::invalid_argument);
    }
    out.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
    return fail(std::errc::invalid_argument);
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

}  // namespace coil::net
