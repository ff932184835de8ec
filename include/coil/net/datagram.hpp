#pragma once
// datagram_socket: message operations shared by UDP and Unix datagram
// sockets. One send is one datagram; one recv takes one datagram, and a
// datagram longer than the buffer is truncated (recv_from reports it).
// Buffers and addresses must stay valid until awaited.
#include <cstddef>
#include <span>
#include <system_error>

#include "coil/net/socket.hpp"
#include "coil/rt/task.hpp"

namespace coil::net {

// recv_from's result: the datagram's size and whether it was cut short.
struct datagram_info {
  size_t size = 0;
  bool truncated = false;  // the datagram was longer than the buffer
};

// Fills the sender's address (and the truncation flag) after completion. A
// sender without an address (an unbound Unix socket) leaves it empty
// (AF_UNSPEC, size 0).
class [[nodiscard]] recv_from_op : public socket_op<ops::recv_from> {
 public:
  recv_from_op(ops::recv_from op, detail::pending_list* owner, socket_address* from) noexcept
      : socket_op(op, owner), from_(from) {}
  result<datagram_info> await_resume() noexcept { return finish(socket_op::await_resume()); }
  result<datagram_info> perform_blocking() noexcept { return finish(socket_op::perform_blocking()); }

 private:
  result<datagram_info> finish(result<size_t> r) noexcept {
    if (!r) return fail(r.error());
    from_->resize(op().msg_.msg_namelen);
    return datagram_info{*r, (op().msg_.msg_flags & MSG_TRUNC) != 0};
  }

  socket_address* from_;
};

// One datagram of send_batch.
struct outgoing_datagram {
  std::span<const std::byte> data;
  const socket_address* to = nullptr;  // null: the connected peer
  std::error_code error;               // out: why it was not sent; empty once sent
};

// One datagram of recv_batch.
struct incoming_datagram {
  std::span<std::byte> buf;
  socket_address from;     // out: the sender
  size_t size = 0;         // out: bytes stored in buf
  bool truncated = false;  // out: the datagram was longer than buf
};

// Message operations of UDP and Unix datagram sockets.
class datagram_socket : public socket {
 public:
  using socket::socket;

  // One datagram to `to`.
  socket_op<ops::send_to> send_to(std::span<const std::byte> buf, const socket_address& to, int flags = 0) noexcept {
    return make(ops::send_to{fd(), buf.data(), clamp(buf.size()), to.native(), to.size(), flags});
  }
  // One datagram and its sender's address (from must stay valid until awaited).
  recv_from_op recv_from(std::span<std::byte> buf, socket_address& from, int flags = 0) noexcept {
    return recv_from_op(
        ops::recv_from{fd(), buf.data(), clamp(buf.size()), from.native(), socket_address::capacity(), flags},
        &pending_, &from);
  }
  // On a connected socket.
  socket_op<ops::send> send(std::span<const std::byte> buf, int flags = 0) noexcept {
    return make(ops::send{fd(), buf.data(), clamp(buf.size()), flags});
  }
  socket_op<ops::recv> recv(std::span<std::byte> buf, int flags = 0) noexcept {
    return make(ops::recv{fd(), buf.data(), clamp(buf.size()), flags});
  }

  // Batches. io_uring has no sendmmsg/recvmmsg, and one system call for many
  // datagrams beats one SQE each, so these call sendmmsg/recvmmsg without
  // waiting (MSG_DONTWAIT) and use the ring only to wait.
  //
  // Sends every datagram of batch, in order: as many per sendmmsg as the
  // socket takes; when it is full, one send waits through the ring for room.
  // A datagram that fails gets its error and the rest still go. Gives how
  // many were sent; fails only when cancelled (the rest unsent, errors
  // unset). batch must stay valid until awaited.
  task<result<size_t>> send_batch(std::span<outgoing_datagram> batch);
  // Waits for one datagram, then takes the ones already queued behind it
  // with recvmmsg, up to batch.size(). Gives how many entries were filled
  // (at least one; zero only for an empty batch).
  task<result<size_t>> recv_batch(std::span<incoming_datagram> batch);

  // Sets the default peer and filters incoming datagrams to it. Datagram
  // connect never waits, so it is synchronous. AF_UNSPEC dissolves it.
  result<void> connect(const socket_address& peer) noexcept;
};

}  // namespace coil::net
