#pragma once
// copy(from, to) moves bytes until from's stream ends; copy_bidirectional(a,
// b) does so both ways at once, as a proxy does. When one side's stream ends
// the other side's write side is shut down (half-close) and the other
// direction goes on until its own end; an error in either direction cancels
// the other (a reset peer must not leave the other direction waiting on an
// idle one forever). One buffer per direction, of the caller's size,
// allocated once per call: nothing per chunk.
//
// Sockets can instead be copied with splice through a pipe
// (copy_options::splice), the bytes never entering user memory. coil-bench
// copy measures both; read/write through a buffer is the default because it
// measured faster (docs/performance.md) and because a splice into a socket
// whose peer has gone raises SIGPIPE (splice has no MSG_NOSIGNAL): use it
// with SIGPIPE ignored.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>
#include <utility>

#include "coil/core/unique_fd.hpp"
#include "coil/io/ops/splice.hpp"
#include "coil/net/stream.hpp"
#include "coil/rt/op.hpp"
#include "coil/rt/when.hpp"
#include "coil/stream/concepts.hpp"

namespace coil {

struct copy_options {
  size_t buffer_size = 64 * 1024;  // per direction; the pipe's size with splice
  // Socket to socket through a pipe with splice(2) (see the file comment);
  // other streams ignore it.
  bool splice = false;
};

// What copy_bidirectional moved: bytes each way, and what stopped each
// (the direction cancelled by the other's error holds operation_canceled).
struct bidirectional_result {
  transfer_result a_to_b;
  transfer_result b_to_a;
  // The error that came first; empty when both directions ended cleanly.
  std::error_code first_error;
  std::error_code error() const noexcept { return first_error; }
  explicit operator bool() const noexcept { return !first_error; }
};

namespace detail {

template <class S>
concept splice_socket = std::derived_from<S, net::stream_socket>;

// Writes all of buf with to.write_some, in the caller's frame (no task per chunk).
template <class To>
task<transfer_result> copy_through_buffer(auto& from, To& to, size_t buffer_size) {
  std::unique_ptr<std::byte[]> buf = std::make_unique_for_overwrite<std::byte[]>(buffer_size);
  const std::span<std::byte> room(buf.get(), buffer_size);
  size_t total = 0;
  for (;;) {
    result<size_t> n = co_await from.read_some(room);
    if (!n) {
      if (n.error() == std::errc::interrupted) continue;
      co_return transfer_result(total, n.error());
    }
    if (*n == 0) co_return transfer_result(total, {});
    size_t sent = 0;
    while (sent < *n) {
      result<size_t> w = co_await to.write_some(std::span<const std::byte>(room.data() + sent, *n - sent));
      if (!w) {
        if (w.error() == std::errc::interrupted) continue;
        co_return transfer_result(total + sent, w.error());
      }
      if (*w == 0) co_return transfer_result(total + sent, make_error_code(errc::write_zero));
      sent += *w;
    }
    total += sent;
  }
}

// Socket to socket through a pipe: splice in, then splice out all of it.
task<transfer_result> copy_spliced(net::stream_socket& from, net::stream_socket& to, size_t pipe_size);

}  // namespace detail

// Copies from `from` until its end of stream; gives the bytes written to
// `to` and the first error. Does not shut `to` down.
template <byte_reader From, byte_writer To>
task<transfer_result> copy(From& from, To& to, copy_options o = {}) {
  if constexpr (detail::splice_socket<From> && detail::splice_socket<To>) {
    if (o.splice) return detail::copy_spliced(from, to, o.buffer_size);
  }
  return detail::copy_through_buffer(from, to, o.buffer_size);
}

namespace detail {
// One direction of copy_bidirectional: copy, then end to's write side
// (also after a read error, so the peer learns this direction is over).
template <class From, class To>
task<transfer_result> copy_then_shutdown(From& from, To& to, copy_options o) {
  transfer_result r = co_await copy(from, to, o);
  if constexpr (half_closable<To>) {
    result<void> s = co_await to.shutdown_write();
    // ENOTCONN: the peer reset the connection already.
    if (r && !s && s.error() != std::errc::not_connected) co_return transfer_result(r.bytes_done(), s.error());
  }
  co_return r;
}
}  // namespace detail

// Copies a -> b and b -> a at once until both streams end. When a's stream
// ends, b's write side is shut down and b -> a goes on (and the other way
// round). The first error in either direction cancels the other and is
// returned with the bytes each direction moved.
template <byte_stream A, byte_stream B>
task<bidirectional_result> copy_bidirectional(A& a, B& b, copy_options o = {}) {
  // try_when_all's race (the first failure stops the rest), keeping both
  // byte counts, which try_when_all itself drops on error.
  detail::when_awaiter<transfer_result, transfer_result> aw(
      detail::when_mode::first_error, detail::copy_then_shutdown(a, b, o), detail::copy_then_shutdown(b, a, o));
  co_await aw;
  bidirectional_result r{std::get<0>(aw.tasks).handle().promise().take(),
                         std::get<1>(aw.tasks).handle().promise().take(), {}};
  if (aw.state.winner == 0) r.first_error = r.a_to_b.error();
  if (aw.state.winner == 1) r.first_error = r.b_to_a.error();
  co_return r;
}

}  // namespace coil
