#pragma once
// copy: coil::copy between two loopback TCP connections, through a buffer or
// with splice.
#include <cstdint>
#include <string>

#include "common.hpp"

namespace coil_bench {

struct copy_result {
  uint64_t bytes = 0;
  double seconds = 0;
  std::string failure;
  double mb_per_s() const noexcept { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e6 : 0; }
};

// One run of `seconds` on a fresh runtime on this thread.
copy_result run_copy(bool splice, uint64_t buffer, double seconds);

}  // namespace coil_bench
