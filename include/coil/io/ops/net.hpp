#pragma once
// Socket operations. Sockets always use the send/recv family (never
// read/write), and every send carries MSG_NOSIGNAL: a closed peer is an EPIPE
// value, never a SIGPIPE.
//
// Readiness (perform(true)): sockets stay in blocking mode, so recv/send-style
// calls get MSG_DONTWAIT per call. connect and accept have no such flag:
//  - connect briefly sets O_NONBLOCK around the call (a Unix connect to a full
//    backlog gives ops::retry_later: nothing signals room, so the driver polls) (the socket is not shared
//    while it connects). The first attempt starts the handshake (EINPROGRESS);
//    once EPOLLOUT fires, calling connect again reports the outcome: 0 (or
//    EISCONN) when established, the handshake's error (ECONNREFUSED...) when
//    it failed, EALREADY while still in progress. That keeps the op stateless
//    apart from one flag, and needs no separate SO_ERROR query.
//  - accept needs a listener in O_NONBLOCK mode (coil's listeners are; io_uring
//    ignores the flag for accept and still waits).
// Ops holding a msghdr of their own (send_to, recv_from, sendv, recvv) fill it
// in prep/perform, on the copy the driver owns, so it stays valid while the
// kernel may read it.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "coil/core/unique_fd.hpp"
#include "coil/io/ops/common.hpp"

namespace coil {
class buffer_ring;  // io/buffer_ring.hpp
}  // namespace coil

namespace coil::ops {

namespace detail {
inline int dontwait(bool nowait) noexcept { return nowait ? MSG_DONTWAIT : 0; }
// A recv with these flags takes from the receive queue (peeking, OOB and
// error-queue reads say nothing about what is left in it).
inline bool reads_queue(int flags) noexcept { return (flags & (MSG_PEEK | MSG_OOB | MSG_ERRQUEUE)) == 0; }
// A msghdr over iov (and, for datagrams, a peer address).
inline msghdr msg_over(const iovec* iov, uint32_t iovcnt, const sockaddr* name = nullptr,
                       socklen_t namelen = 0) noexcept {
  msghdr m{};
  m.msg_name = const_cast<sockaddr*>(name);
  m.msg_namelen = namelen;
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = iovcnt;
  return m;
}
inline result<unique_fd> to_fd(int32_t res) noexcept {
  if (res < 0) return fail(kernel_error(res));
  return unique_fd(res);
}
}  // namespace detail

// socket(2); the descriptor is close-on-exec. Never blocks.
// Errors: EAFNOSUPPORT, EPROTONOSUPPORT, EINVAL, EACCES, EMFILE/ENFILE, ENOBUFS/ENOMEM.
struct socket {
  static constexpr uint8_t opcode = IORING_OP_SOCKET;
  static constexpr uint32_t poll_events = 0;
  static constexpr bool never_blocks = true;
  static constexpr bool yields_fd = true;
  int fd = -1;
  int domain;
  int type;
  int protocol;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_socket(&s, domain, type | SOCK_CLOEXEC, protocol, 0); }
  int32_t perform(bool) const noexcept { return detail::kernel_ret(::socket(domain, type | SOCK_CLOEXEC, protocol)); }
  static result<unique_fd> complete(int32_t res) noexcept { return detail::to_fd(res); }
};

// Errors: ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL,
// EISCONN, ENOENT/EACCES (Unix path), EAFNOSUPPORT.
struct connect {
  static constexpr uint8_t opcode = IORING_OP_CONNECT;
  static constexpr uint32_t poll_events = EPOLLOUT;
  static constexpr bool waits_on_peer = true;
  int fd;
  const sockaddr* addr;  // must stay valid until the op completes
  socklen_t addrlen;
  mutable bool started = false;  // a handshake is in progress (readiness path)
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_connect(&s, fd, addr, addrlen); }
  int32_t perform(bool nowait) const noexcept {
    if (!nowait) return detail::kernel_ret(::connect(fd, addr, addrlen));
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) return -errno;
    if ((fl & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
    const int r = detail::kernel_ret(::connect(fd, addr, addrlen));
    if ((fl & O_NONBLOCK) == 0) (void)::fcntl(fd, F_SETFL, fl);
    if (r == -EINPROGRESS || r == -EALREADY) {
      started = true;
      return -EAGAIN;
    }
    // A Unix listener's full backlog: the socket stays writable, so no
    // readiness edge will announce room.
    if (r == -EAGAIN) return retry_later;
    if (r == -EISCONN && started) return 0;  // established between our calls
    return r;
  }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

// accept4 with SOCK_CLOEXEC; addr/addrlen may be null.
// Errors: EINVAL (not listening), ECONNABORTED, EMFILE/ENFILE, ENOBUFS/ENOMEM, ENOTSOCK.
struct accept {
  static constexpr uint8_t opcode = IORING_OP_ACCEPT;
  static constexpr uint32_t poll_events = EPOLLIN;
  static constexpr bool waits_on_peer = true;
  static constexpr bool yields_fd = true;
  int fd;
  sockaddr* addr;
  socklen_t* addrlen;  // in: room at addr; out: the peer address's length
  int flags = 0;       // SOCK_NONBLOCK for the new socket, if wanted
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_accept(&s, fd, addr, addrlen, flags | SOCK_CLOEXEC); }
  int32_t perform(bool) const noexcept {
    return detail::kernel_ret(::accept4(fd, addr, addrlen, flags | SOCK_CLOEXEC));
  }
  static result<unique_fd> complete(int32_t res) noexcept { return detail::to_fd(res); }
};

