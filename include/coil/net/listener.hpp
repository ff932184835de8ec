#pragma once
// basic_listener<Stream>: a listening socket whose accept yields Stream.
// Listeners are O_NONBLOCK (see io/ops/net.hpp): io_uring still waits for a
// connection, and a readiness driver's accept4 can never block the thread.
//
// EMFILE/ENFILE from accept are values like any other: the pending connection
// stays in the backlog, so a server that waits for descriptors to be freed
// and accepts again loses nothing.
#include <fcntl.h>
#include <sys/socket.h>

#include "coil/net/multishot.hpp"
#include "coil/net/socket.hpp"

namespace coil::net {

struct listen_options {
  int backlog = SOMAXCONN;
  bool reuse_addr = true;   // SO_REUSEADDR: rebind while old connections linger in TIME_WAIT
  bool reuse_port = false;  // SO_REUSEPORT: several listeners (one per core) share the port
  bool v6_only = false;     // IPV6_V6ONLY for IPv6 listeners
};

template <class Stream>
class basic_listener : public socket {
 public:
  using accept_op = socket_op<ops::accept, result<Stream>>;
  using socket::socket;

  accept_op accept(int flags = 0) noexcept { return make<result<Stream>>(ops::accept{fd(), nullptr, nullptr, flags}); }
  // peer receives the connecting address; it must stay valid until awaited.
  accept_op accept(socket_address& peer, int flags = 0) noexcept {
    *peer.size_ptr() = socket_address::capacity();
    return make<result<Stream>>(ops::accept{fd(), peer.native(), peer.size_ptr(), flags});
  }
  // Multishot accept: a stream of accepted connections (see net/multishot.hpp).
  accept_stream<Stream> incoming(int flags = 0) noexcept { return accept_stream<Stream>(fd(), flags, &pending_); }
};

namespace detail {
// socket + options + bind + listen, for any family.
result<unique_fd> listen_on(const socket_address& addr, const listen_options& opts) noexcept;
// Takes an existing listening descriptor (socket activation, inherited fds).
result<unique_fd> adopt_listener(unique_fd fd) noexcept;
}  // namespace detail

}  // namespace coil::net
