#include <sys/socket.h>

#include "coil/net/udp.hpp"
#include "coil/net/unix.hpp"

namespace coil::net {

result<void> datagram_socket::connect(const socket_address& peer) noexcept {
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  if (peer.family() == AF_UNSPEC) return from_syscall(::connect(fd(), &unspec, sizeof(unspec)));
  return from_syscall(::connect(fd(), peer.native(), peer.size()));
}

// ---- UDP ----------------------------------------------------------------------

result<udp_socket> udp_socket::bind(const socket_address& addr, const udp_options& opts) noexcept {
  if (!addr.is_ipv4() && !addr.is_ipv6()) return fail(std::errc::address_family_not_supported);
  auto fd = open_socket(addr.family(), SOCK_DGRAM);
  if (!fd) return fail(fd.error());
  udp_socket s(std::move(*fd));
  if (opts.reuse_addr) {
    if (auto r = s.set_option(SOL_SOCKET, SO_REUSEADDR, 1); !r) return fail(r.error());
  }
  if (opts.reuse_port) {
    if (auto r = s.set_option(SOL_SOCKET, SO_REUSEPORT, 1); !r) return fail(r.error());
  }
  if (addr.is_ipv6() && opts.v6_only) {
    if (auto r = s.set_option(IPPROTO_IPV6, IPV6_V6ONLY, 1); !r) return fail(r.error());
  }
  if (::bind(s.fd(), addr.native(), addr.size()) < 0) return fail(errno_code(errno));
  return s;
}

result<udp_socket> udp_socket::open(int family) noexcept {
  if (family != AF_INET && family != AF_INET6) return fail(std::errc::address_family_not_supported);
  auto fd = open_socket(family, SOCK_DGRAM);
  if (!fd) return fail(fd.error());
  return udp_socket(std::move(*fd));
}

result<udp_socket> udp_socket::connect_to(const socket_address& peer) noexcept {
  auto s = open(peer.family());
  if (!s) return s;
  if (auto r = s->connect(peer); !r) return fail(r.error());
  return s;
}

// ---- Unix datagram ---------------------------------------------------------------

result<unix_datagram> unix_datagram::bind(const socket_address& addr) noexcept {
  if (!addr.is_unix()) return fail(std::errc::address_family_not_supported);
  auto fd = open_socket(AF_UNIX, SOCK_DGRAM);
  if (!fd) return fail(fd.error());
  if (::bind(fd->get(), addr.native(), addr.size()) < 0) return fail(errno_code(errno));
  return unix_datagram(std::move(*fd));
}

result<unix_datagram> unix_datagram::unbound() noexcept {
  auto fd = open_socket(AF_UNIX, SOCK_DGRAM);
  if (!fd) return fail(fd.error());
  return unix_datagram(std::move(*fd));
}

result<std::pair<unix_datagram, unix_datagram>> unix_datagram::pair() noexcept {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) return fail(errno_code(errno));
  return std::pair<unix_datagram, unix_datagram>(unix_datagram(unique_fd(sv[0])), unix_datagram(unique_fd(sv[1])));
}

}  // namespace coil::net
