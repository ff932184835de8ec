#pragma once
// mmap_space: reads a file by copying out of a shared read-only mapping of
// it, with a file_space behind it for everything a mapping cannot answer
// exactly. A read of page-cache-resident data costs a memcpy instead of a
// system call.
//
// Batching, as in the file_space, but for memory: the reads of one loop turn
// are copied together in the next turn, in a loop that prefetches ahead, so
// the cache and TLB misses of independent reads overlap instead of each
// costing a full trip to memory (for 64-byte objects scattered over 1 GiB,
// one at a time costs ~10x more than the batched copy). Without a runtime on
// the thread, or with batch = false, reads are copied at once.
//
// What goes to the file_space: writes (the mapping is read-only; the page
// cache is shared, so later mapped reads see them), bytes past the length
// mapped at open() or remap() (end-of-file errors and a grown file stay
// exact), and any read whose copy hit a page the file no longer has.
//
// Truncation is safe. Touching a mapped page past the current end of file
// raises SIGBUS; coil installs one process-wide SIGBUS handler (chaining to
// whatever was installed before, for every fault that is not a guarded copy)
// that maps a zero page over the faulting page so the copy can finish. The
// space then restores the file mapping under it and hands the read to the
// file_space, which reports end of file. One limit remains, as with any
// mapping: after a truncation, the bytes between the new end of file and the
// end of its page read as zeros until remap().
//
// Like the file_space, use it from one thread at a time (each thread maps the
// file itself). A SIGBUS handler installed after the first open() must chain
// to the previous one, or a truncated file kills the process.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "coil/core/result.hpp"
#include "coil/packet/file_space.hpp"

namespace coil::packet {

struct mmap_space_options {
  // MAP_POPULATE: build the page tables at open() (a read never takes a minor
  // fault; costs time and page-table memory up front).
  bool populate = false;
  // Copy each turn's reads together after prefetching them (see above).
  // false: copy inside submit, which saves a turn for a lone reader.
  bool batch = true;
};

struct mmap_space_stats {
  uint64_t mapped_reads = 0;  // views copied out of the mapping
  uint64_t forwarded = 0;     // views handed to the file_space
  uint64_t faults = 0;        // copies that hit a page past the end of file
  uint64_t batches = 0;       // turns whose reads were copied together
};

class mmap_space final : public space {
 public:
  // Maps backing.file() (which must be a regular file open for reading) from
  // offset 0 to its current size. The file_space must outlive the
  // mmap_space. An empty file maps nothing: every view goes to the file_space.
  static result<std::unique_ptr<mmap_space>> open(file_space& backing, mmap_space_options opts = {});

  mmap_space(const mmap_space&) = delete;
  mmap_space& operator=(const mmap_space&) = delete;
  ~mmap_space() override;

  void submit(view v) noexcept override;

  // Maps the file's current size (after it grew or shrank). Not while
  // packets are in flight on this space.
  result<void> remap() noexcept;

  uint64_t mapped_bytes() const noexcept { return len_; }
  file_space& backing() noexcept { return *backing_; }
  const mmap_space_stats& stats() const noexcept { return stats_; }

 private:
  friend struct mmap_space_access;
  mmap_space(file_space& backing, mmap_space_options opts) noexcept;
  result<void> map(uint64_t len) noexcept;
  void unmap() noexcept;
  // Starts the cache and TLB misses of the first and last bytes of n views.
  void prefetch(const view* v, std::size_t n) const noexcept;
  // Copies v out of the mapping and ends it, or forwards it to the file_space.
  void copy(view v) noexcept;
  // Copies [address, address+n) into dst; false if the copy cannot be trusted.
  bool copy_out(std::byte* dst, uint64_t address, uint64_t n) noexcept;

  file_space* backing_;
  mmap_space_options opts_;
  std::byte* base_ = nullptr;
  uint64_t len_ = 0;
  bool broken_ = false;  // a repair failed: the mapping is not trusted any more
  bool flush_scheduled_ = false;
  std::vector<view> queue_;     // this turn's reads
  std::vector<view> flushing_;  // the reads being copied
  detail::holder_hook hook_;    // drops queued views of a packet destroyed mid-flight
  const void* home_ = nullptr;
  mmap_space_stats stats_;
};

}  // namespace coil::packet
