#pragma once
// The packet layer's core: a packet is one read or write of [address,
// address+len) into or from a caller's buffer; a view is a piece of it that a
// space (an I/O backend) owns until it ends as done or failed. Spaces split
// views into disjoint sub-views and forward them with their own addresses, so
// one request can fan out over files, stripes and holes; the packet completes
// when every view has ended, and its outcome says which bytes failed and why.
//
// Nothing here allocates: the packet lives in the awaiting frame (or on the
// stack of a blocking caller), views are 32-byte values.
#include <array>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/error.hpp"
#include "coil/core/intrusive_list.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/task.hpp"

namespace coil::packet {

// Whether a packet reads into its buffer or writes from it.
enum class direction : uint8_t { read, write };

// Offsets relative to the packet's first byte.
struct byte_range {
  uint64_t offset = 0;
  uint64_t len = 0;
  uint64_t end() const noexcept { return offset + len; }
  friend bool operator==(const byte_range&, const byte_range&) = default;
};

struct failed_range {
  byte_range range;
  std::error_code error;
  friend bool operator==(const failed_range&, const failed_range&) = default;
};

// Which bytes of a packet failed. Bookkeeping choice: only failures are
// stored, because views are disjoint and cover the packet, so every byte not
// failed succeeded. Failures are kept sorted and merged (touching ranges with
// the same error become one, so a dead backend under a stripe set costs one
// entry per run, not per fragment), in a fixed inline array holding the
// lowest-addressed ones. More failures than that set truncated(): the list
// is then exact below known_until() (failures arrive in any order and merge
// later, so a dropped one cannot be brought back). The headline answers
// (all_ok, ok_prefix, first_error, failed_bytes) stay exact regardless,
// because they depend only on the lowest failure and a counter.
class outcome {
 public:
  static constexpr std::size_t max_failures = 8;

  outcome() noexcept = default;
  explicit outcome(uint64_t len) noexcept : len_(len) {}

  uint64_t size() const noexcept { return len_; }
  bool all_ok() const noexcept { return failed_bytes_ == 0; }
  uint64_t failed_bytes() const noexcept { return failed_bytes_; }
  uint64_t ok_bytes() const noexcept { return len_ - failed_bytes_; }
  // Bytes from the start that all succeeded.
  uint64_t ok_prefix() const noexcept { return count_ == 0 ? len_ : f_[0].range.offset; }
  // The error of the lowest-addressed failed byte; empty when all_ok.
  std::error_code first_error() const noexcept { return count_ == 0 ? std::error_code{} : f_[0].error; }
  // Sorted, merged; every failure below known_until().
  std::span<const failed_range> failures() const noexcept { return {f_.data(), count_}; }
  bool truncated() const noexcept { return known_until_ < len_; }
  // failures() describes [0, known_until()) exactly; the packet's size unless truncated.
  uint64_t known_until() const noexcept { return known_until_ < len_ ? known_until_ : len_; }
  // Calls fn(byte_range) for each succeeded range below known_until(), in order.
  template <class Fn>
  void for_each_ok(Fn&& fn) const {
    uint64_t at = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      if (f_[i].range.offset > at) fn(byte_range{at, f_[i].range.offset - at});
      at = f_[i].range.end();
    }
    if (at < known_until()) fn(byte_range{at, known_until() - at});
  }

  // Records that r (disjoint from every earlier record) failed with e.
  void record_failure(byte_range r, std::error_code e) noexcept;

 private:
  void erase(std::size_t i) noexcept;

  uint64_t len_ = 0;
  uint64_t failed_bytes_ = 0;
  std::array<failed_range, max_failures> f_{};
  uint32_t count_ = 0;
  uint64_t known_until_ = ~uint64_t{0};  // the lowest dropped failure's offset
};

class view;
class packet_state;
struct file_space_access;
struct cached_space_access;
struct mmap_space_access;

namespace detail {
// Called by a packet destroyed with views still pending: every file_space
// used on this thread lets go of them, cancelling and waiting for the kernel
// operations that target their bytes, and every registered holder drops the
// views it keeps waiting (file_space.cpp).
void abandon(packet_state& p) noexcept;

// A space that keeps views of other packets waiting across turns
// (cached_space) registers here, once per thread it is used on.
struct holder_hook : list_hook {
  void (*drop)(holder_hook&, packet_state&) noexcept = nullptr;
  void* owner = nullptr;
};
// Links h into this thread's registry (unlinking it from another thread's)
// unless it is there already.
void register_holder(holder_hook& h, const void*& home) noexcept;
}  // namespace detail

// What a view points into; the awaitable packet derives from it.
class packet_state {
 public:
  packet_state(direction d, std::byte* buf, uint64_t address, uint64_t len) noexcept
      : buf_(buf), address_(address), out_(len), dir_(d) {}
  packet_state(const packet_state&) = delete;
  packet_state& operator=(const packet_state&) = delete;
  // Destroyed mid-flight (its frame torn down), the packet first makes the
  // file spaces drop its views and waits for kernel operations on its buffer.
  ~packet_state() {
    if (pending_ != 0) detail::abandon(*this);
    COIL_ASSERT(pending_ == 0, "packet destroyed while a space other than file_space holds its views");
  }

  direction dir() const noexcept { return dir_; }
  bool finished() const noexcept { return pending_ == 0; }
  const outcome& result() const noexcept { return out_; }

  // Starts the packet: hands the whole request to s. Returns true if it
  // already finished (every view ended inside submit).
  template <class Space>
  bool start(Space& s) noexcept;

