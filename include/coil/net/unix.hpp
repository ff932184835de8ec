#pragma once
// Unix-domain sockets: unix_stream, unix_listener, unix_datagram. Addresses
// are paths or abstract names (socket_address::unix_path/unix_abstract). A
// listener bound to a path leaves the file behind when closed; unlink it.
#include <sys/socket.h>

#include <cstddef>
#include <span>
#include <utility>

#include "coil/net/datagram.hpp"
#include "coil/net/listener.hpp"
#include "coil/net/stream.hpp"
#include "coil/rt/task.hpp"

namespace coil::net {

// What recv_with_fds received.
struct fds_received {
  size_t bytes = 0;  // streams: 0 is the end of the stream
  size_t fds = 0;    // descriptors stored at the front of the caller's span
  // More descriptors came than the span holds; the extra ones are closed.
  bool truncated = false;
  // Datagrams: the message was longer than buf (the rest is lost).
  bool bytes_truncated = false;
};

namespace detail {
task<result<size_t>> send_with_fds(socket& s, std::span<const std::byte> data, std::span<const int> fds,
                                   bool needs_bytes);
task<result<fds_received>> recv_with_fds(socket& s, std::span<std::byte> buf, std::span<unique_fd> fds);
result<ucred> peer_credentials(const socket& s) noexcept;
}  // namespace detail

// What Unix sockets add: peer credentials and descriptor passing
// (SCM_RIGHTS). Self is unix_stream or unix_datagram; a stream message needs
// bytes to carry descriptors, a datagram may carry descriptors alone.
template <class Self, bool NeedsBytes>
class unix_extras {
 public:
  // The peer process's pid, uid and gid (SO_PEERCRED), as they were when it
  // connected (or created the pair).
  result<ucred> peer_credentials() const noexcept { return detail::peer_credentials(self()); }

  // At most this many descriptors per message.
  static constexpr size_t max_passed_fds = 253;
  // One sendmsg of data with duplicates of fds attached (to its first byte:
  // the caller keeps its own). Streams: data must not be empty, and fewer
  // bytes than data may go (the rest as plain sends).
  task<result<size_t>> send_with_fds(std::span<const std::byte> data, std::span<const int> fds) {
    return detail::send_with_fds(self(), data, fds, NeedsBytes);
  }
  // One recvmsg into buf; descriptors that came with the bytes land in fds
  // (close-on-exec, owned by the caller). Descriptors that do not fit, or
  // that arrive with a result nobody takes (the task destroyed, the socket
  // closed meanwhile), are closed: none leaks.
  task<result<fds_received>> recv_with_fds(std::span<std::byte> buf, std::span<unique_fd> fds) {
    return detail::recv_with_fds(self(), buf, fds);
  }

 private:
  Self& self() noexcept { return static_cast<Self&>(*this); }
  const Self& self() const noexcept { return static_cast<const Self&>(*this); }
};

// A Unix-domain stream socket.
class unix_stream : public stream_socket, public unix_extras<unix_stream, true> {
 public:
  unix_stream() noexcept = default;
  unix_stream(unique_fd fd) noexcept : stream_socket(std::move(fd)) {}  // NOLINT: implicit, for accept's result

  static task<result<unix_stream>> connect(socket_address addr);
  // A connected pair (socketpair(2)).
  static result<std::pair<unix_stream, unix_stream>> pair() noexcept;
};

// A listening Unix-domain stream socket; accept() yields unix_stream.
class unix_listener : public basic_listener<unix_stream> {
 public:
  unix_listener() noexcept = default;
  explicit unix_listener(unique_fd fd) noexcept : basic_listener(std::move(fd)) {}

  static result<unix_listener> bind(const socket_address& addr, int backlog = SOMAXCONN) noexcept;
  static result<unix_listener> from_fd(unique_fd fd) noexcept;
};

// A Unix-domain datagram socket (unix_extras: on a connected socket or pair).
class unix_datagram : public datagram_socket, public unix_extras<unix_datagram, false> {
 public:
  unix_datagram() noexcept = default;
  explicit unix_datagram(unique_fd fd) noexcept : datagram_socket(std::move(fd)) {}

  static result<unix_datagram> bind(const socket_address& addr) noexcept;
  // Unnamed: can send, and receive replies only through a pair or connect.
  static result<unix_datagram> unbound() noexcept;
  static result<std::pair<unix_datagram, unix_datagram>> pair() noexcept;
};

}  // namespace coil::net
