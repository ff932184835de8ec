#pragma once
// buffered_reader<Stream>: reads a byte stream through one fixed buffer,
// sized at construction and never grown. Lines, delimited records and peeked
// headers come back as views into that buffer (no copy), valid until the
// next call on the reader; a record longer than its limit is errc::too_long,
// never growth. The reader is itself a byte_reader, so it stacks (a TLS
// stream, copy()).
//
// Ends of stream: before the first byte of what was asked, errc::end_of_stream
// (a clean end between records); after it, errc::unexpected_eof (the peer
// stopped mid-line or mid-frame). read_some alone gives 0, like any reader.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

#include "coil/core/assert.hpp"
#include "coil/stream/concepts.hpp"

namespace coil {

template <byte_reader Stream>
class buffered_reader {
 public:
  static constexpr size_t default_capacity = 16 * 1024;

  // Reads from s, which must outlive the reader, through capacity bytes.
  explicit buffered_reader(Stream& s, size_t capacity = default_capacity)
      : stream_(&s), buf_(std::make_unique_for_overwrite<std::byte[]>(capacity)), capacity_(capacity) {
    COIL_ASSERT(capacity > 0, "a buffered_reader needs a buffer");
  }
  buffered_reader(buffered_reader&&) noexcept = default;
  buffered_reader& operator=(buffered_reader&&) noexcept = default;

  Stream& stream() noexcept { return *stream_; }
  size_t capacity() const noexcept { return capacity_; }

  // --- in place: a parser looks at buffered(), consume()s what it used and
  // fill()s when it needs more --------------------------------------------------

  // The bytes read from the stream and not yet consumed.
  std::span<const std::byte> buffered() const noexcept { return {buf_.get() + begin_, end_ - begin_}; }
  // Drops the first n buffered bytes.
  void consume(size_t n) noexcept {
    COIL_ASSERT(n <= end_ - begin_, "consume past the buffered bytes");
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // One read from the stream into the free room (the buffered bytes move to
  // the front first when that makes room). Gives the bytes added: 0 at the
  // end of the stream; errc::too_long when the buffer is full.
  task<result<size_t>> fill() { return fill_once(); }

  // At least n bytes buffered; gives all that are (buffered()). n over the
  // capacity is errc::too_long; the stream ending first is end_of_stream or
  // unexpected_eof (see the file comment).
  task<result<std::span<const std::byte>>> peek(size_t n) {
    if (n > capacity_) co_return fail(errc::too_long);
    while (end_ - begin_ < n) {
      result<size_t> got = co_await fill_once();
      if (!got) co_return fail(got.error());
      if (*got == 0) co_return fail(ended());
    }
    co_return buffered();
  }

  // --- records -------------------------------------------------------------

  // The bytes up to and including the next delim. max bounds the record,
  // delimiter included (and the capacity bounds max): no delimiter within it
  // is errc::too_long, with the bytes left buffered.
  task<result<std::span<const std::byte>>> read_until(std::byte delim, size_t max) {
    const size_t limit = std::min(max, capacity_);
    size_t scanned = 0;  // from begin_: no delim there
    for (;;) {
      const size_t look = std::min(end_ - begin_, limit);
      const std::byte* from = buf_.get() + begin_;
      const void* hit = scanned < look ? std::memchr(from + scanned, static_cast<int>(delim), look - scanned) : nullptr;
      if (hit != nullptr) {
        const size_t n = static_cast<size_t>(static_cast<const std::byte*>(hit) - from) + 1;
        consume(n);  // the bytes stay in place until the next call
        co_return std::span<const std::byte>(from, n);
      }
      if (look == limit) co_return fail(errc::too_long);
      scanned = look;
      result<size_t> got = co_await fill_once();
      if (!got) co_return fail(got.error());
      if (*got == 0) co_return fail(ended());
    }
  }
  task<result<std::span<const std::byte>>> read_until(char delim, size_t max) {
    return read_until(static_cast<std::byte>(delim), max);
  }

  // The next line without its "\n" or "\r\n". max bounds the line with its
  // terminator (see read_until).
  task<result<std::string_view>> read_line(size_t max) {
    result<std::span<const std::byte>> r = co_await read_until(std::byte{'\n'}, max);
    if (!r) co_return fail(r.error());
    size_t n = r->size() - 1;
    if (n > 0 && (*r)[n - 1] == std::byte{'\r'}) --n;
    co_return std::string_view(reinterpret_cast<const char*>(r->data()), n);
  }

  // --- copies into the caller's memory -----------------------------------------

  // Fills out: buffered bytes first, then reads (straight into out when the
  // rest is at least the capacity, so a large read is not copied twice).
  task<transfer_result> read_exact(std::span<std::byte> out) {
    size_t done = take(out);
    while (done < out.size()) {
      const std::span<std::byte> rest = out.subspan(done);
      const bool direct = rest.size() >= capacity_;  // the buffer is empty here
      result<size_t> got = 0;
      if (direct) {
        got = co_await stream_->read_some(rest);
      } else {
        got = co_await fill_once();
      }
      if (!got) {
        if (got.error() == std::errc::interrupted) continue;
        co_return transfer_result(done, got.error());
      }
      if (*got == 0) {
        co_return transfer_result(done, make_error_code(done == 0 ? errc::end_of_stream : errc::unexpected_eof));
      }
      done += direct ? *got : take(rest);
    }
    co_return transfer_result(done, {});
  }

  // The byte_reader interface: buffered bytes if any, else one read (straight
  // into out when it is at least the capacity). 0 at the end of the stream.
  task<result<size_t>> read_some(std::span<std::byte> out) {
    if (out.empty()) co_return 0;
    if (begin_ == end_) {
      if (out.size() >= capacity_) co_return co_await stream_->read_some(out);
      result<size_t> got = co_await fill_once();
      if (!got) co_return fail(got.error());
      if (*got == 0) co_return 0;
    }
    co_return take(out);
  }

 private:
  // Copies buffered bytes to the front of out; gives how many.
  size_t take(std::span<std::byte> out) noexcept {
    const size_t n = std::min(out.size(), end_ - begin_);
    if (n > 0) std::memcpy(out.data(), buf_.get() + begin_, n);
    consume(n);
    return n;
  }
  std::error_code ended() const noexcept {
    return make_error_code(begin_ == end_ ? errc::end_of_stream : errc::unexpected_eof);
  }
  task<result<size_t>> fill_once() {
    if (end_ == capacity_) {
      if (begin_ == 0) co_return fail(errc::too_long);
      std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    for (;;) {
      result<size_t> n = co_await stream_->read_some(std::span<std::byte>(buf_.get() + end_, capacity_ - end_));
      if (!n && n.error() == std::errc::interrupted) continue;
      if (n) end_ += *n;
      co_return n;
    }
  }

  Stream* stream_;
  std::unique_ptr<std::byte[]> buf_;
  size_t capacity_;
  size_t begin_ = 0;  // buffered bytes: [begin_, end_)
  size_t end_ = 0;
};

}  // namespace coil
