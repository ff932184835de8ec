#pragma once
// I/O spaces: the backends a packet's views are submitted to. A space takes
// a view whose address is in its own address space and must end it, now or
// later. Composite spaces (mapped, striped) split and forward; leaf spaces
// (memory, file) move bytes. Spaces hold plain pointers to the spaces below
// them: the caller keeps the tree alive while packets are in flight.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "coil/core/result.hpp"
#include "coil/packet/packet.hpp"

namespace coil::packet {

class space {
 public:
  virtual ~space() = default;
  // Takes v (v.address() is in this space) and ends it, possibly later.
  virtual void submit(view v) noexcept = 0;
};

// Bytes in RAM, borrowed from the caller. Addresses past the end fail with
// errc::unmapped. Completes inline.
class memory_space final : public space {
 public:
  explicit memory_space(std::span<std::byte> bytes) noexcept : bytes_(bytes) {}
  void submit(view v) noexcept override;
  std::span<std::byte> bytes() const noexcept { return bytes_; }

 private:
  std::span<std::byte> bytes_;
};

// A translation table: virtual ranges mapped to (backend, offset). Bytes in
// no region fail with errc::unmapped.
class mapped_space final : public space {
 public:
  struct region {
    uint64_t address;  // virtual start
    uint64_t len;
    space* target;
    uint64_t target_address;
    uint64_t end() const noexcept { return address + len; }
  };

  // Fails with invalid_argument for an empty region, a null target or an
  // overlap with an existing region. Not for use while packets are in flight.
  result<void> map(uint64_t address, uint64_t len, space& target, uint64_t target_address);
  // Removes the regions starting at address; not_found if none.
  result<void> unmap(uint64_t address);
  std::span<const region> regions() const noexcept { return regions_; }

  void submit(view v) noexcept override;

 private:
  std::vector<region> regions_;  // sorted by address, disjoint
};

// RAID-0: address a lives on backend (a / stripe) % n at offset
// (a / stripe / n) * stripe + a % stripe.
class striped_space final : public space {
 public:
  // backends must be non-empty and stripe_bytes > 0 (asserted).
  striped_space(std::vector<space*> backends, uint64_t stripe_bytes);
  void submit(view v) noexcept override;

  struct location {
    std::size_t backend;
    uint64_t address;
  };
  location locate(uint64_t address) const noexcept;

 private:
  std::vector<space*> backends_;
  uint64_t stripe_;
};

// Awaitable packets over any space: co_await yields an outcome.
template <class Space>
packet_awaiter<Space> read(Space& s, uint64_t address, std::span<std::byte> buf) noexcept {
  return packet_awaiter<Space>(s, direction::read, buf.data(), address, buf.size());
}
template <class Space>
packet_awaiter<Space> write(Space& s, uint64_t address, std::span<const std::byte> buf) noexcept {
  // The buffer is only read for write packets.
  return packet_awaiter<Space>(s, direction::write, const_cast<std::byte*>(buf.data()), address, buf.size());
}

// The same with fn(byte_range, std::error_code) called as each fragment ends.
template <class Space, class Fn>
fragment_awaiter<Space, Fn> read_each(Space& s, uint64_t address, std::span<std::byte> buf, Fn fn) noexcept {
  return fragment_awaiter<Space, Fn>(s, direction::read, buf.data(), address, buf.size(), std::move(fn));
}
template <class Space, class Fn>
fragment_awaiter<Space, Fn> write_each(Space& s, uint64_t address, std::span<const std::byte> buf, Fn fn) noexcept {
  return fragment_awaiter<Space, Fn>(s, direction::write, const_cast<std::byte*>(buf.data()), address, buf.size(),
                                     std::move(fn));
}

}  // namespace coil::packet