// Multishot accept (io_uring 5.19+): armed once, one result per incoming
// connection (the owner's on_cqe takes each; see net::accept_stream).
// Errors: as accept, each ending the op.
struct accept_multishot {
  static constexpr uint8_t opcode = IORING_OP_ACCEPT;
  static constexpr uint32_t poll_events = EPOLLIN;
  static constexpr bool waits_on_peer = true;
  static constexpr bool multishot = true;
  int fd;
  int flags = 0;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_multishot_accept(&s, fd, nullptr, nullptr, flags | SOCK_CLOEXEC);
  }
  int32_t perform(bool) const noexcept {
    return detail::kernel_ret(::accept4(fd, nullptr, nullptr, flags | SOCK_CLOEXEC));
  }
  static result<unique_fd> complete(int32_t res) noexcept { return detail::to_fd(res); }
};

// Multishot recv into provided buffers (io_uring 6.0+): each result names the
// buffer the kernel picked (IORING_CQE_F_BUFFER, id in the upper 16 bits of
// the CQE flags). 0 is the end of the stream; ENOBUFS ends it when the ring
// is empty. Readiness drivers take a buffer from the ring per attempt.
// Errors: as recv.
struct recv_multishot {
  static constexpr uint8_t opcode = IORING_OP_RECV;
  static constexpr uint32_t poll_events = EPOLLIN;
  static constexpr bool waits_on_peer = true;
  static constexpr bool multishot = true;
  static constexpr bool zero_ends = true;
  int fd;
  bool short_means_empty = false;  // see recv (here: in fd's padding, idle streams stay small)
  buffer_ring* ring = nullptr;
  int flags = 0;
  mutable uint32_t out_flags = 0;  // readiness path: the CQE flags io_uring would give
  // Out of line (src/driver/buffer_ring.cpp): the op layer names the ring
  // but does not depend on its definition.
  void prep(io_uring_sqe& s) const noexcept;
  int32_t perform(bool nowait) const noexcept;
  bool reads_to_empty() const noexcept { return short_means_empty && detail::reads_queue(flags); }
  bool emptied(int32_t r) const noexcept;
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

// send, zero-copy when zc is set (io_uring 6.0+): the kernel sends from buf
// itself and posts a second completion when it no longer needs it; the op
// completes only then, so buf may be reused as soon as the await returns.
// Without zc (or on readiness drivers) it is a plain send.
// Errors: as send.
struct send_zc {
  static constexpr uint8_t opcode = IORING_OP_SEND;  // the fallback's: always there
  static constexpr uint32_t poll_events = EPOLLOUT;
  static constexpr bool waits_on_peer = true;
  int fd;
  const void* buf;
  uint32_t len;
  int flags = 0;
  bool zc = true;
  void prep(io_uring_sqe& s) const noexcept {
    if (zc) {
      io_uring_prep_send_zc(&s, fd, buf, len, flags | MSG_NOSIGNAL, 0);
    } else {
      io_uring_prep_send(&s, fd, buf, len, flags | MSG_NOSIGNAL);
    }
  }
  int32_t perform(bool nowait) const noexcept {
    return detail::kernel_ret(::send(fd, buf, len, flags | MSG_NOSIGNAL | detail::dontwait(nowait)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

// Errors: EPIPE (peer gone; never SIGPIPE), ECONNRESET, ENOTCONN, EMSGSIZE (datagram
// too big), EDESTADDRREQ, ENOBUFS, ECONNREFUSED (datagram peer unreachable).
struct send {
  static constexpr uint8_t opcode = IORING_OP_SEND;
  static constexpr uint32_t poll_events = EPOLLOUT;
  static constexpr bool waits_on_peer = true;
  static constexpr bool eager = true;
  int fd;
  const void* buf;
  uint32_t len;
  int flags = 0;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_send(&s, fd, buf, len, flags | MSG_NOSIGNAL); }
  int32_t perform(bool nowait) const noexcept {
    return detail::kernel_ret(::send(fd, buf, len, flags | MSG_NOSIGNAL | detail::dontwait(nowait)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

// Errors: ECONNRESET, ENOTCONN, ECONNREFUSED (datagram peer unreachable),
// ETIMEDOUT (keepalive). A result of 0 is the end of the stream.
struct recv {
  static constexpr uint8_t opcode = IORING_OP_RECV;
  static constexpr uint32_t poll_events = EPOLLIN;
  static constexpr bool waits_on_peer = true;
  int fd;
  void* buf;
  uint32_t len;
  int flags = 0;
  // TCP: a read comes back short only at the end of what is queued, an
  // urgent mark or the end of stream (readiness drivers skip the next try).
  // Not Unix streams: their reads also stop at other writers' credentials
  // and at passed descriptors, with more queued.
  bool short_means_empty = false;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_recv(&s, fd, buf, len, flags); }
  int32_t perform(bool nowait) const noexcept {
    return detail::kernel_ret(::recv(fd, buf, len, flags | detail::dontwait(nowait)));
  }
  bool reads_to_empty() const noexcept { return short_means_empty && detail::reads_queue(flags); }
  bool emptied(int32_t r) const noexcept {
    return reads_to_empty() && (r == -EAGAIN || (r > 0 && static_cast<uint32_t>(r) < len));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

// The caller's msghdr (and everything it points to) must outlive the op.
// Errors: as send, plus EINVAL for bad control data.
struct sendmsg {
  static constexpr uint8_t opcode = IORING_OP_SENDMSG;
  static constexpr uint32_t poll_events = EPOLLOUT;
  static constexpr bool waits_on_peer = true;
  int fd;
  const msghdr* msg;
  int flags = 0;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_sendmsg(&s, fd, msg, static_cast<unsigned>(flags | MSG_NOSIGNAL));
  }
  int32_t perform(bool nowait) const noexcept {
    return detail::kernel_ret(::sendmsg(fd, msg, flags | MSG_NOSIGNAL | detail::dontwait(nowait)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

// Descriptors received in msg's control data (SCM_RIGHTS) are close-on-exec
// (MSG_CMSG_CLOEXEC, always). A result nobody takes (the awaiting frame was
// destroyed, or the socket closed, after the kernel had delivered) has its
// descriptors closed by discard, so they never leak.
// Errors: as recv; truncated control data sets MSG_CTRUNC, not an error.
struct recvmsg {
  static constexpr uint8_t opcode = IORING_OP_RECVMSG;
  static constexpr uint32_t poll_events = EPOLLIN;
  static constexpr bool waits_on_peer = true;
  int fd;
  msghdr* msg;  // msg_namelen, msg_controllen and msg_flags are updated
  int flags = 0;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_recvmsg(&s, fd, msg, static_cast<unsigned>(flags | MSG_CMSG_CLOEXEC));
  }
  int32_t perform(bool nowait) const noexcept {
    return detail::kernel_ret(::recvmsg(fd, msg, flags | MSG_CMSG_CLOEXEC | detail::dontwait(nowait)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
  void discard(int32_t res) const noexcept {
    if (res >= 0) for_each_passed_fd(*msg, [](int passed) { (void)::close(passed); });
  }
  // Calls f(int) for each descriptor in m's SCM_RIGHTS control data.
  template <class F>
  static void for_each_passed_fd(msghdr& m, F&& f) noexcept {
    if (m.msg_control == nullptr) return;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; ++i) {
        int passed;
        std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
        f(passed);
      }
    }
  }
};

// Vectored send/recv: sendmsg/recvmsg over the caller's iovec array, with the
// msghdr kept in the op.
// Errors: as send.
struct sendv {
  static constexpr uint8_t opcode = IORING_OP_SENDMSG;
  static constexpr uint32_t poll_events = EPOLLOUT;
  static constexpr bool waits_on_peer = true;
  static constexpr bool eager = true;
  int fd;
  const iovec* iov;
  uint32_t iovcnt;
  int flags = 0;
  mutable msghdr msg_{};
  void prep(io_uring_sqe& s) const noexcept {
    fill();
    io_uring_prep_sendmsg(&s, fd, &msg_, static_cast<unsigned>(flags | MSG_NOSIGNAL));
  }
  int32_t perform(bool nowait) const noexcept {
    fill();
    return detail::kernel_ret(::sendmsg(fd, &msg_, flags | MSG_NOSIGNAL | detail::dontwait(nowait)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }

 private:
  void fill() const noexcept { msg_ = detail::msg_over(iov, iovcnt); }
};

// Errors: as recv.
struct recvv {
  static constexpr uint8_t opcode = IORING_OP_RECVMSG;
  static constexpr uint32_t poll_events = EPOLLIN;
  static constexpr bool waits_on_peer = true;
  int fd;
  const iovec* iov;
  uint32_t iovcnt;
  int flags = 0;
  bool short_means_empty = false;  // see recv
  mutable msghdr msg_{};
  void prep(io_uring_sqe& s) const noexcept {
    fill();
    io_uring_prep_recvmsg(&s, fd, &msg_, static_cast<unsigned>(flags));
  }
  int32_t perform(bool nowait) const noexcept {
    fill();
    return detail::kernel_ret(::recvmsg(fd, &msg_, flags | detail::dontwait(nowait)));
  }
  bool reads_to_empty() const noexcept { return short_means_empty && detail::reads_queue(flags); }
  bool emptied(int32_t r) const noexcept {
    if (!reads_to_empty()) return false;
    if (r == -EAGAIN) return true;
    if (r <= 0) return false;
    size_t room = 0;
    for (uint32_t i = 0; i < iovcnt; ++i) room += iov[i].iov_len;
    return static_cast<size_t>(r) < room;
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }

 private:
  void fill() const noexcept { msg_ = detail::msg_over(iov, iovcnt); }
};

// One datagram to addr (addrlen 0: the connected peer).
// Errors: as send, plus EAFNOSUPPORT/EINVAL for a bad address.
struct send_to {
  static constexpr uint8_t opcode = IORING_OP_SENDMSG;
  static constexpr uint32_t poll_events = EPOLLOUT;
  static constexpr bool waits_on_peer = true;
  int fd;
  const void* buf;
  uint32_t len;
  const sockaddr* addr;
  socklen_t addrlen;
  int flags = 0;
  mutable iovec iov_{};
  mutable msghdr msg_{};
  void prep(io_uring_sqe& s) const noexcept {
    fill();
    io_uring_prep_sendmsg(&s, fd, &msg_, static_cast<unsigned>(flags | MSG_NOSIGNAL));
  }
  int32_t perform(bool nowait) const noexcept {
    fill();
    return detail::kernel_ret(::sendmsg(fd, &msg_, flags | MSG_NOSIGNAL | detail::dontwait(nowait)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }

 private:
  void fill() const noexcept {
    iov_ = iovec{const_cast<void*>(buf), len};
    msg_ = detail::msg_over(&iov_, 1, addr, addrlen);
  }
};

// One datagram and its sender. After completion, msg_.msg_namelen holds the
// sender address's length and msg_.msg_flags tells truncation (MSG_TRUNC).
// Errors: as recv.
struct recv_from {
  static constexpr uint8_t opcode = IORING_OP_RECVMSG;
  static constexpr uint32_t poll_events = EPOLLIN;
  static constexpr bool waits_on_peer = true;
  int fd;
  void* buf;
  uint32_t len;
  sockaddr* addr;
  socklen_t addrlen;  // room at addr
  int flags = 0;
  mutable iovec iov_{};
  mutable msghdr msg_{};
  void prep(io_uring_sqe& s) const noexcept {
    fill();
    io_uring_prep_recvmsg(&s, fd, &msg_, static_cast<unsigned>(flags));
  }
  int32_t perform(bool nowait) const noexcept {
    fill();
    return detail::kernel_ret(::recvmsg(fd, &msg_, flags | detail::dontwait(nowait)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }

 private:
  void fill() const noexcept {
    iov_ = iovec{buf, len};
    msg_ = detail::msg_over(&iov_, 1, addr, addrlen);
  }
};

// Errors: ENOTCONN, EINVAL (bad how), ENOTSOCK.
struct shutdown {
  static constexpr uint8_t opcode = IORING_OP_SHUTDOWN;
  static constexpr uint32_t poll_events = 0;
  static constexpr bool never_blocks = true;
  int fd;
  int how;  // SHUT_RD, SHUT_WR, SHUT_RDWR
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_shutdown(&s, fd, how); }
  int32_t perform(bool) const noexcept { return detail::kernel_ret(::shutdown(fd, how)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

}  // namespace coil::ops
