#pragma once
// stream_socket: the byte-stream operations shared by TCP and Unix stream
// sockets. Buffers (and iovec arrays) must stay valid until awaited.
#include <sys/uio.h>

#include <limits.h>

#include <coroutine>
#include <cstddef>
#include <optional>
#include <span>
#include <type_traits>

#include "coil/core/bytes.hpp"
#include "coil/core/transfer.hpp"
#include "coil/net/multishot.hpp"
#include "coil/net/socket.hpp"
#include "coil/rt/task.hpp"

namespace coil::net {

class stream_socket;
namespace detail {
template <class Buf>
class send_all_op;
}  // namespace detail

// Byte-stream operations of TCP and Unix stream sockets.
class stream_socket : public socket {
 public:
  using socket::socket;

  // One recv/send; may transfer less than asked. recv gives 0 at end of
  // stream. flags are MSG_* extras (MSG_NOSIGNAL is always added to sends).
  socket_op<ops::recv> recv(std::span<std::byte> buf, int flags = 0) noexcept {
    return make(ops::recv{fd(), buf.data(), clamp(buf.size()), flags, short_means_empty_});
  }
  // One send; may be short.
  socket_op<ops::send> send(std::span<const std::byte> buf, int flags = 0) noexcept {
    return make(ops::send{fd(), buf.data(), clamp(buf.size()), flags});
  }
  // Text (std::string, string_view, literals, char spans) as bytes.
  template <char_data Chars>
  socket_op<ops::send> send(const Chars& text, int flags = 0) noexcept {
    return send(bytes_of(text), flags);
  }
  // Multishot recv into ring's buffers: a stream of received buffers (see
  // net/multishot.hpp). Idle, it holds no buffer.
  recv_stream recv_multishot(buffer_ring& ring, int flags = 0) noexcept {
    return recv_stream(fd(), ring, flags, short_means_empty_, &pending_);
  }
  // Zero-copy send where io_uring has it (6.0+), else a plain send. Completes
  // once the kernel no longer reads buf.
  socket_op<ops::send_zc> send_zc(std::span<const std::byte> buf, int flags = 0) noexcept {
    return make(ops::send_zc{fd(), buf.data(), clamp(buf.size()), flags, zero_copy_available()});
  }
  // Vectored: one recvmsg/sendmsg over iov.
  socket_op<ops::recvv> recvv(std::span<const iovec> iov, int flags = 0) noexcept {
    return make(ops::recvv{fd(), iov.data(), static_cast<uint32_t>(iov.size()), flags, short_means_empty_});
  }
  // Vectored: one sendmsg over iov.
  socket_op<ops::sendv> sendv(std::span<const iovec> iov, int flags = 0) noexcept {
    return make(ops::sendv{fd(), iov.data(), static_cast<uint32_t>(iov.size()), flags});
  }

  // Loops over short transfers, giving a transfer_result: success or the
  // error, and how many bytes went through either way. recv_exact fails with
  // errc::unexpected_eof if the stream ends first (the first bytes_done()
  // bytes of buf arrived); send_all with errc::write_zero if the kernel
  // accepts nothing, and after an error the peer got exactly the first
  // bytes_done() bytes.
  task<transfer_result> recv_exact(std::span<std::byte> buf);
  // Sends all of buf, looping over short sends. Awaitable once, like a task.
  detail::send_all_op<std::span<const std::byte>> send_all(std::span<const std::byte> buf) noexcept;
  template <char_data Chars>
  detail::send_all_op<std::span<const std::byte>> send_all(const Chars& text) noexcept;
  // Same over an iovec array; iov is copied when a send is short, the
  // buffers are not.
  task<transfer_result> recvv_exact(std::span<const iovec> iov);
  detail::send_all_op<std::span<const iovec>> sendv_all(std::span<const iovec> iov) noexcept;
  // send_all over send_zc: no copy of buf into the kernel where supported.
  task<transfer_result> send_all_zc(std::span<const std::byte> buf);
  // The current runtime's driver can send zero-copy.
  static bool zero_copy_available() noexcept;

  // The byte-stream interface (stream/concepts.hpp), for the stream toolkit:
  // recv, send, sendv and shutdown of the write side under generic names.
  socket_op<ops::recv> read_some(std::span<std::byte> buf) noexcept { return recv(buf); }
  socket_op<ops::send> write_some(std::span<const std::byte> buf) noexcept { return send(buf); }
  socket_op<ops::sendv> write_some_v(std::span<const iovec> iov) noexcept { return sendv(iov); }
  socket_op<ops::shutdown> shutdown_write() noexcept { return shutdown(shutdown_how::write); }

