#pragma once
// Text as bytes: the send, write and frame calls that take byte spans also
// take strings (std::string, std::string_view, literals) and char spans, so
// callers need no std::as_bytes(std::span(s)).
#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>

namespace coil {

// Anything that converts to std::string_view (a literal has no NUL byte that
// way), or failing that to a span of const char (std::vector<char>).
template <class Chars>
concept char_data =
    std::convertible_to<const Chars&, std::string_view> || std::convertible_to<const Chars&, std::span<const char>>;

// The bytes of s, with s's lifetime.
template <char_data Chars>
std::span<const std::byte> bytes_of(const Chars& s) noexcept {
  if constexpr (std::convertible_to<const Chars&, std::string_view>) {
    const std::string_view v(s);
    return std::as_bytes(std::span<const char>(v.data(), v.size()));
  } else {
    return std::as_bytes(std::span<const char>(s));
  }
}

}  // namespace coil
