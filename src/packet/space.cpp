// The outcome bookkeeping and the inline spaces (memory, mapped, striped).
#include "coil/packet/space.hpp"

#include <algorithm>
#include <cstring>

namespace coil::packet {

void outcome::erase(std::size_t i) noexcept {
  for (std::size_t j = i + 1; j < count_; ++j) f_[j - 1] = f_[j];
  --count_;
}

void outcome::record_failure(byte_range r, std::error_code e) noexcept {
  if (r.len == 0) return;
  failed_bytes_ += r.len;
  // Insertion point: first tracked failure above r.
  std::size_t i = 0;
  while (i < count_ && f_[i].range.offset < r.offset) ++i;
  // At or above a dropped failure: bytes there are no longer described.
  if (r.offset >= known_until_) return;
  // Merge with touching neighbours that failed the same way.
  if (i > 0 && f_[i - 1].range.end() == r.offset && f_[i - 1].error == e) {
    f_[i - 1].range.len += r.len;
    if (i < count_ && f_[i].range.offset == f_[i - 1].range.end() && f_[i].error == e) {
      f_[i - 1].range.len += f_[i].range.len;
      erase(i);
    }
    return;
  }
  if (i < count_ && r.end() == f_[i].range.offset && f_[i].error == e) {
    f_[i].range.offset = r.offset;
    f_[i].range.len += r.len;
    return;
  }
  if (count_ == max_failures) {
    // Keep the lowest-addressed ones: drop r or the highest tracked one.
    if (i == count_) {
      known_until_ = r.offset;
      return;
    }
    known_until_ = f_[--count_].range.offset;
  }
  for (std::size_t j = count_; j > i; --j) f_[j] = f_[j - 1];
  f_[i] = failed_range{r, e};
  ++count_;
}

void memory_space::submit(view v) noexcept {
  const uint64_t size = bytes_.size();
  if (v.address() >= size) return v.fail(errc::unmapped);
  if (v.end_address() > size) {
    view head = v.take_front(size - v.address());
    v.fail(errc::unmapped);
    v = std::move(head);
  }
  std::byte* mem = bytes_.data() + v.address();
  if (v.dir() == direction::read) {
    std::memcpy(v.data(), mem, v.size());
  } else {
    std::memmove(mem, v.data(), v.size());
  }
  v.done();
}

result<void> mapped_space::map(uint64_t address, uint64_t len, space& target, uint64_t target_address) {
  if (len == 0 || address + len < address) return fail(std::errc::invalid_argument);
  auto it = std::lower_bound(regions_.begin(), regions_.end(), address,
                             [](const region& r, uint64_t a) { return r.address < a; });
  if (it != regions_.end() && it->address < address + len) return fail(std::errc::invalid_argument);
  if (it != regions_.begin() && std::prev(it)->end() > address) return fail(std::errc::invalid_argument);
  regions_.insert(it, region{address, len, &target, target_address});
  return {};
}

result<void> mapped_space::unmap(uint64_t address) {
  auto it = std::lower_bound(regions_.begin(), regions_.end(), address,
                             [](const region& r, uint64_t a) { return r.address < a; });
  if (it == regions_.end() || it->address != address) return fail(std::errc::no_such_file_or_directory);
  regions_.erase(it);
  return {};
}

void mapped_space::submit(view v) noexcept {
  // First region ending above the view's start.
  auto it = std::upper_bound(regions_.begin(), regions_.end(), v.address(),
                             [](uint64_t a, const region& r) { return a < r.end(); });
  while (v.live()) {
    const uint64_t at = v.address();
    if (it == regions_.end() || it->address >= v.end_address()) return v.fail(errc::unmapped);
    if (at < it->address) {  // a hole before the next region
      view hole = v.take_front(it->address - at);
      hole.fail(errc::unmapped);
      continue;
    }
    const uint64_t n = std::min(v.end_address(), it->end()) - at;
    view piece = n < v.size() ? v.take_front(n) : std::move(v);
    piece.set_address(it->target_address + (at - it->address));
    it->target->submit(std::move(piece));
    ++it;
  }
}

striped_space::striped_space(std::vector<space*> backends, uint64_t stripe_bytes)
    : backends_(std::move(backends)), stripe_(stripe_bytes) {
  COIL_ASSERT(!backends_.empty() && stripe_ > 0, "striped_space needs backends and a stripe size");
  for (space* b : backends_) COIL_ASSERT(b != nullptr, "striped_space: null backend");
}

striped_space::location striped_space::locate(uint64_t address) const noexcept {
  const uint64_t stripe = address / stripe_;
  const uint64_t n = backends_.size();
  return {static_cast<std::size_t>(stripe % n), (stripe / n) * stripe_ + address % stripe_};
}

void striped_space::submit(view v) noexcept {
  while (v.live()) {
    const uint64_t at = v.address();
    const uint64_t n = std::min(v.size(), stripe_ - at % stripe_);
    view piece = n < v.size() ? v.take_front(n) : std::move(v);
    const location loc = locate(at);
    piece.set_address(loc.address);
    backends_[loc.backend]->submit(std::move(piece));
  }
}

}  // namespace coil::packet
