#pragma once
// tls::stream<Next>: TLS over any coil byte stream (a tcp_stream, a
// unix_stream), client or server, on OpenSSL.
//
//   auto ctx = coil::tls::context::client();
//   auto s = co_await coil::tls::connect(*ctx, "example.com", 443);  // connect + handshake
//   co_await s->write_all("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
//   auto n = co_await s->read_some(buf);    // 0: the peer's close_notify
//   co_await s->shutdown();                 // our close_notify
//
// OpenSSL never touches the socket: it reads and writes a pair of fixed-size
// memory buffers (a BIO pair), and every byte crosses the network through
// Next's own coil operations, so TLS traffic is batched, cancellable and
// runs on every driver like the rest. Memory per stream is bounded by those
// buffers whatever the peer sends.
//
// One task may read while another writes (a proxy's two directions); each
// direction is serialised by its own lock. Errors are values: a handshake
// refused for a certificate gives an x509_category() code, OpenSSL's own
// failures openssl_category() codes with its reason text, a peer that closes
// without close_notify tls::errc::truncated (a clean end is a read of 0).
#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "coil/core/result.hpp"
#include "coil/core/transfer.hpp"
#include "coil/net/tcp.hpp"
#include "coil/rt/task.hpp"
#include "coil/sync/mutex.hpp"
#include "coil/tls/context.hpp"
#include "coil/tls/error.hpp"

typedef struct ssl_st SSL;  // NOLINT: OpenSSL's own declarations
typedef struct bio_st BIO;  // NOLINT

namespace coil::tls {

// Trivially destructible on purpose: g++ 12 destroys an aggregate made
// inside a co_await operand twice (see rt/await_arg.hpp), and
// `co_await tls::connect(ctx, host, port, {.server_name = ...})` is how it is
// written. server_name must stay valid until the call (or the stream's
// creation) returns; the stream keeps its own copy.
struct client_options {
  // The name sent as SNI and checked against the server's certificate (an
  // IP literal is checked against its IP addresses, and sends no SNI).
  std::string_view server_name;
  // Off: any name is accepted (the chain is still verified unless the
  // context's verify_peer is off).
  bool verify_hostname = true;
};

namespace detail {

// One TLS connection's OpenSSL state and its BIO pair: the synchronous half
// of a stream. Each call runs OpenSSL until it needs the network, and says
// what the stream must do next.
class session {
 public:
  enum class next { done, read, write, eof, error };
  struct step {
    next what = next::done;
    size_t bytes = 0;  // read/write: bytes transferred
    std::error_code error;
  };

  static result<std::unique_ptr<session>> make(const context& ctx, const client_options* client) noexcept;
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  step handshake() noexcept;
  step read(std::span<std::byte> buf) noexcept;
  step write(std::span<const std::byte> buf) noexcept;
  step shutdown() noexcept;

  // The network side: bytes OpenSSL wants sent (a contiguous part), and
  // room for bytes received.
  std::span<const std::byte> output() noexcept;
  void sent(size_t n) noexcept;
  std::span<std::byte> input_space() noexcept;
  void received(size_t n) noexcept;
  void received_eof() noexcept;

  bool handshake_done() const noexcept { return handshake_done_; }
  bool shut_down() const noexcept { return shut_down_; }
  std::string_view alpn_protocol() const noexcept;
  std::string_view protocol_version() const noexcept;
  std::string_view cipher() const noexcept;
  bool session_reused() const noexcept;
  const std::string& cache_key() const noexcept { return server_name_; }

  coil::mutex reading;  // one reader at a time (fill)
  coil::mutex writing;  // one sender at a time (flush)

 private:
  session() noexcept = default;
  step fail_step(int ret, bool in_handshake) noexcept;

  SSL* ssl_ = nullptr;
  BIO* net_ = nullptr;  // our end of the pair; OpenSSL holds the other
  std::string server_name_;
  bool handshake_done_ = false;
  bool shut_down_ = false;
  bool eof_ = false;
};

// Next's read/write/half-close, whichever names it uses.
template <class N>
auto read_from(N& n, std::span<std::byte> b) {
  if constexpr (requires { n.read_some(b); }) {
    return n.read_some(b);
  } else {
    return n.recv(b);
  }
}
template <class N>
auto write_to(N& n, std::span<const std::byte> b) {
  if constexpr (requires { n.write_some(b); }) {
    return n.write_some(b);
  } else {
    return n.send(b);
  }
}

inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return std::as_bytes(std::span(s.data(), s.size()));
}

}  // namespace detail

template <class Next>
class stream {
 public:
  // A client stream over a connected Next; the handshake is still to do.
  static result<stream> client(const context& ctx, Next next, client_options opts = {}) noexcept {
    static_assert(std::is_trivially_destructible_v<client_options>);
    auto s = detail::session::make(ctx, &opts);
    if (!s) return fail(s.error());
    return stream(std::move(next), std::move(*s));
  }
  // A server stream over an accepted Next.
  static result<stream> server(const context& ctx, Next next) noexcept {
    auto s = detail::session::make(ctx, nullptr);
    if (!s) return fail(s.error());
    return stream(std::move(next), std::move(*s));
  }

  stream(stream&&) noexcept = default;
  stream& operator=(stream&&) noexcept = default;

  // Runs the handshake to its end. Bound it with with_timeout: a peer that
  // stops answering would otherwise hold it forever.
  task<result<void>> handshake() {
    for (;;) {
      auto st = s_->handshake();
      if (auto f = co_await flush(); !f && st.what != detail::session::next::error) co_return fail(f.error());
      switch (st.what) {
        case detail::session::next::done:
          co_return result<void>{};
        case detail::session::next::read:
          if (auto r = co_await fill(); !r) co_return fail(r.error());
          break;
        case detail::session::next::write:
          break;
        case detail::session::next::eof:
          co_return fail(errc::handshake_eof);
        case detail::session::next::error:
          co_return fail(st.error);
      }
    }
  }

