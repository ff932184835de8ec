#pragma once
// buffered_writer<Stream>: gathers small writes in one fixed buffer and sends
// them with one write when it fills or on flush(). A write that does not fit
// goes out together with the buffered bytes in one gathered write (when the
// stream has write_some_v), and a large one is never copied into the buffer.
// Nothing is sent until the buffer fills or flush() is awaited: flush before
// waiting for a reply.
//
// Errors keep the transfer_result shape: bytes_done() counts the bytes of the
// call's data that were sent or buffered before the error. After an error the
// unsent buffered bytes stay buffered (a later flush retries them).
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>

#include "coil/core/assert.hpp"
#include "coil/core/bytes.hpp"
#include "coil/stream/concepts.hpp"

namespace coil {

template <byte_writer Stream>
class buffered_writer {
 public:
  static constexpr size_t default_capacity = 16 * 1024;

  // Writes to s, which must outlive the writer, through capacity bytes.
  explicit buffered_writer(Stream& s, size_t capacity = default_capacity)
      : stream_(&s), buf_(std::make_unique_for_overwrite<std::byte[]>(capacity)), capacity_(capacity) {
    COIL_ASSERT(capacity > 0, "a buffered_writer needs a buffer");
  }
  buffered_writer(buffered_writer&&) noexcept = default;
  buffered_writer& operator=(buffered_writer&&) noexcept = default;

  Stream& stream() noexcept { return *stream_; }
  size_t capacity() const noexcept { return capacity_; }
  // Bytes written to the writer and not yet to the stream.
  std::span<const std::byte> buffered() const noexcept { return {buf_.get() + begin_, end_ - begin_}; }

  // Buffers data, sending what does not fit (see the file comment).
  task<transfer_result> write(std::span<const std::byte> data) {
    if (data.size() <= capacity_ - end_) {
      append(data);
      co_return transfer_result(data.size(), {});
    }
    size_t done = 0;  // bytes of data sent
    if constexpr (vectored_writer<Stream>) {
      while (begin_ < end_) {
        const iovec iov[2] = {{buf_.get() + begin_, end_ - begin_},
                              {const_cast<std::byte*>(data.data()) + done, data.size() - done}};
        result<size_t> n = co_await stream_->write_some_v(std::span<const iovec>(iov));
        if (!n) {
          if (n.error() == std::errc::interrupted) continue;
          co_return transfer_result(done, n.error());
        }
        if (*n == 0) co_return transfer_result(done, make_error_code(errc::write_zero));
        const size_t from_buffer = std::min(*n, end_ - begin_);
        drop(from_buffer);
        done += *n - from_buffer;
      }
    } else {
      transfer_result f = co_await flush();
      if (!f) co_return transfer_result(0, f.error());
    }
    const std::span<const std::byte> rest = data.subspan(done);
    if (rest.size() < capacity_) {
      append(rest);
      co_return transfer_result(data.size(), {});
    }
    transfer_result w = co_await write_all_to(*stream_, rest);
    co_return transfer_result(done + w.bytes_done(), w.error());
  }
  // Text (std::string, string_view, literals, char spans) as bytes.
  template <char_data Chars>
  task<transfer_result> write(const Chars& text) {
    return write(bytes_of(text));
  }

  // Sends everything buffered. bytes_done(): buffered bytes sent by this call.
  task<transfer_result> flush() {
    size_t done = 0;
    while (begin_ < end_) {
      result<size_t> n = co_await stream_->write_some(buffered());
      if (!n) {
        if (n.error() == std::errc::interrupted) continue;
        co_return transfer_result(done, n.error());
      }
      if (*n == 0) co_return transfer_result(done, make_error_code(errc::write_zero));
      drop(*n);
      done += *n;
    }
    co_return transfer_result(done, {});
  }

  // The byte_writer interface: write(), giving the count or the error.
  task<result<size_t>> write_some(std::span<const std::byte> data) {
    transfer_result r = co_await write(data);
    if (!r) co_return fail(r.error());
    co_return r.bytes_done();
  }

  // Flushes, then ends the stream's write side.
  task<result<void>> shutdown_write()
    requires half_closable<Stream>
  {
    transfer_result f = co_await flush();
    if (!f) co_return fail(f.error());
    co_return co_await stream_->shutdown_write();
  }

 private:
  void append(std::span<const std::byte> data) noexcept {
    if (begin_ == end_) begin_ = end_ = 0;
    if (data.size() > capacity_ - end_) {  // room at the front: move the rest there
      std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    COIL_ASSERT(data.size() <= capacity_ - end_, "buffered_writer overflow");
    if (!data.empty()) std::memcpy(buf_.get() + end_, data.data(), data.size());
    end_ += data.size();
  }
  void drop(size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }

  Stream* stream_;
  std::unique_ptr<std::byte[]> buf_;
  size_t capacity_;
  size_t begin_ = 0;  // buffered bytes: [begin_, end_)
  size_t end_ = 0;
};

}  // namespace coil
