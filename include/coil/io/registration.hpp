#pragma once
#include <cstdint>

#include "coil/core/intrusive_list.hpp"

namespace coil {

class uring_driver;

// A registered provided-buffer ring, linked into its driver so that a ring
// outliving the driver knows there is nothing left to unregister.
struct buf_ring_registration : list_hook {
  uring_driver* driver = nullptr;
  uint16_t group = 0;
};

}  // namespace coil
