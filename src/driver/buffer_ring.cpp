#include "coil/io/buffer_ring.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <new>

#include <liburing.h>

#include "coil/core/assert.hpp"
#include "coil/io/driver.hpp"
#include "coil/io/ops/net.hpp"

namespace coil {
namespace {

std::size_t page_round(std::size_t n) noexcept {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

void* map_anon(std::size_t bytes) noexcept {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

result<buffer_ring::ptr> buffer_ring::create(driver& d, uint32_t count, uint32_t size) noexcept {
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0 || size == 0) {
    return fail(std::errc::invalid_argument);
  }
  ptr r(new (std::nothrow) buffer_ring());
  if (!r) return fail(std::errc::not_enough_memory);
  r->count_ = count;
  r->size_ = size;
  r->base_bytes_ = page_round(static_cast<std::size_t>(count) * size);
  r->base_ = static_cast<std::byte*>(map_anon(r->base_bytes_));
  if (r->base_ == nullptr) return fail(errno_code(errno));
  r->links_.reset(new (std::nothrow) link[count]);
  if (!r->links_) return fail(std::errc::not_enough_memory);

  if (uring_driver* u = d.uring()) {
    r->br_bytes_ = page_round(sizeof(io_uring_buf) * count);
    r->br_ = static_cast<io_uring_buf_ring*>(map_anon(r->br_bytes_));
    if (r->br_ == nullptr) return fail(errno_code(errno));
    io_uring_buf_ring_init(r->br_);
    auto reg = u->register_buf_ring(r->br_, count, r->reg_);
    if (!reg) {
      // Kernels before 5.19 have no buffer rings: multishot recv cannot work.
      ::munmap(r->br_, r->br_bytes_);
      r->br_ = nullptr;
      if (reg.error() == std::errc::invalid_argument) return fail(errc::unsupported_op);
      return fail(reg.error());
    }
    for (uint32_t i = 0; i < count; ++i) {
      io_uring_buf_ring_add(r->br_, r->data(static_cast<uint16_t>(i)), size, static_cast<unsigned short>(i),
                            io_uring_buf_ring_mask(count), static_cast<int>(i));
    }
    io_uring_buf_ring_advance(r->br_, static_cast<int>(count));
  } else {
    r->free_.reset(new (std::nothrow) uint16_t[count]);
    if (!r->free_) return fail(std::errc::not_enough_memory);
    for (uint32_t i = 0; i < count; ++i) r->free_[i] = static_cast<uint16_t>(count - 1 - i);
    r->free_count_ = count;
  }
  return r;
}

buffer_ring::~buffer_ring() {
  if (br_ != nullptr) {
    if (reg_.driver != nullptr) reg_.driver->unregister_buf_ring(reg_);
    ::munmap(br_, br_bytes_);
  }
  if (base_ != nullptr) ::munmap(base_, base_bytes_);
}

void buffer_ring::give_to_kernel(uint16_t bid) noexcept {
  io_uring_buf_ring_add(br_, data(bid), size_, bid, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
}

void buffer_ring::release(uint16_t bid) noexcept {
  COIL_ASSERT(bid < count_ && lent_ > 0, "buffer_ring::release of a buffer that is not lent");
  --lent_;
  if (!owned_ && users_ == 0) {
    free_if_unused();  // nobody can receive into it any more
    return;
  }
  if (br_ != nullptr) {
    give_to_kernel(bid);
  } else {
    free_[free_count_++] = bid;
  }
  if (starved_.empty()) return;
  // Every starved stream gets another try: an armed recv holds no buffer
  // until its data arrives, so whichever has data takes this one.
  intrusive_list<starved_hook> again;
  again.splice_back(starved_);
  while (starved_hook* h = again.pop_front()) h->on_available(*h);
}

int buffer_ring::take() noexcept {
  if (free_count_ == 0) return -1;
  ++lent_;
  return free_[--free_count_];
}

void buffer_ring::put_back(uint16_t bid) noexcept {
  --lent_;
  free_[free_count_++] = bid;
}

// ---- the multishot recv that consumes a ring -------------------------------------

void ops::recv_multishot::prep(io_uring_sqe& s) const noexcept {
  io_uring_prep_recv_multishot(&s, fd, nullptr, 0, flags);
  s.flags |= IOSQE_BUFFER_SELECT;
  s.buf_group = ring->group();
}

int32_t ops::recv_multishot::perform(bool nowait) const noexcept {
  const int bid = ring->take();
  if (bid < 0) return -ENOBUFS;
  const auto id = static_cast<uint16_t>(bid);
  const int32_t r = detail::kernel_ret(::recv(fd, ring->data(id), ring->buffer_size(), flags | detail::dontwait(nowait)));
  if (r <= 0) {
    ring->put_back(id);
    return r;
  }
  out_flags = IORING_CQE_F_BUFFER | (uint32_t{id} << IORING_CQE_BUFFER_SHIFT);
  return r;
}

bool ops::recv_multishot::emptied(int32_t r) const noexcept {
  return reads_to_empty() && (r == -EAGAIN || (r > 0 && static_cast<uint32_t>(r) < ring->buffer_size()));
}

}  // namespace coil
