#pragma once
// Sizes for the stress tests (tests/stress_*.cpp, ctest label "stress").
// COIL_STRESS_SCALE multiplies the full sizes of issue 7; unset, it is 0.05,
// so the default run stays short under CI and sanitizers. The full run:
//   COIL_STRESS_SCALE=1 ctest --test-dir build -L stress
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace coil::stress {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool under_asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool under_asan = true;
#else
inline constexpr bool under_asan = false;
#endif
#else
inline constexpr bool under_asan = false;
#endif

inline double scale() {
  const char* s = std::getenv("COIL_STRESS_SCALE");
  if (s == nullptr || *s == '\0') return 0.05;
  const double v = std::strtod(s, nullptr);
  return v > 0 && v <= 100 ? v : 0.05;
}

// full * scale(), but never below floor.
inline uint64_t scaled(uint64_t full, uint64_t floor) {
  return std::max<uint64_t>(floor, static_cast<uint64_t>(std::llround(static_cast<double>(full) * scale())));
}

// Open descriptors of this process.
inline std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n - 1;  // the iterator's own
}

// Resident set size in KiB (VmRSS), 0 if unknown.
inline uint64_t rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

}  // namespace coil::stress
