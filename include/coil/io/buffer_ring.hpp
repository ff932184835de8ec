#pragma once
// Provided buffers: a pool of equal-size buffers that the kernel picks from
// at the moment data arrives (io_uring's IORING_REGISTER_PBUF_RING), so a
// connection waiting in a multishot recv holds no buffer at all. One ring is
// shared by any number of connections of one runtime.
//
// On the epoll driver the same pool is a user-space free list; a recv takes
// a buffer right before its nonblocking call and gives it back on EAGAIN.
//
// A received buffer is lent to the user (see net::rx_buffer) until released;
// release() returns it to the kernel. When every buffer is lent out, the
// kernel ends multishot recvs with ENOBUFS; those streams wait in `starved`
// and are re-armed by the next release.
//
// Lifetime: the memory lives until the owner's handle (buffer_ring::ptr), every
// stream using it and every lent buffer are gone, whatever the order; a
// driver destroyed first just leaves nothing to unregister.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "coil/core/intrusive_list.hpp"
#include "coil/core/result.hpp"
#include "coil/io/registration.hpp"

struct io_uring_buf_ring;

namespace coil {

class driver;

class buffer_ring {
 public:
  // A stream waiting for a buffer to come back.
  struct starved_hook : list_hook {
    void (*on_available)(starved_hook&) noexcept = nullptr;
  };

  // The owner's handle; streams and lent buffers keep the ring alive too.
  struct disown {
    void operator()(buffer_ring* r) const noexcept { r->drop_owner(); }
  };
  using ptr = std::unique_ptr<buffer_ring, disown>;

  // count: a power of two in [1, 32768]; size: bytes per buffer (> 0).
  static result<ptr> create(driver& d, uint32_t count, uint32_t size) noexcept;
  buffer_ring(const buffer_ring&) = delete;
  buffer_ring& operator=(const buffer_ring&) = delete;

  uint16_t group() const noexcept { return reg_.group; }
  uint32_t count() const noexcept { return count_; }
  uint32_t buffer_size() const noexcept { return size_; }
  // Buffers the kernel (or a readiness recv) can fill now.
  uint32_t available() const noexcept { return count_ - lent_; }
  // True when the kernel picks buffers itself (io_uring).
  bool kernel_managed() const noexcept { return br_ != nullptr; }
  std::byte* data(uint16_t bid) const noexcept { return base_ + static_cast<std::size_t>(bid) * size_; }

  // --- used by recv streams ----------------------------------------------------
  // A completion handed the user buffer bid (io_uring picked it).
  void note_lent() noexcept { ++lent_; }
  // Gives a lent buffer back; wakes starved streams.
  void release(uint16_t bid) noexcept;
  // Readiness path: takes a free buffer (-1 when none) / undoes the take.
  int take() noexcept;
  void put_back(uint16_t bid) noexcept;
  void starve(starved_hook& h) noexcept {
    ++starvations_;
    starved_.push_back(h);
  }
  // Per-buffer link, for streams that queue received buffers in order
  // without storage of their own.
  uint16_t& next_of(uint16_t bid) noexcept { return links_[bid].next; }
  uint32_t& length_of(uint16_t bid) noexcept { return links_[bid].len; }
  void attach() noexcept { ++users_; }
  void detach() noexcept {
    --users_;
    free_if_unused();
  }
  // Times a stream found every buffer lent out (ENOBUFS).
  uint64_t starvations() const noexcept { return starvations_; }

  static constexpr uint16_t none = 0xffff;

 private:
  struct link {
    uint32_t len = 0;
    uint16_t next = none;
  };
  buffer_ring() = default;
  ~buffer_ring();
  void give_to_kernel(uint16_t bid) noexcept;
  void drop_owner() noexcept {
    owned_ = false;
    free_if_unused();
  }
  void free_if_unused() noexcept {
    if (!owned_ && users_ == 0 && lent_ == 0) delete this;
  }

  buf_ring_registration reg_;  // io_uring: the group, while the driver lives
  io_uring_buf_ring* br_ = nullptr;  // io_uring: the shared ring of buffer descriptors
  std::size_t br_bytes_ = 0;
  std::byte* base_ = nullptr;        // count_ * size_ bytes
  std::size_t base_bytes_ = 0;
  std::unique_ptr<link[]> links_;
  std::unique_ptr<uint16_t[]> free_;  // readiness path: stack of free buffer ids
  uint32_t free_count_ = 0;
  uint32_t count_ = 0;
  uint32_t size_ = 0;
  uint32_t lent_ = 0;
  uint32_t users_ = 0;
  uint64_t starvations_ = 0;
  bool owned_ = true;
  intrusive_list<starved_hook> starved_;
};

}  // namespace coil
