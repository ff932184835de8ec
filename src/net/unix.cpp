#include "coil/net/unix.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

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

result<ucred> detail::peer_credentials(const socket& s) noexcept {
  ucred c{};
  socklen_t len = sizeof c;
  if (::getsockopt(s.fd(), SOL_SOCKET, SO_PEERCRED, &c, &len) < 0) return fail(errno_code(errno));
  return c;
}

namespace {
// Room for the most descriptors one message may carry.
constexpr size_t max_passed_fds = unix_extras<unix_stream, true>::max_passed_fds;
constexpr size_t control_bytes = CMSG_SPACE(sizeof(int) * max_passed_fds);
}  // namespace

task<result<size_t>> detail::send_with_fds(socket& s, std::span<const std::byte> data, std::span<const int> fds,
                                           bool needs_bytes) {
  if ((needs_bytes && data.empty()) || fds.size() > max_passed_fds) co_return fail(std::errc::invalid_argument);
  alignas(cmsghdr) std::byte control[control_bytes]{};
  iovec iov{const_cast<std::byte*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  co_return co_await s.sendmsg(msg);
}

task<result<fds_received>> detail::recv_with_fds(socket& s, std::span<std::byte> buf, std::span<unique_fd> fds) {
  alignas(cmsghdr) std::byte control[control_bytes];
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * std::min(fds.size(), max_passed_fds));
    std::memset(control, 0, msg.msg_controllen);  // never parse stale bytes as descriptors
  }
  auto n = co_await s.recvmsg(msg);
  if (!n) co_return fail(n.error());
  fds_received out;
  out.bytes = *n;
  out.truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  out.bytes_truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  ops::recvmsg::for_each_passed_fd(msg, [&](int passed) {
    if (out.fds < fds.size()) {
      fds[out.fds++] = unique_fd(passed);
    } else {
      (void)::close(passed);
      out.truncated = true;
    }
  });
  co_return out;
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
