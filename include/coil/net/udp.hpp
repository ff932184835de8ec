#pragma once
// UDP sockets.
#include "coil/net/datagram.hpp"

namespace coil::net {

struct udp_options {
  bool reuse_addr = false;
  bool reuse_port = false;  // several sockets (one per core) share the port
  bool v6_only = false;
};

// A UDP socket.
class udp_socket : public datagram_socket {
 public:
  udp_socket() noexcept = default;
  explicit udp_socket(unique_fd fd) noexcept : datagram_socket(std::move(fd)) {}

  // Bound to addr (port 0 picks one: see local_address()).
  static result<udp_socket> bind(const socket_address& addr, const udp_options& opts = {}) noexcept;
  // Unbound (the kernel binds an ephemeral port on the first send).
  static result<udp_socket> open(int family = AF_INET) noexcept;
  // Connected to peer, bound to an ephemeral port.
  static result<udp_socket> connect_to(const socket_address& peer) noexcept;

  result<void> set_broadcast(bool on) noexcept { return set_option(SOL_SOCKET, SO_BROADCAST, on ? 1 : 0); }
};

}  // namespace coil::net
