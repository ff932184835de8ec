#pragma once
// cached_space: a small LRU cache of fixed-size pages over another space, for
// walks that touch the same pages again and again (page tables, list nodes).
// Reads are split at page boundaries; a cached page is copied at once, a
// missing one is fetched whole with one packet to the backing space, and
// every read of that page arriving meanwhile waits for the same fetch. A
// fetch that fails anywhere is not cached: its waiters go to the backing
// space themselves, so partial success stays exact to the byte. Writes go
// straight through and drop the pages they touch (a page being fetched
// while written is served to its waiters but not kept).
//
// Lookup is a scan of the slots: meant for tens of pages, not thousands.
// Slot buffers and waiter lists are allocated up front or keep their
// capacity, so steady state allocates nothing. The backing space must outlive
// the cache, which must have no fetch in flight when destroyed; use it from
// one thread at a time.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "coil/packet/space.hpp"

namespace coil::packet {

struct cached_space_options {
  uint64_t page_bytes = 4096;
  std::size_t pages = 64;
};

struct cached_space_stats {
  uint64_t hits = 0;       // page pieces served from the cache (or from a fetch already under way)
  uint64_t misses = 0;     // fetches started
  uint64_t bypassed = 0;   // pieces sent to the backing space (every slot busy, or a failed fetch)
  uint64_t evictions = 0;  // cached pages dropped to make room
};

class cached_space final : public space {
 public:
  // page_bytes and pages must be > 0 (asserted).
  explicit cached_space(space& backing, cached_space_options opts = {});
  ~cached_space() override;
  cached_space(const cached_space&) = delete;
  cached_space& operator=(const cached_space&) = delete;

  void submit(view v) noexcept override;

  // Forgets every cached page (after the backing changed behind the cache).
  void invalidate() noexcept;
  const cached_space_stats& stats() const noexcept { return stats_; }

  struct slot;

 private:
  friend struct cached_space_access;
  space* backing_;
  cached_space_options opts_;
  cached_space_stats stats_;
  std::unique_ptr<slot[]> slots_;
  uint64_t clock_ = 0;  // LRU time
  detail::holder_hook hook_;
  const void* home_ = nullptr;
};

}  // namespace coil::packet
