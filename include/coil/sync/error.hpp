#pragma once
// Errors of coil's synchronization primitives, in their own category so the
// sync layer adds none to the core's list. Compare with `r.error() ==
// coil::sync_errc::closed`.
#include <string>
#include <system_error>

namespace coil {

enum class sync_errc {
  closed = 1,   // the channel was closed (and, for receivers, is drained)
  gate_closed,  // the gate is closed: it admits no new holders
};

namespace detail {
class sync_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "coil.sync"; }
  std::string message(int ev) const override {
    switch (static_cast<sync_errc>(ev)) {
      case sync_errc::closed: return "channel closed";
      case sync_errc::gate_closed: return "gate closed";
    }
    return "unknown coil.sync error";
  }
};
}  // namespace detail

// One instance per program (an inline function's static is shared across
// translation units), so codes compare equal wherever they were made.
inline const std::error_category& sync_category() noexcept {
  static const detail::sync_category_impl c;
  return c;
}

inline std::error_code make_error_code(sync_errc e) noexcept { return {static_cast<int>(e), sync_category()}; }

}  // namespace coil

template <>
struct std::is_error_code_enum<coil::sync_errc> : std::true_type {};
