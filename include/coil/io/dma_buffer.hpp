#pragma once
// dma_buffer: memory for O_DIRECT and other device transfers. Anonymous
// mmap, so it starts on a page boundary (or a larger power-of-two alignment
// on request), never shares pages with heap objects, and can be locked in RAM
// so the kernel does not have to fault pages in under a transfer.
// Move-only; unmapped on destruction.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "coil/core/result.hpp"

namespace coil {

struct dma_options {
  std::size_t alignment = 4096;  // power of two; at least the page size is always given
  bool lock = false;             // mlock: fails (ENOMEM/EPERM) beyond RLIMIT_MEMLOCK
  bool populate = true;          // fault the pages in now, not during the first transfer
};

// Aligned anonymous memory for O_DIRECT transfers. Move-only; unmapped when destroyed.
class dma_buffer {
 public:
  dma_buffer() noexcept = default;
  dma_buffer(dma_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        map_len_(std::exchange(o.map_len_, 0)),
        size_(std::exchange(o.size_, 0)),
        locked_(std::exchange(o.locked_, false)) {}
  dma_buffer& operator=(dma_buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      map_len_ = std::exchange(o.map_len_, 0);
      size_ = std::exchange(o.size_, 0);
      locked_ = std::exchange(o.locked_, false);
    }
    return *this;
  }
  dma_buffer(const dma_buffer&) = delete;
  dma_buffer& operator=(const dma_buffer&) = delete;
  ~dma_buffer() { release(); }

  // size bytes (> 0), zero-filled, starting at a multiple of opts.alignment.
  static result<dma_buffer> allocate(std::size_t size, const dma_options& opts = {}) noexcept {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t align = opts.alignment < page ? page : opts.alignment;
    if (size == 0 || (align & (align - 1)) != 0) return fail(std::errc::invalid_argument);
    const std::size_t len = round_up(size, page);
    if (len < size) return fail(std::errc::not_enough_memory);
    // Over-map by the extra alignment, then trim both ends.
    const std::size_t extra = align - page;
    const int flags = MAP_PRIVATE | MAP_ANONYMOUS | (opts.populate ? MAP_POPULATE : 0);
    void* p = ::mmap(nullptr, len + extra, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) return fail(errno_code(errno));
    auto* base = static_cast<std::byte*>(p);
    std::byte* start = base + (round_up(reinterpret_cast<uintptr_t>(base), align) - reinterpret_cast<uintptr_t>(base));
    if (start != base) (void)::munmap(base, static_cast<std::size_t>(start - base));
    const std::size_t tail = static_cast<std::size_t>((base + len + extra) - (start + len));
    if (tail != 0) (void)::munmap(start + len, tail);
    dma_buffer b;
    b.data_ = start;
    b.map_len_ = len;
    b.size_ = size;
    if (opts.lock) {
      if (::mlock(start, len) != 0) return fail(errno_code(errno));  // b unmaps itself
      b.locked_ = true;
    }
    return b;
  }

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  explicit operator bool() const noexcept { return data_ != nullptr; }
  bool locked() const noexcept { return locked_; }

  std::span<std::byte> span() noexcept { return {data_, size_}; }
  std::span<const std::byte> span() const noexcept { return {data_, size_}; }
  // Part of the buffer (offsets and lengths must keep O_DIRECT alignment).
  std::span<std::byte> subspan(std::size_t offset, std::size_t count) noexcept { return span().subspan(offset, count); }
  std::span<const std::byte> subspan(std::size_t offset, std::size_t count) const noexcept {
    return span().subspan(offset, count);
  }

 private:
  static std::size_t round_up(std::size_t v, std::size_t a) noexcept { return (v + a - 1) & ~(a - 1); }
  void release() noexcept {
    if (data_ == nullptr) return;
    (void)::munmap(data_, map_len_);  // also unlocks
    data_ = nullptr;
    map_len_ = size_ = 0;
    locked_ = false;
  }

  std::byte* data_ = nullptr;  // start of the mapping
  std::size_t map_len_ = 0;    // size_ rounded up to pages
  std::size_t size_ = 0;
  bool locked_ = false;
};

}  // namespace coil
