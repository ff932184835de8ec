#pragma once
// Helpers for the stream toolkit's tests (tests/test_stream_*.cpp).
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "coil/stream.hpp"
#include "test_net_util.hpp"

namespace coil::test {

// A reader that hands out at most one byte per read_some, so every
// delimiter and prefix is split across reads.
template <class Stream>
struct one_byte_reader {
  Stream* s;
  auto read_some(std::span<std::byte> buf) { return s->read_some(buf.first(buf.empty() ? 0 : 1)); }
};

// A connected Unix stream pair.
inline std::pair<net::unix_stream, net::unix_stream> stream_pair() {
  auto p = net::unix_stream::pair();
  EXPECT_TRUE(p) << p.error().message();
  if (!p) std::abort();
  return std::move(*p);
}

// A pipe as two coil::files: {read end, write end}.
inline std::pair<file, file> file_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
  return {file(unique_fd(fds[0])), file(unique_fd(fds[1]))};
}

// Sends text one byte per send, yielding to the loop between sends, then
// shuts the write side down when asked.
inline task<void> feed_bytewise(net::stream_socket& s, std::string text, bool then_shutdown) {
  for (char c : text) {
    auto r = co_await s.send(std::string_view(&c, 1));
    EXPECT_TRUE(r && *r == 1);
    auto n = co_await coil::nop();
    EXPECT_TRUE(n);
  }
  if (then_shutdown) {
    auto r = co_await s.shutdown_write();
    EXPECT_TRUE(r);
  }
}

// Everything s sends until its end of stream.
inline task<std::string> drain(net::stream_socket& s) {
  std::string out;
  std::byte buf[4096];
  for (;;) {
    auto n = co_await s.recv(buf);
    if (!n || *n == 0) {
      EXPECT_TRUE(n) << n.error().message();
      co_return out;
    }
    out.append(reinterpret_cast<const char*>(buf), *n);
  }
}

}  // namespace coil::test
