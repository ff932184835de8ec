// cached_space: page lookup, fetches shared by every waiting read, write
// invalidation and abandoned packets.
#include "coil/packet/cached_space.hpp"

#include <cstring>
#include <optional>
#include <vector>

namespace coil::packet {

namespace {
class fetch_packet final : public packet_state {
 public:
  fetch_packet(cached_space& c, cached_space::slot& s, std::byte* buf, uint64_t address, uint64_t len) noexcept
      : packet_state(direction::read, buf, address, len), cache_(&c), slot_(&s) {}

 private:
  void on_finished() noexcept override;
  cached_space* cache_;
  cached_space::slot* slot_;
};
}  // namespace

struct cached_space::slot {
  enum class state : uint8_t { empty, fetching, valid };
  uint64_t page = 0;
  uint64_t used = 0;  // LRU time of the last hit
  state st = state::empty;
  bool stale = false;  // written while fetching: serve the waiters, do not keep
  std::unique_ptr<std::byte[]> bytes;
  std::vector<view> waiters;
  std::optional<fetch_packet> fetch;  // re-created per fetch; never destroyed from its own callback
};

struct cached_space_access {
  using slot = cached_space::slot;

  static slot* find(cached_space& c, uint64_t page) noexcept {
    for (std::size_t i = 0; i < c.opts_.pages; ++i) {
      slot& s = c.slots_[i];
      if (s.st != slot::state::empty && s.page == page) return &s;
    }
    return nullptr;
  }

  // An empty slot, else the least recently used cached one; null if every
  // slot is fetching.
  static slot* victim(cached_space& c) noexcept {
    slot* best = nullptr;
    for (std::size_t i = 0; i < c.opts_.pages; ++i) {
      slot& s = c.slots_[i];
      if (s.st == slot::state::empty) return &s;
      if (s.st == slot::state::valid && (best == nullptr || s.used < best->used)) best = &s;
    }
    if (best != nullptr) ++c.stats_.evictions;
    return best;
  }

  static void serve(cached_space& c, slot& s, view v) noexcept {
    std::memcpy(v.data(), s.bytes.get() + (v.address() - s.page * c.opts_.page_bytes), v.size());
    v.done();
  }

  static void read_piece(cached_space& c, view v) noexcept {
    const uint64_t page = v.address() / c.opts_.page_bytes;
    if (slot* s = find(c, page)) {
      ++c.stats_.hits;
      s->used = ++c.clock_;
      if (s->st == slot::state::valid) return serve(c, *s, std::move(v));
      s->waiters.push_back(std::move(v));  // capacity kept across fetches
      return;
    }
    slot* s = victim(c);
    if (s == nullptr) {
      ++c.stats_.bypassed;
      return c.backing_->submit(std::move(v));
    }
    ++c.stats_.misses;
    s->page = page;
    s->used = ++c.clock_;
    s->st = slot::state::fetching;
    s->stale = false;
    s->waiters.push_back(std::move(v));
    const uint64_t pb = c.opts_.page_bytes;
    s->fetch.emplace(c, *s, s->bytes.get(), page * pb, pb);
    s->fetch->start(*c.backing_);  // may finish inline (fetched() runs first)
  }

  static void fetched(cached_space& c, slot& s, const outcome& o) noexcept {
    const bool ok = o.all_ok();
    s.st = ok && !s.stale ? slot::state::valid : slot::state::empty;
    // Serving ends views, which only schedules their packets: nothing here
    // re-enters this slot, so the list can be walked in place.
    for (view& w : s.waiters) {
      if (ok) {
        serve(c, s, std::move(w));
      } else {
        ++c.stats_.bypassed;
        c.backing_->submit(std::move(w));  // per-byte errors from the source
      }
    }
    s.waiters.clear();
  }

  static void drop(detail::holder_hook& h, packet_state& p) noexcept {
    auto& c = *static_cast<cached_space*>(h.owner);
    for (std::size_t i = 0; i < c.opts_.pages; ++i) {
      std::vector<view>& ws = c.slots_[i].waiters;
      for (view& w : ws) {
        if (w.live() && w.of(p)) w.detach();
      }
      std::erase_if(ws, [](const view& w) { return !w.live(); });
    }
  }
};

void fetch_packet::on_finished() noexcept { cached_space_access::fetched(*cache_, *slot_, result()); }

cached_space::cached_space(space& backing, cached_space_options opts)
    : backing_(&backing), opts_(opts), slots_(new slot[opts.pages]) {
  COIL_ASSERT(opts_.page_bytes > 0 && opts_.pages > 0, "cached_space needs pages of at least one byte");
  for (std::size_t i = 0; i < opts_.pages; ++i) slots_[i].bytes.reset(new std::byte[opts_.page_bytes]);
  hook_.drop = &cached_space_access::drop;
  hook_.owner = this;
}

cached_space::~cached_space() {
  for (std::size_t i = 0; i < opts_.pages; ++i) {
    COIL_ASSERT(slots_[i].st != slot::state::fetching, "cached_space destroyed while fetching");
  }
}

void cached_space::invalidate() noexcept {
  for (std::size_t i = 0; i < opts_.pages; ++i) {
    slot& s = slots_[i];
    if (s.st == slot::state::valid) s.st = slot::state::empty;
    if (s.st == slot::state::fetching) s.stale = true;
  }
}

void cached_space::submit(view v) noexcept {
  detail::register_holder(hook_, home_);
  const uint64_t pb = opts_.page_bytes;
  if (v.dir() == direction::write) {
    const uint64_t first = v.address() / pb, last = (v.end_address() - 1) / pb;
    for (std::size_t i = 0; i < opts_.pages; ++i) {
      slot& s = slots_[i];
      if (s.st == slot::state::empty || s.page < first || s.page > last) continue;
      if (s.st == slot::state::valid) s.st = slot::state::empty;
      s.stale = true;
    }
    return backing_->submit(std::move(v));
  }
  while (v.live()) {
    const uint64_t n = pb - v.address() % pb;
    view piece = n < v.size() ? v.take_front(n) : std::move(v);
    cached_space_access::read_piece(*this, std::move(piece));
  }
}

}  // namespace coil::packet
