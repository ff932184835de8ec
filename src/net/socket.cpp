#include <netinet/in.h>
#include <netinet/tcp.h>

#include <limits.h>

#include <algorithm>
#include <vector>

#include "coil/net/stream.hpp"

namespace coil::net {

result<unique_fd> open_socket(int domain, int type, int protocol) noexcept {
  const int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
  if (fd < 0) return fail(errno_code(errno));
  return unique_fd(fd);
}

result<socket_address> socket::local_address() const noexcept {
  socket_address a;
  *a.size_ptr() = socket_address::capacity();
  if (::getsockname(fd(), a.native(), a.size_ptr()) < 0) return fail(errno_code(errno));
  return a;
}

result<socket_address> socket::peer_address() const noexcept {
  socket_address a;
  *a.size_ptr() = socket_address::capacity();
  if (::getpeername(fd(), a.native(), a.size_ptr()) < 0) return fail(errno_code(errno));
  return a;
}

result<void> socket::set_option(int level, int name, int value) noexcept {
  return from_syscall(::setsockopt(fd(), level, name, &value, sizeof(value)));
}

result<int> socket::get_option(int level, int name) const noexcept {
  int value = 0;
  socklen_t len = sizeof(value);
  if (::getsockopt(fd(), level, name, &value, &len) < 0) return fail(errno_code(errno));
  return value;
}

std::error_code socket::take_error() noexcept {
  auto e = get_option(SOL_SOCKET, SO_ERROR);
  if (!e) return e.error();
  return *e == 0 ? std::error_code{} : errno_code(*e);
}

namespace {

// What is left of an iovec array; the entries themselves are copied so they
// can be advanced past partial transfers.
struct iov_cursor {
  std::vector<iovec> v;
  size_t first = 0;
  std::span<const iovec> rest() const noexcept {
    // At most IOV_MAX entries per call; the loop sends the rest next time.
    return std::span<const iovec>(v).subspan(first, std::min<size_t>(v.size() - first, IOV_MAX));
  }
};

bool empty(std::span<std::byte> b) noexcept { return b.empty(); }
bool empty(std::span<const std::byte> b) noexcept { return b.empty(); }
bool empty(const iov_cursor& c) noexcept { return c.first == c.v.size(); }

template <class B>
void consume(std::span<B>& b, size_t n) noexcept {
  b = b.subspan(n);
}
void consume(iov_cursor& c, size_t n) noexcept {
  while (c.first < c.v.size() && (n > 0 || c.v[c.first].iov_len == 0)) {
    iovec& e = c.v[c.first];
    const size_t k = std::min(n, e.iov_len);
    e.iov_base = static_cast<char*>(e.iov_base) + k;
    e.iov_len -= k;
    n -= k;
    if (e.iov_len == 0) ++c.first;
  }
}

// Repeats one transfer over what is left until nothing is: EINTR/EAGAIN
// retry, a zero-byte transfer fails with on_zero. done: bytes moved before
// the call (send_all's eager send), counted in the result.
template <class Left, class Once>
task<transfer_result> repeat(Left left, Once once, errc on_zero, size_t done = 0) {
  consume(left, 0);
  while (!empty(left)) {
    auto n = co_await once(left);
    if (!n) {
      if (n.error() == std::errc::interrupted || n.error() == std::errc::resource_unavailable_try_again) continue;
      co_return transfer_result(done, n.error());
    }
    if (*n == 0) co_return transfer_result(done, make_error_code(on_zero));
    consume(left, *n);
    done += *n;
  }
  co_return transfer_result(done, {});
}

iov_cursor cursor(std::span<const iovec> iov) { return {std::vector<iovec>(iov.begin(), iov.end()), 0}; }

}  // namespace

task<transfer_result> stream_socket::recv_exact(std::span<std::byte> buf) {
  return repeat(
      buf, [this](std::span<std::byte> b) { return recv(b); }, errc::unexpected_eof);
}

task<transfer_result> stream_socket::send_rest(std::span<const std::byte> buf, size_t sent) {
  return repeat(
      buf.subspan(sent), [this](std::span<const std::byte> b) { return send(b); }, errc::write_zero, sent);
}

task<transfer_result> stream_socket::send_all_zc(std::span<const std::byte> buf) {
  return repeat(
      buf, [this](std::span<const std::byte> b) { return send_zc(b); }, errc::write_zero);
}

bool stream_socket::zero_copy_available() noexcept {
  runtime* rt = runtime::current();
  return rt != nullptr && rt->driver().supports(IORING_OP_SEND_ZC);
}

task<transfer_result> stream_socket::recvv_exact(std::span<const iovec> iov) {
  return repeat(
      cursor(iov), [this](const iov_cursor& c) { return recvv(c.rest()); }, errc::unexpected_eof);
}

task<transfer_result> stream_socket::send_rest(std::span<const iovec> iov, size_t sent) {
  iov_cursor c = cursor(iov);
  consume(c, sent);
  return repeat(
      std::move(c), [this](const iov_cursor& c) { return sendv(c.rest()); }, errc::write_zero, sent);
}

}  // namespace coil::net
