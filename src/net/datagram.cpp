#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "coil/net/udp.hpp"
#include "coil/net/unix.hpp"

namespace coil::net {

result<void> datagram_socket::connect(const socket_address& peer) noexcept {
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  if (peer.family() == AF_UNSPEC) return from_syscall(::connect(fd(), &unspec, sizeof(unspec)));
  return from_syscall(::connect(fd(), peer.native(), peer.size()));
}

namespace {

// Datagrams per sendmmsg/recvmmsg call: the headers live in the frame.
constexpr size_t batch_chunk = 32;

// h carries one buffer and (for recv: room for) a peer address; the rest of
// h is zeroed here, so a call clears only the headers it uses.
void one_buffer(mmsghdr& h, iovec& v, std::byte* data, size_t len, sockaddr* name, socklen_t namelen) noexcept {
  h = {};
  v = {data, len};
  h.msg_hdr.msg_iov = &v;
  h.msg_hdr.msg_iovlen = 1;
  h.msg_hdr.msg_name = name;
  h.msg_hdr.msg_namelen = namelen;
}

// recvmmsg without waiting into batch; how many were filled, 0 if none was
// queued, or the error.
result<size_t> take_queued(int fd, std::span<incoming_datagram> batch) noexcept {
  size_t got = 0;
  while (got < batch.size()) {
    mmsghdr hdr[batch_chunk];
    iovec iov[batch_chunk];
    const size_t n = std::min(batch_chunk, batch.size() - got);
    for (size_t k = 0; k < n; ++k) {
      incoming_datagram& d = batch[got + k];
      one_buffer(hdr[k], iov[k], d.buf.data(), d.buf.size(), d.from.native(), socket_address::capacity());
    }
    const int r = ::recvmmsg(fd, hdr, static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || got > 0) break;  // a later error shows on the next call
      return fail(errno_code(errno));
    }
    for (int k = 0; k < r; ++k) {
      incoming_datagram& d = batch[got + static_cast<size_t>(k)];
      d.from.resize(hdr[k].msg_hdr.msg_namelen);
      d.size = std::min<size_t>(hdr[k].msg_len, d.buf.size());
      d.truncated = (hdr[k].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    }
    got += static_cast<size_t>(r);
    if (static_cast<size_t>(r) < n) break;  // the queue is empty
  }
  return got;
}

}  // namespace

task<result<size_t>> datagram_socket::send_batch(std::span<outgoing_datagram> batch) {
  size_t sent = 0;
  size_t i = 0;
  while (i < batch.size()) {
    mmsghdr hdr[batch_chunk];
    iovec iov[batch_chunk];
    const size_t n = std::min(batch_chunk, batch.size() - i);
    for (size_t k = 0; k < n; ++k) {
      const outgoing_datagram& d = batch[i + k];
      one_buffer(hdr[k], iov[k], const_cast<std::byte*>(d.data.data()), d.data.size(),
                 d.to != nullptr ? const_cast<sockaddr*>(d.to->native()) : nullptr, d.to != nullptr ? d.to->size() : 0);
    }
    const int r = ::sendmmsg(fd(), hdr, static_cast<unsigned>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      for (size_t k = 0; k < static_cast<size_t>(r); ++k) batch[i + k].error = {};
      sent += static_cast<size_t>(r);
      i += static_cast<size_t>(r);
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    outgoing_datagram& d = batch[i];
    if (err != EAGAIN) {
      d.error = errno_code(err);  // this one fails; the rest still go
      ++i;
      continue;
    }
    // The socket is full: wait through the ring until this one goes.
    result<size_t> w = fail(std::errc::resource_unavailable_try_again);
    if (d.to != nullptr) {
      w = co_await send_to(d.data, *d.to);
    } else {
      w = co_await send(d.data);
    }
    if (!w && w.error() == std::errc::operation_canceled) co_return fail(w.error());
    d.error = w ? std::error_code{} : w.error();
    sent += w ? 1 : 0;
    ++i;
  }
  co_return sent;
}

task<result<size_t>> datagram_socket::recv_batch(std::span<incoming_datagram> batch) {
  if (batch.empty()) co_return size_t{0};
  auto queued = take_queued(fd(), batch);
  if (!queued || *queued > 0) co_return queued;
  incoming_datagram& first = batch[0];
  auto r = co_await recv_from(first.buf, first.from);
  if (!r) co_return fail(r.error());
  first.size = r->size;
  first.truncated = r->truncated;
  auto more = take_queued(fd(), batch.subspan(1));
  co_return 1 + (more ? *more : 0);
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
