#pragma once
// The examples' numeric arguments: the whole argument must be a number
// within stated bounds ("abc", "5x", "-1" for a count are refused), and bad
// arguments print the usage line and exit with status 2.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

// A whole number in [min, max].
inline std::optional<long long> parse_count(const char* s, long long min, long long max) {
  if (s == nullptr || *s == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return std::nullopt;
  return v;
}

// A finite number of seconds in (0, max].
inline std::optional<double> parse_seconds(const char* s, double max) {
  if (s == nullptr || *s == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v) || v <= 0 || v > max) return std::nullopt;
  return v;
}

// Prints "usage: <line>" and gives the exit status for bad arguments.
inline int usage(const char* line) {
  std::fprintf(stderr, "usage: %s\n", line);
  return 2;
}
