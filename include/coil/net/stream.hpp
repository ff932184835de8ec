#pragma once
// stream_socket: the byte-stream operations shared by TCP and Unix stream
// sockets. Buffers (and iovec arrays) must stay valid until awaited.
#include <sys/uio.h>

#include <cstddef>
#include <span>

#include "coil/net/multishot.hpp"
#include "coil/net/socket.hpp"
#include "coil/rt/task.hpp"

namespace coil::net {

// Byte-stream operations of TCP and Unix stream sockets.
class stream_socket : public socket {
 public:
  using socket::socket;

  // One recv/send; may transfer less than asked. recv gives 0 at end of
  // stream. flags are MSG_* extras (MSG_NOSIGNAL is always added to sends).
  socket_op<ops::recv> recv(std::span<std::byte> buf, int flags = 0) noexcept {
    return make(ops::recv{fd(), buf.data(), clamp(buf.size()), flags});
  }
  // One send; may be short.
  socket_op<ops::send> send(std::span<const std::byte> buf, int flags = 0) noexcept {
    return make(ops::send{fd(), buf.data(), clamp(buf.size()), flags});
  }
  // Multishot recv into ring's buffers: a stream of received buffers (see
  // net/multishot.hpp). Idle, it holds no buffer.
  recv_stream recv_multishot(buffer_ring& ring, int flags = 0) noexcept { return recv_stream(fd(), ring, flags, &pending_); }
  // Zero-copy send where io_uring has it (6.0+), else a plain send. Completes
  // once the kernel no longer reads buf.
  socket_op<ops::send_zc> send_zc(std::span<const std::byte> buf, int flags = 0) noexcept {
    return make(ops::send_zc{fd(), buf.data(), clamp(buf.size()), flags, zero_copy_available()});
  }
  // Vectored: one recvmsg/sendmsg over iov.
  socket_op<ops::recvv> recvv(std::span<const iovec> iov, int flags = 0) noexcept {
    return make(ops::recvv{fd(), iov.data(), static_cast<uint32_t>(iov.size()), flags});
  }
  // Vectored: one sendmsg over iov.
  socket_op<ops::sendv> sendv(std::span<const iovec> iov, int flags = 0) noexcept {
    return make(ops::sendv{fd(), iov.data(), static_cast<uint32_t>(iov.size()), flags});
  }

  // Loops over short transfers. recv_exact fails with errc::unexpected_eof if
  // the stream ends first (bytes before that are in buf); send_all with
  // errc::write_zero if the kernel accepts nothing.
  task<result<void>> recv_exact(std::span<std::byte> buf);
  // Sends all of buf, looping over short sends.
  task<result<void>> send_all(std::span<const std::byte> buf);
  // Same over an iovec array; iov is copied, the buffers are not.
  task<result<void>> recvv_exact(std::span<const iovec> iov);
  task<result<void>> sendv_all(std::span<const iovec> iov);
  // send_all over send_zc: no copy of buf into the kernel where supported.
  task<result<void>> send_all_zc(std::span<const std::byte> buf);
  // The current runtime's driver can send zero-copy.
  static bool zero_copy_available() noexcept;

 protected:
  // Creates a Stream socket for addr's family and connects it.
  template <class Stream>
  static task<result<Stream>> connect_as(socket_address addr) {
    auto fd = open_socket(addr.family(), SOCK_STREAM);
    if (!fd) co_return fail(fd.error());
    Stream s(std::move(*fd));
    auto r = co_await s.make(ops::connect{s.fd(), addr.native(), addr.size()});
    if (!r) co_return fail(r.error());
    co_return std::move(s);
  }
};

}  // namespace coil::net
