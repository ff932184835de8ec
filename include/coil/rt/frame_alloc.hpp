#pragma once
// Coroutine frame recycling: frames are carved from per-thread free lists by
// size class, so a steady state of spawning and awaiting tasks does not touch
// the global heap. Disabled under AddressSanitizer, which must see every free.
#include <cstddef>

namespace coil::detail {

void* frame_allocate(std::size_t size);
void frame_deallocate(void* p, std::size_t size) noexcept;

}  // namespace coil::detail