 protected:
  // Called as each view ends, before on_finished: r's bytes are in (or were
  // taken from) the buffer unless e. Runs inside the space that ended the view.
  virtual void on_fragment(byte_range r, std::error_code e) noexcept {
    (void)r;
    (void)e;
  }
  // Called once when the last view ends.
  virtual void on_finished() noexcept {}

 private:
  friend class view;
  friend struct file_space_access;
  friend struct cached_space_access;
  friend struct mmap_space_access;
  void end(uint64_t off, uint64_t len, std::error_code e) noexcept {
    if (e) out_.record_failure(byte_range{off, len}, e);
    on_fragment(byte_range{off, len}, e);
    COIL_ASSERT(pending_ > 0, "a packet view ended twice");
    if (--pending_ == 0) on_finished();
  }

  std::byte* buf_;
  uint64_t address_;
  outcome out_;
  uint32_t pending_ = 0;
  direction dir_;
};

// A piece of a packet owned by a space. Move-only; end it exactly once with
// done() or fail(). A view dropped without being ended fails with
// operation_canceled, so a space torn down with queued work never strands a
// packet.
class view {
 public:
  view() noexcept = default;
  view(packet_state& p, uint64_t off, uint64_t len, uint64_t address) noexcept
      : p_(&p), off_(off), len_(len), address_(address) {}
  view(view&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), off_(o.off_), len_(o.len_), address_(o.address_) {}
  view& operator=(view&& o) noexcept {
    if (this != &o) {
      end_if_live();
      p_ = std::exchange(o.p_, nullptr);
      off_ = o.off_;
      len_ = o.len_;
      address_ = o.address_;
    }
    return *this;
  }
  ~view() { end_if_live(); }

  bool live() const noexcept { return p_ != nullptr; }
  // Address in the space that currently owns the view.
  uint64_t address() const noexcept { return address_; }
  uint64_t end_address() const noexcept { return address_ + len_; }
  uint64_t size() const noexcept { return len_; }
  // Offset of this piece inside its packet.
  uint64_t packet_offset() const noexcept { return off_; }
  direction dir() const noexcept { return p_->dir_; }
  // The caller's bytes for this piece: read packets fill them, write packets
  // take from them.
  std::byte* data() const noexcept { return p_->buf_ + off_; }

  // Re-addresses the view for the space it is forwarded to.
  void set_address(uint64_t a) noexcept { address_ = a; }
  // Splits off and returns the first n bytes (0 < n < size()); this view
  // keeps the rest.
  view take_front(uint64_t n) noexcept {
    COIL_ASSERT(p_ != nullptr && n > 0 && n < len_, "view::take_front out of range");
    ++p_->pending_;
    view head(*p_, off_, n, address_);
    off_ += n;
    len_ -= n;
    address_ += n;
    return head;
  }

  void done() noexcept { end({}); }
  void fail(std::error_code e) noexcept {
    COIL_ASSERT(static_cast<bool>(e), "view::fail needs an error");
    end(e);
  }

 private:
  void end(std::error_code e) noexcept {
    COIL_ASSERT(p_ != nullptr, "ending a view that was moved from or already ended");
    std::exchange(p_, nullptr)->end(off_, len_, e);
  }
  void end_if_live() noexcept {
    if (p_ != nullptr) end(make_error_code(std::errc::operation_canceled));
  }
  friend struct file_space_access;
  friend struct cached_space_access;
  friend struct mmap_space_access;
  bool of(const packet_state& p) const noexcept { return p_ == &p; }
  // Lets go of a packet being destroyed: no outcome, no wake-up.
  void detach() noexcept {
    --p_->pending_;
    p_ = nullptr;
  }

  packet_state* p_ = nullptr;
  uint64_t off_ = 0;
  uint64_t len_ = 0;
  uint64_t address_ = 0;
};

template <class Space>
bool packet_state::start(Space& s) noexcept {
  COIL_ASSERT(pending_ == 0, "packet started twice");
  if (out_.size() == 0) return true;
  pending_ = 1;
  s.submit(view(*this, 0, out_.size(), address_));
  return pending_ == 0;
}

// `co_await` on a packet: starts it on first suspension and resumes the
// awaiting task (through the ready queue, never inline) once it finished.
template <class Space>
class [[nodiscard]] packet_awaiter : public packet_state {
 public:
  packet_awaiter(Space& s, direction d, std::byte* buf, uint64_t address, uint64_t len) noexcept
      : packet_state(d, buf, address, len), space_(&s) {}

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    if (start(*space_)) return false;
    rt_ = runtime::current();
    COIL_ASSERT(rt_ != nullptr, "a packet suspended on a thread without a runtime");
    node_.handle = h;
    suspended_ = true;
    return true;
  }
  outcome await_resume() const noexcept { return result(); }

 private:
  void on_finished() noexcept override {
    if (suspended_) rt_->schedule(node_);
  }
  Space* space_;
  runtime* rt_ = nullptr;
  coil::detail::ready_node node_;
  bool suspended_ = false;
};

// A packet that also reports each fragment as it ends: fn(byte_range,
// std::error_code), in completion order, called inside the space (keep it
// short; it must not destroy the packet). The ranges are disjoint and cover
// the packet, so a consumer can use data as it arrives instead of waiting
// for the slowest backend.
template <class Space, class Fn>
class [[nodiscard]] fragment_awaiter final : public packet_awaiter<Space> {
 public:
  fragment_awaiter(Space& s, direction d, std::byte* buf, uint64_t address, uint64_t len, Fn fn) noexcept
      : packet_awaiter<Space>(s, d, buf, address, len), fn_(std::move(fn)) {}

 private:
  void on_fragment(byte_range r, std::error_code e) noexcept override { fn_(r, e); }
  Fn fn_;
};

}  // namespace coil::packet