  // splice(2) with a pipe (io/ops/splice.hpp): up to len bytes from this
  // socket into pipe_in (a write end), or from pipe_out (a read end) into it.
  socket_op<ops::splice_in> splice_to_pipe(int pipe_in, size_t len) noexcept {
    return make(ops::splice_in{fd(), pipe_in, clamp(len)});
  }
  socket_op<ops::splice_out> splice_from_pipe(int pipe_out, size_t len) noexcept {
    return make(ops::splice_out{fd(), pipe_out, clamp(len)});
  }

 protected:
  // Creates a Stream socket for addr's family and connects it.
  template <class Stream>
  static task<result<Stream>> connect_as(socket_address addr) {
    auto fd = open_socket(addr.family(), SOCK_STREAM);
    if (!fd) co_return fail(fd.error());
    Stream s(std::move(*fd));
    auto r = co_await s.make(ops::connect{s.fd(), addr.native(), addr.size()});
    if (!r) co_return fail(r.error());
    co_return std::move(s);
  }

 private:
  template <class Buf>
  friend class detail::send_all_op;
  // send_all / sendv_all past their first `sent` bytes, as a looping task
  // (its count includes them).
  task<transfer_result> send_rest(std::span<const std::byte> buf, size_t sent);
  task<transfer_result> send_rest(std::span<const iovec> iov, size_t sent);
};

namespace detail {

// What send_all and sendv_all return. Most sends take every byte at once: on
// an eager turn (see socket_op::try_eager) one eager send does so and the call
// finishes without a coroutine frame of its own. Otherwise (a busy turn, the
// epoll driver, a short or refused send) the looping task runs on the rest.
template <class Buf>
class [[nodiscard]] send_all_op {
 public:
  send_all_op(stream_socket& s, Buf buf) noexcept : s_(&s), buf_(buf) {}
  // Movable before it is awaited (with_timeout takes it by value).
  send_all_op(send_all_op&&) noexcept = default;
  send_all_op& operator=(send_all_op&&) = delete;

  bool await_ready() const noexcept { return false; }

  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
    size_t sent = 0;
    if (finish_now(coil::detail::stop_of(h), sent)) return h;
    rest_ = s_->send_rest(buf_, sent);
    return std::move(rest_).operator co_await().await_suspend(h);
  }

  transfer_result await_resume() noexcept {
    if (done_) return *done_;
    return rest_.handle().promise().take();
  }

 private:
  static size_t bytes(std::span<const std::byte> b) noexcept { return b.size(); }
  static size_t bytes(std::span<const iovec> v) noexcept {
    size_t n = 0;
    for (const iovec& e : v) n += e.iov_len;
    return n;
  }
  // True when done_ holds the outcome; else `sent` bytes went out already.
  bool finish_now(stop_source* stop, size_t& sent) noexcept {
    const size_t total = bytes(buf_);
    if (total == 0) {
      done_.emplace();
      return true;
    }
    // The eager send alone (socket_op::try_eager without building the op's
    // awaiter): most calls end here.
    auto idle = [this] { return !writes_pending(s_->pending_); };
    int32_t res = 0;
    if constexpr (std::is_same_v<Buf, std::span<const iovec>>) {
      if (buf_.size() > IOV_MAX) return false;  // the loop sends IOV_MAX entries at a time
      const ops::sendv op{s_->fd(), buf_.data(), static_cast<uint32_t>(buf_.size())};
      if (!coil::detail::try_eager(op, stop, idle, res)) return false;
    } else {
      const ops::send op{s_->fd(), buf_.data(), stream_socket::clamp(buf_.size())};
      if (!coil::detail::try_eager(op, stop, idle, res)) return false;
    }
    const result<size_t> n = ops::send::complete(res);
    if (!n) {
      done_.emplace(0, n.error());
    } else if (*n == total) {
      done_.emplace(total, std::error_code{});
    } else if (*n == 0) {
      done_.emplace(0, make_error_code(errc::write_zero));
    } else {
      sent = *n;
      return false;
    }
    return true;
  }

  stream_socket* s_;
  Buf buf_;
  std::optional<transfer_result> done_;
  task<transfer_result> rest_;
};

}  // namespace detail

inline detail::send_all_op<std::span<const std::byte>> stream_socket::send_all(std::span<const std::byte> buf) noexcept {
  return {*this, buf};
}
template <char_data Chars>
detail::send_all_op<std::span<const std::byte>> stream_socket::send_all(const Chars& text) noexcept {
  return send_all(bytes_of(text));
}
inline detail::send_all_op<std::span<const iovec>> stream_socket::sendv_all(std::span<const iovec> iov) noexcept {
  return {*this, iov};
}

}  // namespace coil::net
