#pragma once
// Byte streams: what the stream toolkit (buffered_reader, buffered_writer,
// framing, copy) works over. A reader has read_some, a writer write_some;
// each returns something whose co_await gives result<size_t> (0 from
// read_some is the end of the stream). Writers may add write_some_v (one
// gathered write) and shutdown_write (half-close). TCP and Unix stream
// sockets, coil::file at its file position (pipes, character devices),
// file_cursor and the buffered types themselves satisfy these; the toolkit is
// templates over them, with no virtual calls.
#include <sys/uio.h>

#include <concepts>
#include <cstddef>
#include <span>
#include <utility>

#include "coil/core/error.hpp"
#include "coil/core/result.hpp"
#include "coil/core/transfer.hpp"
#include "coil/rt/task.hpp"

namespace coil {

namespace detail {
template <class A>
  requires requires(A&& a) { std::forward<A>(a).operator co_await(); }
decltype(auto) awaiter_of(A&& a) noexcept {
  return std::forward<A>(a).operator co_await();
}
template <class A>
A&& awaiter_of(A&& a) noexcept {
  return std::forward<A>(a);
}
}  // namespace detail

// What co_await on an A gives.
template <class A>
using awaited_t = decltype(detail::awaiter_of(std::declval<A>()).await_resume());

// co_await on an A gives something convertible to T.
template <class A, class T>
concept awaits = requires { typename awaited_t<A>; } && std::convertible_to<awaited_t<A>, T>;

// read_some(buf): one read of at most buf.size() bytes; 0 is the end of the stream.
template <class S>
concept byte_reader = requires(S& s, std::span<std::byte> buf) {
  { s.read_some(buf) } -> awaits<result<size_t>>;
};

// write_some(buf): one write of at most buf.size() bytes; may be short.
template <class S>
concept byte_writer = requires(S& s, std::span<const std::byte> buf) {
  { s.write_some(buf) } -> awaits<result<size_t>>;
};

// write_some_v(iov): one gathered write (sendmsg, writev); may be short.
template <class S>
concept vectored_writer = byte_writer<S> && requires(S& s, std::span<const iovec> iov) {
  { s.write_some_v(iov) } -> awaits<result<size_t>>;
};

// shutdown_write(): the peer reads the end of the stream; reading goes on.
template <class S>
concept half_closable = requires(S& s) {
  { s.shutdown_write() } -> awaits<result<void>>;
};

template <class S>
concept byte_stream = byte_reader<S> && byte_writer<S>;

// Writes all of buf with write_some, looping over short writes (named so
// that argument-dependent lookup cannot pick it over a caller's own
// write_all); errc::write_zero
// if the stream accepts nothing. After an error the first bytes_done() bytes
// went out.
template <byte_writer S>
task<transfer_result> write_all_to(S& s, std::span<const std::byte> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    result<size_t> n = co_await s.write_some(buf.subspan(done));
    if (!n) {
      if (n.error() == std::errc::interrupted) continue;
      co_return transfer_result(done, n.error());
    }
    if (*n == 0) co_return transfer_result(done, make_error_code(errc::write_zero));
    done += *n;
  }
  co_return transfer_result(done, {});
}

// Fills buf with read_some. The stream ending first is errc::end_of_stream
// before the first byte and errc::unexpected_eof after it (bytes_done() bytes
// arrived).
template <byte_reader S>
task<transfer_result> read_exact_from(S& s, std::span<std::byte> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    result<size_t> n = co_await s.read_some(buf.subspan(done));
    if (!n) {
      if (n.error() == std::errc::interrupted) continue;
      co_return transfer_result(done, n.error());
    }
    if (*n == 0) co_return transfer_result(done, make_error_code(done == 0 ? errc::end_of_stream : errc::unexpected_eof));
    done += *n;
  }
  co_return transfer_result(done, {});
}

}  // namespace coil
