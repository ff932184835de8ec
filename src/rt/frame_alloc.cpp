#include "coil/rt/frame_alloc.hpp"

#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COIL_NO_FRAME_RECYCLING 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define COIL_NO_FRAME_RECYCLING 1
#endif
#endif

namespace coil::detail {
namespace {

[[maybe_unused]] constexpr std::size_t granule = 64;  // unused under sanitizers (no recycling)
constexpr std::size_t classes = 32;         // frames up to 2 KiB are recycled
[[maybe_unused]] constexpr std::size_t max_cached_per_class = 1024;

struct free_block {
  free_block* next;
};

thread_local bool cache_gone = false;  // frames freed after thread teardown

struct frame_cache {
  free_block* heads[classes] = {};
  std::size_t counts[classes] = {};
  ~frame_cache() {
    cache_gone = true;
    for (auto*& h : heads) {
      while (h != nullptr) {
        free_block* n = h->next;
        ::operator delete(h);
        h = n;
      }
    }
  }
};

thread_local frame_cache cache;

}  // namespace

void* frame_allocate(std::size_t size) {
#ifndef COIL_NO_FRAME_RECYCLING
  const std::size_t cls = (size + granule - 1) / granule;
  if (cls < classes && !cache_gone) {
    if (free_block* b = cache.heads[cls]) {
      cache.heads[cls] = b->next;
      --cache.counts[cls];
      return b;
    }
    return ::operator new(cls * granule);
  }
#endif
  return ::operator new(size);
}

void frame_deallocate(void* p, [[maybe_unused]] std::size_t size) noexcept {  // unused without recycling
#ifndef COIL_NO_FRAME_RECYCLING
  const std::size_t cls = (size + granule - 1) / granule;
  if (cls < classes && !cache_gone && cache.counts[cls] < max_cached_per_class) {
    auto* b = static_cast<free_block*>(p);
    b->next = cache.heads[cls];
    cache.heads[cls] = b;
    ++cache.counts[cls];
    return;
  }
#endif
  ::operator delete(p);
}

}  // namespace coil::detail
