// copy: socket -> socket copying through coil::copy, with read/write through
// a buffer against splice through a pipe, alternating in one run. One thread:
// a source task sends as fast as it can over loopback TCP, the copy moves the
// bytes to a second connection, a sink task receives and drops them.
#include "copy.hpp"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "coil/net/tcp.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/time.hpp"
#include "coil/rt/when.hpp"
#include "coil/stream/copy.hpp"

namespace coil_bench {
namespace {

using coil::net::tcp_stream;

coil::task<void> source(tcp_stream& s, const bool& stop) {
  std::vector<std::byte> buf(256 * 1024, std::byte{'c'});
  while (!stop) {
    auto w = co_await s.send_all(buf);
    if (!w) break;
  }
  (void)co_await s.shutdown_write();
}

coil::task<uint64_t> sink(tcp_stream& s) {
  std::vector<std::byte> buf(256 * 1024);
  uint64_t total = 0;
  for (;;) {
    auto n = co_await s.recv(buf);
    if (!n || *n == 0) co_return total;
    total += *n;
  }
}

coil::task<coil::transfer_result> copier(tcp_stream& from, tcp_stream& to, coil::copy_options o) {
  coil::transfer_result r = co_await coil::copy(from, to, o);
  (void)co_await to.shutdown_write();
  co_return r;
}

coil::task<void> stopper(double seconds, bool& stop) {
  co_await coil::sleep_for(std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9)));
  stop = true;
}

coil::task<copy_result> one_run(bool splice, uint64_t buffer, double seconds) {
  copy_result r;
  auto l = coil::net::tcp_listener::bind(coil::net::socket_address::ipv4_loopback(0));
  if (!l) co_return r;
  auto addr = l->local_address();
  auto client = co_await tcp_stream::connect(*addr);
  auto in = co_await l->accept();
  auto out = co_await tcp_stream::connect(*addr);
  auto drain = co_await l->accept();
  if (!client || !in || !out || !drain) {
    r.failure = "loopback connections failed";
    co_return r;
  }
  bool stop = false;
  const int64_t t0 = now_ns();
  const coil::copy_options o{.buffer_size = buffer, .splice = splice};
  auto [a, moved, copied, b] =
      co_await coil::when_all(source(*client, stop), sink(*drain), copier(*in, *out, o), stopper(seconds, stop));
  (void)a;
  (void)b;
  r.seconds = seconds_since(t0);
  r.bytes = moved;
  if (!copied) r.failure = copied.error().message();
  co_return r;
}

}  // namespace

copy_result run_copy(bool splice, uint64_t buffer, double seconds) {
  ::signal(SIGPIPE, SIG_IGN);  // splice into a socket has no MSG_NOSIGNAL
  auto rt = coil::runtime::create();
  if (!rt) return copy_result{.failure = rt.error().message()};
  copy_result r = (*rt)->block_on(one_run(splice, buffer, seconds));
  return r;
}

}  // namespace coil_bench
