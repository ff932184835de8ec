#pragma once
// transfer_result: what the loops over short transfers give back
// (write_all_at, read_exact_at, send_all, sendv_all, send_all_zc,
// recv_exact, recvv_exact). It is used like result<void> (true on success,
// error() otherwise, and it converts to result<void>), and it also says how
// many bytes went through, from the start of the buffer, before an error
// stopped the loop: a partial success, as the packet layer reports one.
#include <cstddef>
#include <system_error>

#include "coil/core/result.hpp"

namespace coil {

class [[nodiscard]] transfer_result {
 public:
  // Nothing to transfer, nothing failed.
  transfer_result() noexcept = default;
  // bytes_done bytes went through; error (if any) stopped the rest.
  transfer_result(std::size_t bytes_done, std::error_code error) noexcept : bytes_done_(bytes_done), error_(error) {}
  // A failure before the first byte (`co_return fail(e)`, with_timeout).
  transfer_result(tl::unexpected<std::error_code> e) noexcept : error_(e.value()) {}  // NOLINT: implicit, like result

  // Bytes transferred, success or not: the first bytes_done() bytes of the
  // buffer are written (sent), or filled (received); nothing beyond them is.
  std::size_t bytes_done() const noexcept { return bytes_done_; }
  bool has_value() const noexcept { return !error_; }
  explicit operator bool() const noexcept { return !error_; }
  // The error that stopped the transfer; empty on success.
  const std::error_code& error() const noexcept { return error_; }
  // Success or the error, without the count.
  operator result<void>() const noexcept {  // NOLINT: implicit, so result<void> code keeps compiling
    if (error_) return fail(error_);
    return {};
  }

 private:
  std::size_t bytes_done_ = 0;
  std::error_code error_;
};

}  // namespace coil
