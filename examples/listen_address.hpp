#pragma once
// The examples' server address argument: PORT (every IPv4 interface) or
// HOST:PORT, [V6]:PORT (127.0.0.1:0 picks a free port on loopback).
#include <cstdlib>
#include <optional>
#include <string_view>

#include "coil/net/address.hpp"

inline std::optional<coil::net::socket_address> listen_address(const char* arg) {
  if (std::string_view(arg).find(':') != std::string_view::npos) {
    auto a = coil::net::socket_address::parse(arg);
    if (!a) return std::nullopt;
    return *a;
  }
  char* end = nullptr;
  const long port = std::strtol(arg, &end, 10);
  if (end == arg || *end != '\0' || port < 0 || port > 65535) return std::nullopt;
  return coil::net::socket_address::ipv4_any(static_cast<uint16_t>(port));
}
