#include "coil/net/unix.hpp"

#include <sys/socket.h>

namespace coil::net {

task<result<unix_stream>> unix_stream::connect(socket_address addr) {
  if (!addr.is_unix()) co_return fail(std::errc::address_family_not_supported);
  co_return co_await connect_as<unix_stream>(addr);
}

result<std::pair<unix_stream, unix_stream>> unix_stream::pair() noexcept {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return fail(errno_code(errno));
  return std::pair<unix_stream, unix_stream>(unix_stream(unique_fd(sv[0])), unix_stream(unique_fd(sv[1])));
}

result<unix_listener> unix_listener::bind(const socket_address& addr, int backlog) noexcept {
  if (!addr.is_unix()) return fail(std::errc::address_family_not_supported);
  listen_options opts;
  opts.backlog = backlog;
  auto fd = detail::listen_on(addr, opts);
  if (!fd) return fail(fd.error());
  return unix_listener(std::move(*fd));
}

result<unix_listener> unix_listener::from_fd(unique_fd fd) noexcept {
  auto r = detail::adopt_listener(std::move(fd));
  if (!r) return fail(r.error());
  return unix_listener(std::move(*r));
}

}  // namespace coil::net
