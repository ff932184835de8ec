#pragma once
// result<T>: a value or a std::error_code. Kernel results (-errno) become
// error codes only through kernel_error() (from_kernel() for whole results).
#include <cerrno>
#include <cstdint>
#include <system_error>

#include <tl/expected.hpp>

#include "coil/core/error.hpp"

namespace coil {

template <class T>
// A value, or the error_code saying why there is none.
using result = tl::expected<T, std::error_code>;

using tl::unexpected;

// True for result<T> types.
template <class T>
inline constexpr bool is_result_v = false;
template <class T>
inline constexpr bool is_result_v<tl::expected<T, std::error_code>> = true;

inline std::error_code errno_code(int err) noexcept {
  return {err, std::system_category()};
}

// Shorthand for `return fail(std::errc::timed_out);` in result-returning code.
template <class E>
inline tl::unexpected<std::error_code> fail(E e) noexcept {
  if constexpr (std::is_same_v<E, std::error_code>) {
    return tl::unexpected<std::error_code>(e);
  } else {
    return tl::unexpected<std::error_code>(make_error_code(e));
  }
}

// The one place a kernel failure (-errno) becomes an error code.
inline std::error_code kernel_error(int negative) noexcept { return errno_code(-negative); }

// A kernel return value (>= 0 success, -errno failure) as a result.
inline result<uint32_t> from_kernel(int32_t res) noexcept {
  if (res < 0) return tl::unexpected<std::error_code>(kernel_error(res));
  return static_cast<uint32_t>(res);
}

// Same, for syscalls that report failure through errno and return -1.
inline result<void> from_syscall(long ret) noexcept {
  if (ret < 0) return tl::unexpected<std::error_code>(errno_code(errno));
  return {};
}

}  // namespace coil
