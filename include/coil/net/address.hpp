#pragma once
// socket_address: an IPv4, IPv6 or Unix-domain address, stored inline (no
// heap) in a sockaddr_storage, ready to hand to the kernel.
//
// Text forms (parse and to_string agree, so they round-trip):
//   "127.0.0.1:80"            IPv4 and port
//   "[::1]:80", "[fe80::1%2]:80"   IPv6 (scope by index or interface name) and port
//   "/run/app.sock"           Unix path (unix_path(), or parse of a '/'-led text)
//   "@name"                   abstract Unix name (unix_abstract(); Linux only)
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "coil/core/result.hpp"

namespace coil::net {

// An IPv4, IPv6 or Unix address, stored inline (text forms: the file description).
class socket_address {
 public:
  // AF_UNSPEC, size 0: "no address".
  socket_address() noexcept = default;

  static socket_address ipv4(std::array<uint8_t, 4> ip, uint16_t port) noexcept;
  static socket_address ipv4_any(uint16_t port) noexcept { return ipv4({0, 0, 0, 0}, port); }
  static socket_address ipv4_loopback(uint16_t port) noexcept { return ipv4({127, 0, 0, 1}, port); }
  static socket_address ipv6(const std::array<uint8_t, 16>& ip, uint16_t port, uint32_t scope_id = 0) noexcept;
  static socket_address ipv6_any(uint16_t port) noexcept;
  static socket_address ipv6_loopback(uint16_t port) noexcept;

  // "ip:port" or "[ipv6]:port"; a text starting with '/' or '@' is a Unix
  // address. Fails with invalid_argument on anything else (no name lookup).
  static result<socket_address> parse(std::string_view text) noexcept;
  // An IP literal without port ("10.0.0.1", "::1", "fe80::1%eth0").
  static result<socket_address> parse_ip(std::string_view ip, uint16_t port) noexcept;
  // filename_too_long if the path does not fit sun_path with its NUL.
  static result<socket_address> unix_path(std::string_view path) noexcept;
  // Abstract namespace: no file, gone with the last socket. name excludes
  // the leading NUL (and any '@').
  static result<socket_address> unix_abstract(std::string_view name) noexcept;
  // Copies a kernel address; invalid_argument if len exceeds the storage.
  static result<socket_address> from_native(const sockaddr* addr, socklen_t len) noexcept;

  int family() const noexcept { return len_ == 0 ? AF_UNSPEC : storage_.ss_family; }
  bool is_ipv4() const noexcept { return family() == AF_INET; }
  bool is_ipv6() const noexcept { return family() == AF_INET6; }
  bool is_unix() const noexcept { return family() == AF_UNIX; }
  // Unix only: a bound name in the abstract namespace / no name at all.
  bool is_abstract() const noexcept;
  bool is_unnamed() const noexcept;

  // 0 for Unix addresses.
  uint16_t port() const noexcept;
  void set_port(uint16_t port) noexcept;

  // See the forms above; "(unnamed)" for an unbound Unix socket, "" for none.
  std::string to_string() const;

  const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* native() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
  // For the kernel to fill (accept, recvfrom): set to capacity() first.
  socklen_t* size_ptr() noexcept { return &len_; }
  void resize(socklen_t len) noexcept { len_ = len <= capacity() ? len : capacity(); }

  friend bool operator==(const socket_address& a, const socket_address& b) noexcept;

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

}  // namespace coil::net
