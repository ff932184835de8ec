// file_space: per-turn gathering, coalescing into vectored operations and
// scattering the results back to the views.
#include "coil/packet/file_space.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace coil::packet {

struct file_space::batch {
  struct frag {
    view v;
    uint32_t run = 0;
    bool copy = false;  // an overlapped read: bytes copied from the fragment that read them
  };
  struct run {
    uint32_t first_frag = 0;
    uint32_t frag_count = 0;
    uint32_t iov_first = 0;
    uint32_t iov_count = 0;
    uint64_t address = 0;
    uint64_t len = 0;
    direction dir = direction::read;
    uint64_t end() const noexcept { return address + len; }
  };
  std::vector<view> views;  // swapped with the space's queue
  std::vector<frag> frags;
  std::vector<iovec> iov;
  std::vector<run> runs;
  uint32_t remaining = 0;  // runs still in flight
};

struct file_space_access {
  using batch = file_space::batch;

  // Clears flush_scheduled_ when the flush task starts or its frame is
  // destroyed unrun (a runtime torn down first): parameters live in the frame.
  class flush_guard {
   public:
    explicit flush_guard(file_space* fs) noexcept : fs_(fs) {}
    flush_guard(flush_guard&& o) noexcept : fs_(std::exchange(o.fs_, nullptr)) {}
    flush_guard(const flush_guard&) = delete;
    flush_guard& operator=(const flush_guard&) = delete;
    flush_guard& operator=(flush_guard&&) = delete;
    ~flush_guard() { release(); }
    void release() noexcept {
      if (fs_ != nullptr) fs_->flush_scheduled_ = false;
      fs_ = nullptr;
    }

   private:
    file_space* fs_;
  };

  static batch* acquire(file_space& fs) {
    if (fs.free_.empty()) {
      fs.batches_.push_back(std::make_unique<batch>());
      return fs.batches_.back().get();
    }
    batch* b = fs.free_.back();
    fs.free_.pop_back();
    return b;
  }

  static void recycle(file_space& fs, batch& b) noexcept {
    b.views.clear();
    b.frags.clear();
    b.iov.clear();
    b.runs.clear();
    fs.free_.push_back(&b);  // capacity reserved: one slot per batch ever made
  }

  static bool joins(const file_space_options& o, const batch::run& r, const view& v) noexcept {
    if (!o.coalesce || r.dir != v.dir()) return false;
    const uint64_t end = r.end();
    if (v.dir() == direction::write) {
      return v.address() == end && r.iov_count < o.max_iov && r.len + v.size() <= o.max_op_bytes;
    }
    if (v.address() > end) return false;
    if (v.end_address() <= end) return true;  // wholly overlapped: a copy
    return r.iov_count < o.max_iov && r.len + (v.end_address() - end) <= o.max_op_bytes;
  }

  static void add(batch& b, view v, bool copy) {
    batch::run& r = b.runs.back();
    if (!copy) {
      b.iov.push_back(iovec{v.data(), v.size()});
      ++r.iov_count;
      r.len = std::max(r.len, v.end_address() - r.address);
    }
    ++r.frag_count;
    b.frags.push_back(batch::frag{std::move(v), static_cast<uint32_t>(b.runs.size() - 1), copy});
  }

  // Sorted views -> runs of fragments, each run one kernel operation.
  static void build(const file_space_options& o, batch& b) {
    std::sort(b.views.begin(), b.views.end(), [](const view& x, const view& y) {
      if (x.dir() != y.dir()) return x.dir() < y.dir();
      return x.address() < y.address();
    });
    for (view& v : b.views) {
      if (!b.runs.empty() && joins(o, b.runs.back(), v)) {
        const uint64_t end = b.runs.back().end();
        if (v.end_address() <= end) {
          add(b, std::move(v), true);
          continue;
        }
        if (v.address() < end) add(b, v.take_front(end - v.address()), true);
        add(b, std::move(v), false);
        continue;
      }
      b.runs.push_back(batch::run{static_cast<uint32_t>(b.frags.size()), 0, static_cast<uint32_t>(b.iov.size()), 0,
                                  v.address(), 0, v.dir()});
      add(b, std::move(v), false);
    }
  }

