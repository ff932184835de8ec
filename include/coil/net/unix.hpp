#pragma once
// Unix-domain sockets: unix_stream, unix_listener, unix_datagram. Addresses
// are paths or abstract names (socket_address::unix_path/unix_abstract). A
// listener bound to a path leaves the file behind when closed; unlink it.
#include <utility>

#include "coil/net/datagram.hpp"
#include "coil/net/listener.hpp"
#include "coil/net/stream.hpp"
#include "coil/rt/task.hpp"

namespace coil::net {

// A Unix-domain stream socket.
class unix_stream : public stream_socket {
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

// A Unix-domain datagram socket.
class unix_datagram : public datagram_socket {
 public:
  unix_datagram() noexcept = default;
  explicit unix_datagram(unique_fd fd) noexcept : datagram_socket(std::move(fd)) {}

  static result<unix_datagram> bind(const socket_address& addr) noexcept;
  // Unnamed: can send, and receive replies only through a pair or connect.
  static result<unix_datagram> unbound() noexcept;
  static result<std::pair<unix_datagram, unix_datagram>> pair() noexcept;
};

}  // namespace coil::net
