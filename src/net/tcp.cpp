#include "coil/net/tcp.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <optional>

#include "coil/net/resolve.hpp"
#include "coil/rt/when.hpp"

namespace coil::net {

namespace detail {

result<unique_fd> adopt_listener(unique_fd fd) noexcept {
  const int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl | O_NONBLOCK) < 0) return fail(errno_code(errno));
  return fd;
}

result<unique_fd> listen_on(const socket_address& addr, const listen_options& opts) noexcept {
  if (addr.family() == AF_UNSPEC) return fail(std::errc::invalid_argument);
  auto fd = open_socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK);
  if (!fd) return fail(fd.error());
  const int one = 1;
  auto opt = [&](int level, int name, bool on) noexcept -> result<void> {
    if (!on) return {};
    return from_syscall(::setsockopt(fd->get(), level, name, &one, sizeof(one)));
  };
  const bool inet = addr.is_ipv4() || addr.is_ipv6();
  if (auto r = opt(SOL_SOCKET, SO_REUSEADDR, inet && opts.reuse_addr); !r) return fail(r.error());
  if (auto r = opt(SOL_SOCKET, SO_REUSEPORT, inet && opts.reuse_port); !r) return fail(r.error());
  if (auto r = opt(IPPROTO_IPV6, IPV6_V6ONLY, addr.is_ipv6() && opts.v6_only); !r) return fail(r.error());
  if (::bind(fd->get(), addr.native(), addr.size()) < 0) return fail(errno_code(errno));
  if (::listen(fd->get(), opts.backlog) < 0) return fail(errno_code(errno));
  return fd;
}

}  // namespace detail

task<result<tcp_stream>> tcp_stream::connect(socket_address addr) {
  if (!addr.is_ipv4() && !addr.is_ipv6()) co_return fail(std::errc::address_family_not_supported);
  co_return co_await connect_as<tcp_stream>(addr);
}

task<result<tcp_stream>> tcp_stream::connect(socket_address addr, duration_ns timeout) {
  co_return co_await with_timeout(connect(addr), timeout);
}

namespace {

task<result<tcp_stream>> connect_in_turn(std::vector<socket_address> addrs, std::optional<duration_ns> timeout) {
  std::error_code last = resolve_errc::host_not_found;
  for (const socket_address& a : addrs) {
    task<result<tcp_stream>> attempt = timeout ? tcp_stream::connect(a, *timeout) : tcp_stream::connect(a);
    result<tcp_stream> s = co_await std::move(attempt);
    if (s) co_return std::move(*s);
    last = s.error();
    if (last == std::errc::operation_canceled) break;
  }
  co_return fail(last);
}

task<result<tcp_stream>> resolve_and_connect(std::string host, uint16_t port, std::optional<duration_ns> timeout) {
  auto addrs = co_await resolve(std::move(host), port);
  if (!addrs) co_return fail(addrs.error());
  co_return co_await connect_in_turn(std::move(*addrs), timeout);
}

}  // namespace

task<result<tcp_stream>> tcp_stream::connect(std::vector<socket_address> addrs, duration_ns timeout) {
  return connect_in_turn(std::move(addrs), timeout);
}

task<result<tcp_stream>> tcp_stream::connect(std::string host, uint16_t port) {
  return resolve_and_connect(std::move(host), port, std::nullopt);
}

task<result<tcp_stream>> tcp_stream::connect(std::string host, uint16_t port, duration_ns timeout) {
  return resolve_and_connect(std::move(host), port, timeout);
}

result<void> tcp_stream::set_nodelay(bool on) noexcept { return set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }

result<bool> tcp_stream::nodelay() const noexcept {
  return get_option(IPPROTO_TCP, TCP_NODELAY).map([](int v) { return v != 0; });
}

result<void> tcp_stream::set_keepalive(bool on, int idle_s, int interval_s, int count) noexcept {
  if (auto r = set_option(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0); !r) return r;
  if (idle_s > 0) {
    if (auto r = set_option(IPPROTO_TCP, TCP_KEEPIDLE, idle_s); !r) return r;
  }
  if (interval_s > 0) {
    if (auto r = set_option(IPPROTO_TCP, TCP_KEEPINTVL, interval_s); !r) return r;
  }
  if (count > 0) {
    if (auto r = set_option(IPPROTO_TCP, TCP_KEEPCNT, count); !r) return r;
  }
  return {};
}

result<bool> tcp_stream::keepalive() const noexcept {
  return get_option(SOL_SOCKET, SO_KEEPALIVE).map([](int v) { return v != 0; });
}

result<void> tcp_stream::set_linger_reset() noexcept {
  const linger l{1, 0};
  return from_syscall(::setsockopt(fd(), SOL_SOCKET, SO_LINGER, &l, sizeof(l)));
}

result<tcp_listener> tcp_listener::bind(const socket_address& addr, const listen_options& opts) noexcept {
  if (!addr.is_ipv4() && !addr.is_ipv6()) return fail(std::errc::address_family_not_supported);
  auto fd = detail::listen_on(addr, opts);
  if (!fd) return fail(fd.error());
  return tcp_listener(std::move(*fd));
}

result<tcp_listener> tcp_listener::from_fd(unique_fd fd) noexcept {
  auto r = detail::adopt_listener(std::move(fd));
  if (!r) return fail(r.error());
  return tcp_listener(std::move(*r));
}

}  // namespace coil::net
