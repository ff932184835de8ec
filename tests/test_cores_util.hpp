#pragma once
// Shared by the thread-per-core tests (and the alloc_cores binary): a group
// of two cores.
#include "coil/rt/cores.hpp"

namespace coil::test {

// Cores 0 and 1; spawn_slots bounds cores::spawn_on messages in flight per
// core pair.
inline cores_options two_cores(unsigned spawn_slots = cores_options{}.spawn_slots) {
  cores_options o;
  o.cpus = {0, 1};
  o.spawn_slots = spawn_slots;
  return o;
}

}  // namespace coil::test