  // Up to buf.size() decrypted bytes; 0 once the peer sent close_notify
  // (errc::truncated if the connection ended without it).
  task<result<size_t>> read_some(std::span<std::byte> buf) {
    auto lock = co_await s_->reading.lock();
    if (!lock) co_return fail(lock.error());
    for (;;) {
      auto st = s_->read(buf);
      switch (st.what) {
        case detail::session::next::done:
          co_return st.bytes;
        case detail::session::next::eof:
          co_return size_t{0};
        case detail::session::next::read:
          // What OpenSSL wrote meanwhile (a key update's answer) goes first.
          if (auto f = co_await flush(); !f) co_return fail(f.error());
          if (auto r = co_await fill(); !r) co_return fail(r.error());
          break;
        case detail::session::next::write:
          if (auto f = co_await flush(); !f) co_return fail(f.error());
          break;
        case detail::session::next::error:
          co_return fail(st.error);
      }
    }
  }

  // Encrypts and sends up to buf.size() bytes (at most a few records at a
  // time); returns once they are on the wire (handed to Next).
  task<result<size_t>> write_some(std::span<const std::byte> buf) {
    if (buf.empty()) co_return size_t{0};
    for (;;) {
      auto st = s_->write(buf);
      switch (st.what) {
        case detail::session::next::done:
          if (auto f = co_await flush(); !f) co_return fail(f.error());
          co_return st.bytes;
        case detail::session::next::write:
          if (auto f = co_await flush(); !f) co_return fail(f.error());
          break;
        case detail::session::next::read: {  // renegotiation is off: OpenSSL should never ask
          auto lock = co_await s_->reading.lock();
          if (!lock) co_return fail(lock.error());
          if (auto r = co_await fill(); !r) co_return fail(r.error());
          break;
        }
        case detail::session::next::eof:
          co_return fail(errc::closed);
        case detail::session::next::error:
          co_return fail(st.error);
      }
    }
  }
  task<result<size_t>> write_some(std::string_view s) { return write_some(detail::as_bytes(s)); }

  // All of buf, or the first error and how many bytes went out before it.
  task<transfer_result> write_all(std::span<const std::byte> buf) {
    size_t done = 0;
    while (done < buf.size()) {
      auto n = co_await write_some(buf.subspan(done));
      if (!n) co_return transfer_result(done, n.error());
      done += *n;
    }
    co_return transfer_result(done, {});
  }
  task<transfer_result> write_all(std::string_view s) { return write_all(detail::as_bytes(s)); }

  // Sends close_notify (once; later calls succeed at once). The peer reads a
  // clean end; reading here still works until the peer's own close_notify.
  task<result<void>> shutdown() {
    if (!s_->shut_down()) {
      auto st = s_->shutdown();
      if (st.what == detail::session::next::error) co_return fail(st.error);
    }
    co_return co_await flush();
  }
  // Half-close for copies: close_notify, then the transport's write side.
  task<result<void>> shutdown_write() {
    if (auto r = co_await shutdown(); !r) co_return r;
    co_return co_await next_.shutdown(net::shutdown_how::write);
  }

  Next& next_layer() noexcept { return next_; }
  const Next& next_layer() const noexcept { return next_; }
  // After the handshake: the negotiated ALPN protocol ("" if none), the
  // protocol version ("TLSv1.3"), the cipher, and whether the session was
  // resumed from an earlier connection's.
  std::string_view alpn_protocol() const noexcept { return s_->alpn_protocol(); }
  std::string_view protocol_version() const noexcept { return s_->protocol_version(); }
  std::string_view cipher() const noexcept { return s_->cipher(); }
  bool session_reused() const noexcept { return s_->session_reused(); }
  bool handshake_done() const noexcept { return s_->handshake_done(); }
  // Whether the kernel runs the record layer (kTLS). See docs/guide/tls.md:
  // coil encrypts in user space, through OpenSSL, where it does not.
  bool kernel_tls() const noexcept { return false; }

 private:
  stream(Next next, std::unique_ptr<detail::session> s) noexcept : next_(std::move(next)), s_(std::move(s)) {}

  // Sends everything OpenSSL has written so far.
  task<result<void>> flush() {
    if (s_->output().empty()) co_return result<void>{};
    auto lock = co_await s_->writing.lock();
    if (!lock) co_return fail(lock.error());
    for (;;) {
      const auto out = s_->output();
      if (out.empty()) co_return result<void>{};
      auto n = co_await detail::write_to(next_, out);
      if (!n) co_return fail(n.error());
      s_->sent(*n);
    }
  }
  // Receives once from Next into OpenSSL's input buffer.
  task<result<void>> fill() {
    const auto space = s_->input_space();
    auto n = co_await detail::read_from(next_, space);
    if (!n) co_return fail(n.error());
    if (*n == 0) {
      s_->received_eof();
    } else {
      s_->received(*n);
    }
    co_return result<void>{};
  }

  Next next_;
  std::unique_ptr<detail::session> s_;
};

// Connects to host:port over TCP and runs a client handshake; host is also
// the name checked against the certificate unless opts.server_name is set.
task<result<stream<net::tcp_stream>>> connect(const context& ctx, std::string host, uint16_t port,
                                              client_options opts = {});
// Runs a server handshake on an accepted connection.
task<result<stream<net::tcp_stream>>> accept(const context& ctx, net::tcp_stream s);

}  // namespace coil::tls
