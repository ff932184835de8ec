#pragma once
// Name resolution: a host name to socket addresses, through getaddrinfo (so
// /etc/hosts, DNS, or whatever nsswitch.conf names). getaddrinfo only blocks,
// so the async form runs it on the blocking pool (rt/blocking.hpp) and never
// stalls the loop; an IP literal resolves in place, with no thread hop.
//
//   auto addrs = co_await net::resolve("example.org", 443);   // result<std::vector<socket_address>>
//   auto s = co_await net::tcp_stream::connect("example.org", 443, 5s);
//
// Cancelling a resolve (a stop request, with_timeout) resumes the caller at
// once; the lookup itself cannot be interrupted and finishes on its pool
// thread, its answer dropped.
#include <netdb.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "coil/core/result.hpp"
#include "coil/net/address.hpp"
#include "coil/rt/task.hpp"

namespace coil::net {

// getaddrinfo's failures, in resolve_category(). EAI_SYSTEM arrives as the
// errno it carries and EAI_MEMORY as std::errc::not_enough_memory.
enum class resolve_errc {
  // No such name, or it has no address of the family asked for
  // (EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY).
  host_not_found = -EAI_NONAME,
  try_again = -EAI_AGAIN,        // the name server failed for now
  server_failed = -EAI_FAIL,     // the name server failed for good
  bad_family = -EAI_FAMILY,      // resolve_options::family is not one getaddrinfo knows
  bad_socktype = -EAI_SOCKTYPE,  // resolve_options::socktype is not one getaddrinfo knows
};

const std::error_category& resolve_category() noexcept;
inline std::error_code make_error_code(resolve_errc e) noexcept { return {static_cast<int>(e), resolve_category()}; }

struct resolve_options {
  int family = AF_UNSPEC;       // AF_INET or AF_INET6 to ask for one family only
  int socktype = SOCK_STREAM;   // SOCK_DGRAM for UDP; 0: any
  bool passive = false;         // an empty host gives the wildcard address (to bind), not loopback
  bool numeric_only = false;    // never look a name up: an IP literal or host_not_found
  bool configured_only = false;  // AI_ADDRCONFIG: only families this host has a non-loopback address of
};

// The addresses of host (a name or an IP literal; empty: loopback, or the
// wildcard with passive) with port set, in getaddrinfo's order (RFC 6724:
// the first is the one to try first), each once. Never empty on success. Blocks the
// calling thread: on a runtime, co_await resolve() instead.
result<std::vector<socket_address>> resolve_now(std::string_view host, uint16_t port,
                                                const resolve_options& opts = {});

// The same on the blocking pool (IP literals in place).
task<result<std::vector<socket_address>>> resolve(std::string host, uint16_t port, resolve_options opts = {});

// "host:port", "[v6]:port", "v4:port": host and port apart, for resolve.
// invalid_argument if the port is missing or not a number up to 65535.
struct host_port {
  std::string_view host;
  uint16_t port = 0;
};
result<host_port> split_host_port(std::string_view text) noexcept;

}  // namespace coil::net

template <>
struct std::is_error_code_enum<coil::net::resolve_errc> : std::true_type {};
