// file_space: per-turn gathering, coalescing into vectored operations and
// scattering the results back to the views.
#include "coil/packet/file_space.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "scheduled_flag.hpp"

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
    bool poisoned = false;            // a packet in it was abandoned: issue nothing more
    completion* inflight = nullptr;   // its kernel operation, while pushed
    uint64_t end() const noexcept { return address + len; }
  };
  std::vector<view> views;  // swapped with the space's queue
  std::vector<frag> frags;
  std::vector<iovec> iov;
  std::vector<run> runs;
  uint32_t remaining = 0;  // runs still in flight
  bool busy = false;
};

namespace {
thread_local intrusive_list<file_space::registry_hook> t_spaces;

// What abandon() needs of a run's operation, whichever op it is.
struct run_base : coil::detail::rt_completion {
  runtime* rt;
  completion** slot;
  run_base(runtime* r, completion** s) noexcept : rt(r), slot(s) {}
};

// One operation of a run, in the run task's frame. Not op_awaiter: an
// abandoned packet must be able to cancel and wait for it by address.
template <class Op>
struct run_awaiter : run_base {
  Op op;
  run_awaiter(Op o, runtime* r, completion** s) noexcept : run_base(r, s), op(o) {}
  run_awaiter(const run_awaiter&) = delete;
  run_awaiter& operator=(const run_awaiter&) = delete;
  ~run_awaiter() {
    if (state == op_state::queued || state == op_state::in_flight) rt->cancel_and_wait(*this);
    if (*slot == this) *slot = nullptr;
  }
  static Op& op_ref(completion& c) noexcept {
    return static_cast<run_awaiter&>(static_cast<coil::detail::rt_completion&>(c)).op;
  }
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    waiter = h;
    coil::detail::bind_op<Op, run_awaiter>(*this, op);
    rt->driver().push_io(*this);
    *slot = this;
  }
  result<size_t> await_resume() noexcept {
    *slot = nullptr;
    state = op_state::idle;
    return Op::complete(res);
  }
};
}  // namespace

struct file_space_access {
  using batch = file_space::batch;

  using flush_guard = detail::scheduled_flag;

  static batch* acquire(file_space& fs) {
    batch* b;
    if (fs.free_.empty()) {
      fs.batches_.push_back(std::make_unique<batch>());
      fs.free_.reserve(fs.batches_.size());
      b = fs.batches_.back().get();
    } else {
      b = fs.free_.back();
      fs.free_.pop_back();
    }
    b->busy = true;
    return b;
  }

