#include "coil/net/multishot.hpp"

namespace coil::net {

void recv_stream::on_result(int32_t res, uint32_t flags, bool more) noexcept {
  if (flags & IORING_CQE_F_BUFFER) {
    const auto bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    if (ring_.kernel_managed()) ring_.note_lent();  // a readiness recv took it already
    if (res <= 0) {
      ring_.release(bid);  // no data in it
    } else {
      ring_.length_of(bid) = static_cast<uint32_t>(res);
      ring_.next_of(bid) = buffer_ring::none;
      if (tail_ == buffer_ring::none) {
        head_ = bid;
      } else {
        ring_.next_of(tail_) = bid;
      }
      tail_ = bid;
    }
  }
  if (res > 0) {
    if (!more) rearm();  // ended by CQ pressure, not by the stream
  } else if (res == 0) {
    eof_ = true;
  } else if (res == -ENOBUFS) {
    // Every buffer is lent out; data waits in the socket until one returns.
    if (closing()) return;
    if (ring_.available() > 0) {
      rearm();
    } else {
      ring_.starve(*this);
    }
  } else if (res != -ECANCELED) {
    error_ = kernel_error(res);
  }
}

result<rx_buffer> recv_stream::take() noexcept {
  if (head_ != buffer_ring::none) {
    const uint16_t bid = head_;
    head_ = ring_.next_of(bid);
    if (head_ == buffer_ring::none) tail_ = buffer_ring::none;
    return rx_buffer(&ring_, bid, ring_.length_of(bid));
  }
  if (error_) return fail(std::exchange(error_, {}));
  if (eof_) return rx_buffer();
  return fail(std::errc::operation_canceled);
}

void recv_stream::drop_queue() noexcept {
  while (head_ != buffer_ring::none) {
    const uint16_t bid = head_;
    head_ = ring_.next_of(bid);
    ring_.release(bid);
  }
  tail_ = buffer_ring::none;
}

void recv_stream::rearm_starved(buffer_ring::starved_hook& h) noexcept {
  static_cast<recv_stream&>(h).base::rearm();
}

}  // namespace coil::net
