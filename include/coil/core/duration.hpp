#pragma once
// Durations at the edges. Every API that takes a duration or a deadline
// converts it here, and the conversion saturates instead of overflowing:
// anything longer than int64 nanoseconds hold (292 years) is forever, and a
// zero or negative duration is now.
#include <chrono>
#include <climits>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>

namespace coil {

// A deadline this far away is never reached; a duration this long never ends.
inline constexpr int64_t forever_ns = std::numeric_limits<int64_t>::max();

namespace detail {

inline constexpr int64_t min_ns = std::numeric_limits<int64_t>::min();

// a + b, clamped to [min_ns, forever_ns].
constexpr int64_t saturating_add(int64_t a, int64_t b) noexcept {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? forever_ns : min_ns;
  return r;
}

// a - b, clamped to [min_ns, forever_ns].
constexpr int64_t saturating_sub(int64_t a, int64_t b) noexcept {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? forever_ns : min_ns;
  return r;
}

// d in nanoseconds, clamped to [min_ns, forever_ns]. Any representation:
// signed, unsigned, wider than 64 bits, floating point (NaN counts as 0).
template <class Rep, class Period>
constexpr int64_t saturating_ns(std::chrono::duration<Rep, Period> d) noexcept {
  using r = std::ratio_divide<Period, std::nano>;
  if constexpr (std::is_floating_point_v<Rep>) {
    const long double ns = static_cast<long double>(d.count()) * r::num / r::den;
    if (ns != ns) return 0;
    // 2^63 is exact in long double; anything at or past it does not fit.
    if (ns >= 9223372036854775808.0L) return forever_ns;
    if (ns <= -9223372036854775808.0L) return min_ns;
    return static_cast<int64_t>(ns);
  } else {
    // 128 bits hold any standard count; |count / den| beyond int64 makes
    // the product beyond it too, so the rest cannot overflow.
    __extension__ typedef __int128 wide;
    const wide c = static_cast<wide>(d.count());
    const wide q = c / r::den;
    if (q > forever_ns) return forever_ns;
    if (q < min_ns) return min_ns;
    const wide ns = q * r::num + (c % r::den) * r::num / r::den;
    if (ns > forever_ns) return forever_ns;
    if (ns < min_ns) return min_ns;
    return static_cast<int64_t>(ns);
  }
}

}  // namespace detail

// A timeout in nanoseconds (runtime::poll_once's, -1 for none) as the int
// milliseconds poll(2) and epoll_wait take, rounded up so a wait never ends
// early, INT_MAX at most.
constexpr int poll_timeout_ms(int64_t timeout_ns) noexcept {
  if (timeout_ns < 0) return -1;
  const int64_t ms = timeout_ns / 1'000'000 + (timeout_ns % 1'000'000 != 0);
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

// A duration argument: any std::chrono::duration, held as saturated
// nanoseconds (see above), so seconds::max() means forever, not overflow.
struct duration_ns {
  int64_t ns;
  template <class Rep, class Period>
  constexpr duration_ns(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT: implicit, like a duration
      : ns(detail::saturating_ns(d)) {}
};

}  // namespace coil
