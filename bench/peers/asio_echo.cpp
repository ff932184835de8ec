// coil-peer-asio / coil-peer-asio-uring LISTEN_FD CONNS
//
// The echo server of `coil-bench echo`, written with Boost.Asio (Debian's
// 1.81) as its documentation teaches: C++20 coroutines (awaitable, co_spawn),
// one coroutine per connection, async_read_some then async_write of what
// arrived. Built twice: on Asio's default epoll reactor, and with
// BOOST_ASIO_HAS_IO_URING + BOOST_ASIO_DISABLE_EPOLL, which moves socket
// operations to its io_uring backend. A single-threaded io_context with
// locking off (what Asio offers a thread-per-core program). Exits once CONNS
// connections have closed; coil-bench reads its CPU time from wait4.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include <boost/asio.hpp>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> serve(tcp::socket s, std::size_t& closed) {
  boost::system::error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);
  std::array<char, 16 << 10> buf;  // in the coroutine frame, as coil's server keeps its buffer
  for (;;) {
    auto [rec, n] = co_await s.async_read_some(asio::buffer(buf), no_throw);
    if (rec) break;
    auto [wec, w] = co_await asio::async_write(s, asio::buffer(buf.data(), n), no_throw);
    if (wec) break;
  }
  ++closed;
}

asio::awaitable<void> accept_all(tcp::acceptor& acceptor, std::size_t conns, std::size_t& closed) {
  for (std::size_t i = 0; i < conns; ++i) {
    auto [ec, s] = co_await acceptor.async_accept(no_throw);
    if (ec) {
      std::fprintf(stderr, "asio: accept: %s\n", ec.message().c_str());
      co_return;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(s), closed), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s LISTEN_FD CONNS\n", argv[0]);
    return 2;
  }
  const int fd = std::atoi(argv[1]);
  const std::size_t conns = std::strtoull(argv[2], nullptr, 10);
  try {
    asio::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
    tcp::acceptor acceptor(io, tcp::v4(), fd);
    std::size_t closed = 0;
    asio::co_spawn(io, accept_all(acceptor, conns, closed), asio::detached);
    io.run();  // returns when no work is left: every connection served and closed
    return closed == conns ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio: %s\n", e.what());
    return 1;
  }
}
