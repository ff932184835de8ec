#pragma once
// TCP: tcp_stream (a connection) and tcp_listener.
#include <chrono>
#include <string>
#include <vector>

#include "coil/core/duration.hpp"
#include "coil/net/listener.hpp"
#include "coil/net/stream.hpp"
#include "coil/rt/task.hpp"

namespace coil::net {

// A TCP connection.
class tcp_stream : public stream_socket {
 public:
  tcp_stream() noexcept { short_means_empty_ = true; }
  tcp_stream(unique_fd fd) noexcept : stream_socket(std::move(fd)) {  // NOLINT: implicit, for accept's result
    short_means_empty_ = true;
  }

  // Connects to addr (IPv4 or IPv6). addr is copied into the task.
  static task<result<tcp_stream>> connect(socket_address addr);
  // Same, failing with std::errc::timed_out if the handshake takes longer
  // than timeout (the half-open socket is closed).
  static task<result<tcp_stream>> connect(socket_address addr, duration_ns timeout);
  // Connects to addrs in turn (resolve's order) and gives the first
  // connection made, or the last attempt's error (resolve_errc::host_not_found
  // for none); each attempt is bounded by timeout. A cancelled attempt ends it.
  static task<result<tcp_stream>> connect(std::vector<socket_address> addrs, duration_ns timeout);
  // Resolves host (a name or an IP literal; see net/resolve.hpp) and connects
  // to its addresses in turn, like the above, without or with a bound per
  // attempt.
  static task<result<tcp_stream>> connect(std::string host, uint16_t port);
  static task<result<tcp_stream>> connect(std::string host, uint16_t port, duration_ns timeout);

  // TCP_NODELAY: send small segments at once instead of coalescing (Nagle).
  result<void> set_nodelay(bool on) noexcept;
  result<bool> nodelay() const noexcept;
  // SO_KEEPALIVE, and optionally its timing (0 keeps the system default).
  result<void> set_keepalive(bool on, int idle_s = 0, int interval_s = 0, int count = 0) noexcept;
  result<bool> keepalive() const noexcept;
  // SO_LINGER with a zero timeout: close sends RST instead of FIN.
  result<void> set_linger_reset() noexcept;
};

// A listening TCP socket; accept() yields tcp_stream.
class tcp_listener : public basic_listener<tcp_stream> {
 public:
  tcp_listener() noexcept = default;
  explicit tcp_listener(unique_fd fd) noexcept : basic_listener(std::move(fd)) {}

  // Binds and listens (port 0 picks a free port: see local_address()).
  static result<tcp_listener> bind(const socket_address& addr, const listen_options& opts = {}) noexcept;
  // Adopts a listening descriptor made elsewhere; sets O_NONBLOCK on it.
  static result<tcp_listener> from_fd(unique_fd fd) noexcept;
};

}  // namespace coil::net
