#pragma once
// Lateness percentiles for the timers benchmark, in a header of its own so
// the peer programs (bench/peers/, which do not use coil) report the same way.
#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace coil_bench {

// Log-linear histogram of nanosecond values: 32 linear buckets per power of
// two, so any percentile is within ~3% without keeping every sample.
class latency_histogram {
 public:
  void record(uint64_t ns) noexcept {
    ++counts_[index_of(ns)];
    ++total_;
    max_ = std::max(max_, ns);
  }
  // The smallest bucket bound with at least q of the samples at or below it.
  uint64_t quantile(double q) const noexcept {
    if (total_ == 0) return 0;
    const auto want = static_cast<uint64_t>(q * static_cast<double>(total_));
    uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > want) return std::min(upper_bound_of(i), max_);
    }
    return max_;
  }
  uint64_t max() const noexcept { return max_; }

 private:
  static constexpr unsigned sub_bits = 5;
  static constexpr uint64_t sub = uint64_t{1} << sub_bits;
  static std::size_t index_of(uint64_t v) noexcept {
    if (v < sub) return static_cast<std::size_t>(v);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
    const unsigned shift = msb - sub_bits;
    return static_cast<std::size_t>((shift + 1) * sub + ((v >> shift) & (sub - 1)));
  }
  static uint64_t upper_bound_of(std::size_t i) noexcept {
    if (i < sub) return i;
    const unsigned shift = static_cast<unsigned>(i / sub) - 1;
    return ((sub + i % sub + 1) << shift) - 1;
  }
  std::array<uint64_t, (64 - sub_bits + 1) * sub> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

}  // namespace coil_bench
