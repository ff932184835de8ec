#pragma once
// Length-prefixed frames over a buffered_reader / buffered_writer: a u16 or
// u32 length, big or little endian, then that many bytes. A frame longer
// than frame_format::max_size is errc::too_long before anything is read into
// memory or written; after a read fails that way the stream is out of step
// (the frame is not skipped) and should be closed.
#include <cstddef>
#include <cstdint>
#include <span>

#include "coil/core/bytes.hpp"
#include "coil/stream/buffered_reader.hpp"
#include "coil/stream/buffered_writer.hpp"

namespace coil {

enum class frame_prefix : uint8_t { u16_be, u16_le, u32_be, u32_le };

struct frame_format {
  frame_prefix prefix = frame_prefix::u32_be;
  size_t max_size = 1 << 20;  // payload bytes; the prefix's width bounds it too

  size_t prefix_size() const noexcept {
    return prefix == frame_prefix::u16_be || prefix == frame_prefix::u16_le ? 2 : 4;
  }
  // The largest payload this format admits.
  size_t limit() const noexcept {
    const size_t widest = prefix_size() == 2 ? 0xffffu : 0xffffffffu;
    return max_size < widest ? max_size : widest;
  }
  bool big_endian() const noexcept { return prefix == frame_prefix::u16_be || prefix == frame_prefix::u32_be; }

  // The length a prefix holds, and the prefix for a length (<= limit()).
  size_t decode(std::span<const std::byte> p) const noexcept {
    size_t n = 0;
    const size_t w = prefix_size();
    for (size_t i = 0; i < w; ++i) {
      const size_t b = std::to_integer<size_t>(p[big_endian() ? i : w - 1 - i]);
      n = (n << 8) | b;
    }
    return n;
  }
  void encode(size_t n, std::byte* out) const noexcept {
    const size_t w = prefix_size();
    for (size_t i = 0; i < w; ++i) {
      out[big_endian() ? w - 1 - i : i] = static_cast<std::byte>(n & 0xff);
      n >>= 8;
    }
  }
};

// The next frame's payload as a view into r's buffer, valid until the next
// call on r. The frame and its prefix must fit r's capacity (else too_long:
// use read_frame_into). A clean end before the prefix is errc::end_of_stream,
// an end inside the frame errc::unexpected_eof.
template <class Stream>
task<result<std::span<const std::byte>>> read_frame(buffered_reader<Stream>& r, frame_format f) {
  const size_t head = f.prefix_size();
  result<std::span<const std::byte>> p = co_await r.peek(head);
  if (!p) co_return fail(p.error());
  const size_t n = f.decode(*p);
  if (n > f.limit() || head + n > r.capacity()) co_return fail(errc::too_long);
  result<std::span<const std::byte>> whole = co_await r.peek(head + n);
  if (!whole) co_return fail(whole.error() == errc::end_of_stream ? make_error_code(errc::unexpected_eof) : whole.error());
  const std::span<const std::byte> payload = whole->subspan(head, n);
  r.consume(head + n);  // the bytes stay in place until the next call
  co_return payload;
}

// The next frame's payload copied into out; gives the filled front of out. A
// frame longer than out (or f's limit) is errc::too_long, nothing consumed
// but its prefix.
template <class Stream>
task<result<std::span<std::byte>>> read_frame_into(buffered_reader<Stream>& r, frame_format f,
                                                   std::span<std::byte> out) {
  const size_t head = f.prefix_size();
  result<std::span<const std::byte>> p = co_await r.peek(head);
  if (!p) co_return fail(p.error());
  const size_t n = f.decode(*p);
  if (n > f.limit() || n > out.size()) co_return fail(errc::too_long);
  r.consume(head);
  transfer_result got = co_await r.read_exact(out.first(n));
  if (!got) co_return fail(got.error() == errc::end_of_stream ? make_error_code(errc::unexpected_eof) : got.error());
  co_return out.first(n);
}

// Writes a prefix and payload through w (buffered: flush to send). A payload
// over f's limit is errc::too_long, nothing written. bytes_done() counts the
// prefix too.
template <class Stream>
task<transfer_result> write_frame(buffered_writer<Stream>& w, frame_format f, std::span<const std::byte> payload) {
  if (payload.size() > f.limit()) co_return fail(errc::too_long);
  std::byte head[4];
  f.encode(payload.size(), head);
  transfer_result h = co_await w.write(std::span<const std::byte>(head, f.prefix_size()));
  if (!h) co_return h;
  transfer_result b = co_await w.write(payload);
  co_return transfer_result(h.bytes_done() + b.bytes_done(), b.error());
}
template <class Stream, char_data Chars>
task<transfer_result> write_frame(buffered_writer<Stream>& w, frame_format f, const Chars& text) {
  return write_frame(w, f, bytes_of(text));
}

}  // namespace coil