  // Copies c's bytes below ok_end from the run's transferring fragments.
  static void fill_copy(batch& b, const batch::run& r, batch::frag& c, uint64_t ok_end) noexcept {
    const uint64_t s = c.v.address();
    const uint64_t e = std::min(c.v.end_address(), ok_end);
    for (uint32_t i = r.first_frag; i < r.first_frag + r.frag_count; ++i) {
      const batch::frag& f = b.frags[i];
      if (f.copy) continue;
      const uint64_t lo = std::max(s, f.v.address());
      const uint64_t hi = std::min(e, f.v.end_address());
      if (lo < hi) std::memcpy(c.v.data() + (lo - s), f.v.data() + (lo - f.v.address()), hi - lo);
    }
  }

  static void finish(view& v, uint64_t ok_end, std::error_code err) noexcept {
    if (v.end_address() <= ok_end) return v.done();
    if (v.address() < ok_end) v.take_front(ok_end - v.address()).done();
    v.fail(err);
  }

  static task<void> run_task(file_space* fs, batch* b, uint32_t ri) {
    const batch::run r = b->runs[ri];
    iovec* iov = b->iov.data() + r.iov_first;
    uint32_t iov_count = r.iov_count;
    uint64_t done = 0;
    std::error_code err;
    while (done < r.len) {
      ++fs->stats_.kernel_ops;
      const std::span<const iovec> segs(iov, iov_count);
      auto res = r.dir == direction::read ? co_await fs->file_.readv_at(segs, r.address + done)
                                          : co_await fs->file_.writev_at(segs, r.address + done);
      if (!res) {
        err = res.error();
        break;
      }
      std::size_t n = *res;
      if (n == 0) {
        err = make_error_code(r.dir == direction::read ? errc::unexpected_eof : errc::write_zero);
        break;
      }
      done += n;
      fs->stats_.bytes += n;
      // Short transfer: step past what moved and go again.
      while (iov_count > 0 && n >= iov->iov_len) {
        n -= iov->iov_len;
        ++iov;
        --iov_count;
      }
      if (n > 0) {
        iov->iov_base = static_cast<std::byte*>(iov->iov_base) + n;
        iov->iov_len -= n;
      }
    }
    const uint64_t ok_end = r.address + done;
    const uint32_t last = r.first_frag + r.frag_count;
    // Copies first: their sources are ended (and their packets scheduled) below.
    for (uint32_t i = r.first_frag; i < last; ++i) {
      if (b->frags[i].copy) fill_copy(*b, r, b->frags[i], ok_end);
    }
    for (uint32_t i = r.first_frag; i < last; ++i) finish(b->frags[i].v, ok_end, err);
    if (--b->remaining == 0) recycle(*fs, *b);
  }

  static task<void> flush_task(file_space* fs, flush_guard guard) {
    guard.release();  // views submitted from here on need the next turn's flush
    if (fs->queue_.empty()) co_return;
    batch* b = acquire(*fs);
    std::swap(b->views, fs->queue_);
    build(fs->opts_, *b);
    b->views.clear();
    ++fs->stats_.flushes;
    b->remaining = static_cast<uint32_t>(b->runs.size());
    runtime* rt = runtime::current();
    const auto n = static_cast<uint32_t>(b->runs.size());
    for (uint32_t i = 0; i < n; ++i) rt->spawn(run_task(fs, b, i)).detach();
  }
};

file_space::file_space(coil::file f, file_space_options opts) : file_(std::move(f)), opts_(opts) {
  if (opts_.max_iov == 0) opts_.max_iov = 1;
  if (opts_.max_iov > IOV_MAX) opts_.max_iov = IOV_MAX;
}

file_space::~file_space() {
  COIL_ASSERT(!flush_scheduled_ && free_.size() == batches_.size(),
              "file_space destroyed while packets are in flight on it");
}

void file_space::submit(view v) noexcept {
  runtime* rt = runtime::current();
  if (rt == nullptr) return v.fail(errc::no_runtime);
  if (!rt->accepting()) return v.fail(errc::runtime_closed);
  ++stats_.fragments;
  queue_.push_back(std::move(v));
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    // The flush runs in the next turn, after the tasks ready now.
    rt->spawn(file_space_access::flush_task(this, file_space_access::flush_guard(this))).detach();
  }
}

}  // namespace coil::packet
