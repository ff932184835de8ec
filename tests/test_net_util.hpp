#pragma once
// Helpers for the networking tests (tests/test_net*.cpp).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coil/coil.hpp"
#include "coil/net.hpp"
#include "test_util.hpp"


namespace coil::test {


inline std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
inline std::string_view text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A listener on 127.0.0.1 with a kernel-chosen port, and its address.
struct loopback_listener {
  net::tcp_listener listener;
  net::socket_address addr;
};

inline loopback_listener listen_loopback(const net::listen_options& opts = {}) {
  auto l = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0), opts);
  EXPECT_TRUE(l) << l.error().message();
  if (!l) std::abort();
  auto a = l->local_address();
  EXPECT_TRUE(a);
  return {std::move(*l), *a};
}

// Raises RLIMIT_NOFILE to at least n (soft and, if needed, hard); false if
// it cannot. The destructor restores the previous limits.
class fd_limit {
 public:
  fd_limit() { ::getrlimit(RLIMIT_NOFILE, &saved_); }
  ~fd_limit() { restore(); }
  void restore() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  bool raise_to(rlim_t n) {
    rlimit r = saved_;
    if (r.rlim_cur >= n) return true;
    r.rlim_cur = n;
    if (r.rlim_max < n) r.rlim_max = n;
    return ::setrlimit(RLIMIT_NOFILE, &r) == 0;
  }
  bool lower_to(rlim_t n) {
    rlimit r = saved_;
    r.rlim_cur = n;
    return ::setrlimit(RLIMIT_NOFILE, &r) == 0;
  }

 private:
  rlimit saved_{};
};

inline bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

}  // namespace coil::test
