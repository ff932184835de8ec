#pragma once
// The counting global allocator of the alloc_*.cpp binaries. Each of them is
// its own program and includes this once: it replaces operator new for the
// whole process (every thread) and counts the calls.
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

inline std::atomic<std::size_t> allocations{0};

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  std::abort();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

// Under ASan the frame allocator does not recycle frames (so use-after-free
// of a frame is caught): every task frame is a fresh allocation there.
#if defined(__SANITIZE_ADDRESS__)
#define COIL_FRAMES_NOT_RECYCLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COIL_FRAMES_NOT_RECYCLED 1
#endif
#endif