  static void recycle(file_space& fs, batch& b) noexcept {
    b.busy = false;
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
      iovec* last = r.iov_count != 0 ? &b.iov.back() : nullptr;
      if (last != nullptr && static_cast<std::byte*>(last->iov_base) + last->iov_len == v.data()) {
        last->iov_len += v.size();  // the next bytes of the file into the next bytes of memory
      } else {
        b.iov.push_back(iovec{v.data(), v.size()});
        ++r.iov_count;
      }
      r.len = std::max(r.len, v.end_address() - r.address);
    }
    ++r.frag_count;
    b.frags.push_back(batch::frag{std::move(v), static_cast<uint32_t>(b.runs.size() - 1), copy});
  }

  // Sorted views -> runs of fragments, each run one kernel operation.
  static void build(const file_space_options& o, batch& b) {
    std::erase_if(b.views, [](const view& v) { return !v.live(); });  // abandoned while queued
    // Reads first, then writes, each sorted by offset. Partitioning first
    // keeps the sort's comparisons off the packets (dir() reads the packet).
    const auto writes = std::partition(b.views.begin(), b.views.end(),
                                       [](const view& v) { return v.dir() == direction::read; });
    const auto by_address = [](const view& x, const view& y) { return x.address() < y.address(); };
    std::sort(b.views.begin(), writes, by_address);
    std::sort(writes, b.views.end(), by_address);
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

  // Copies c's bytes below ok_end from the run's transferring fragments;
  // false if a source was abandoned (its buffer is gone).
  static bool fill_copy(batch& b, const batch::run& r, batch::frag& c, uint64_t ok_end) noexcept {
    const uint64_t s = c.v.address();
    const uint64_t e = std::min(c.v.end_address(), ok_end);
    for (uint32_t i = r.first_frag; i < r.first_frag + r.frag_count; ++i) {
      const batch::frag& f = b.frags[i];
      if (f.copy) continue;
      const uint64_t lo = std::max(s, f.v.address());
      const uint64_t hi = std::min(e, f.v.end_address());
      if (lo >= hi) continue;
      if (!f.v.live()) return false;
      std::memcpy(c.v.data() + (lo - s), f.v.data() + (lo - f.v.address()), hi - lo);
    }
    return true;
  }

  static void finish(view& v, uint64_t ok_end, std::error_code err) noexcept {
    if (!v.live()) return;  // abandoned
    if (v.end_address() <= ok_end) return v.done();
    if (v.address() < ok_end) v.take_front(ok_end - v.address()).done();
    v.fail(err);
  }

  // Returns the batch to the pool when the last run ends, even if the run
  // task's frame is destroyed unrun (a runtime torn down first).
  class run_guard {
   public:
    run_guard(file_space* fs, batch* b) noexcept : fs_(fs), b_(b) {}
    run_guard(run_guard&& o) noexcept : fs_(o.fs_), b_(std::exchange(o.b_, nullptr)) {}
    run_guard(const run_guard&) = delete;
    run_guard& operator=(const run_guard&) = delete;
    run_guard& operator=(run_guard&&) = delete;
    ~run_guard() {
      if (b_ != nullptr && --b_->remaining == 0) recycle(*fs_, *b_);
    }

   private:
    file_space* fs_;
    batch* b_;
  };

  static task<void> run_task(file_space* fs, batch* b, uint32_t ri, run_guard guard) {
    (void)guard;
    batch::run& r = b->runs[ri];  // runs do not move while the batch is busy
    runtime* rt = runtime::current();
    iovec* iov = b->iov.data() + r.iov_first;
    uint32_t iov_count = r.iov_count;
    uint64_t done = 0;
    std::error_code err;
    while (done < r.len) {
      if (r.poisoned) {
        err = make_error_code(std::errc::operation_canceled);
        break;
      }
      ++fs->stats_.kernel_ops;
      const int fd = fs->file_.fd();
      const uint64_t at = r.address + done;
      result<size_t> res = 0;
      // One buffer (adjacent fragments into adjacent memory merge into one):
      // a plain read or write, which the kernel serves without importing an
      // iovec array.
      const bool plain = iov_count == 1 && iov->iov_len <= UINT32_MAX;
      const auto len = static_cast<uint32_t>(iov->iov_len);
      // (Statements, not ?: with a co_await in each arm: g++ 12 pushed both.)
      if (r.dir == direction::read && plain) {
        res = co_await run_awaiter<ops::read>(ops::read{fd, iov->iov_base, len, at}, rt, &r.inflight);
      } else if (r.dir == direction::read) {
        res = co_await run_awaiter<ops::readv>(ops::readv{fd, iov, iov_count, at}, rt, &r.inflight);
      } else if (plain) {
        res = co_await run_awaiter<ops::write>(ops::write{fd, iov->iov_base, len, at}, rt, &r.inflight);
      } else {
        res = co_await run_awaiter<ops::writev>(ops::writev{fd, iov, iov_count, at}, rt, &r.inflight);
      }
      if (!res) {
        // Nothing moved (EAGAIN: a nonblocking file, or fault injection): again.
        if (res.error() == std::errc::resource_unavailable_try_again || res.error() == std::errc::interrupted) continue;
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
      batch::frag& f = b->frags[i];
      if (f.copy && f.v.live() && !fill_copy(*b, r, f, ok_end)) f.v.fail(make_error_code(std::errc::operation_canceled));
    }
    for (uint32_t i = r.first_frag; i < last; ++i) finish(b->frags[i].v, ok_end, err);
  }

  // The abandoned packet p's views leave fs; kernel operations into its
  // buffer are cancelled and waited for first.
  static void abandon(file_space& fs, packet_state& p) noexcept {
    for (view& v : fs.queue_) {
      if (v.of(p)) v.detach();
    }
    std::erase_if(fs.queue_, [](const view& v) { return !v.live(); });
    for (auto& bp : fs.batches_) {
      batch& b = *bp;
      if (!b.busy) continue;
      for (view& v : b.views) {
        if (v.of(p)) v.detach();
      }
      for (batch::run& r : b.runs) {
        bool touches = false;
        for (uint32_t i = r.first_frag; i < r.first_frag + r.frag_count; ++i) touches |= b.frags[i].v.of(p);
        if (!touches) continue;
        r.poisoned = true;
        completion* c = r.inflight;
        if (c != nullptr && (c->state == op_state::queued || c->state == op_state::in_flight)) {
          static_cast<run_base*>(static_cast<coil::detail::rt_completion*>(c))->rt->cancel_and_wait(*c);
        }
        for (uint32_t i = r.first_frag; i < r.first_frag + r.frag_count; ++i) {
          if (b.frags[i].v.of(p)) b.frags[i].v.detach();
        }
      }
    }
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
    for (uint32_t i = 0; i < n; ++i) rt->spawn(run_task(fs, b, i, run_guard(fs, b))).detach();
  }
};

namespace detail {
namespace {
thread_local intrusive_list<holder_hook> t_holders;
}  // namespace

void register_holder(holder_hook& h, const void*& home) noexcept {
  if (home == &t_holders) return;
  h.unlink();
  t_holders.push_back(h);
  home = &t_holders;
}

void abandon(packet_state& p) noexcept {
  t_holders.for_each([&](holder_hook& h) { h.drop(h, p); });
  t_spaces.for_each([&](file_space::registry_hook& h) { file_space_access::abandon(*h.owner, p); });
}
}  // namespace detail

file_space::file_space(coil::file f, file_space_options opts) : file_(std::move(f)), opts_(opts) {
  hook_.owner = this;
  if (opts_.max_iov == 0) opts_.max_iov = 1;
  if (opts_.max_iov > IOV_MAX) opts_.max_iov = IOV_MAX;
}

file_space::~file_space() {
  COIL_ASSERT(!flush_scheduled_ && free_.size() == batches_.size(),
              "file_space destroyed while packets are in flight on it");
}

void file_space::submit(view v) noexcept {
  const coil::detail::admission a = coil::detail::admit();
  if (!a.ok()) return v.fail(coil::detail::error_of(a.why));
  runtime* rt = a.rt;
  if (home_ != &t_spaces) {  // first use on this thread
    hook_.unlink();
    t_spaces.push_back(hook_);
    home_ = &t_spaces;
  }
  ++stats_.fragments;
  queue_.push_back(std::move(v));
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    // The flush runs in the next turn, after the tasks ready now.
    rt->spawn(file_space_access::flush_task(this, file_space_access::flush_guard(flush_scheduled_))).detach();
  }
}

}  // namespace coil::packet
