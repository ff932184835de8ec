// mmap_space: guarded copies out of a file mapping (see the header).
#include "coil/packet/mmap_space.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "scheduled_flag.hpp"

namespace coil::packet {
namespace {

// The copy running on this thread, if any: the SIGBUS handler patches only
// faults inside [lo, hi).
struct copy_guard {
  const std::byte* lo;
  const std::byte* hi;
  uint32_t patched = 0;  // pages replaced by zero pages during the copy
};

// initial-exec: the handler must not be the first to touch the variable
// through __tls_get_addr, which may allocate.
[[gnu::tls_model("initial-exec")]] thread_local copy_guard* active_copy = nullptr;

struct sigaction previous_sigbus;
uintptr_t page_bytes = 4096;

void chain_sigbus(int sig, siginfo_t* info, void* ctx) {
  const struct sigaction& p = previous_sigbus;
  if ((p.sa_flags & SA_SIGINFO) != 0 && p.sa_sigaction != nullptr) return p.sa_sigaction(sig, info, ctx);
  if ((p.sa_flags & SA_SIGINFO) == 0 && p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN) return p.sa_handler(sig);
  // The default action (SIGBUS cannot be ignored when it is a fault): put it
  // back and raise, so the process dies of SIGBUS as it would have.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);
}

void on_sigbus(int sig, siginfo_t* info, void* ctx) {
  copy_guard* g = active_copy;
  const auto* at = static_cast<const std::byte*>(info->si_addr);
  if (g != nullptr && info->si_code > 0 && at >= g->lo && at < g->hi) {
    // A page past the end of file (or a poisoned one): map zeros over it so
    // the copy can finish; the space restores the file mapping afterwards.
    const int saved = errno;
    void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(at) & ~(page_bytes - 1));
    void* p = ::mmap(page, page_bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    errno = saved;
    if (p != MAP_FAILED) {
      ++g->patched;
      return;
    }
  }
  chain_sigbus(sig, info, ctx);
}

std::error_code install_sigbus_handler() noexcept {
  static const int err = [] {
    page_bytes = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    // Read the old action first so a fault racing with the install never
    // sees a half-written one.
    if (::sigaction(SIGBUS, nullptr, &previous_sigbus) != 0) return errno;
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return ::sigaction(SIGBUS, &sa, nullptr) == 0 ? 0 : errno;
  }();
  return err == 0 ? std::error_code{} : errno_code(err);
}

}  // namespace

struct mmap_space_access {
  static constexpr std::size_t prefetch_group = 16;

  using flush_guard = detail::scheduled_flag;

  // Runs the turn after the reads were queued, when every task ready then
  // has added its reads.
  static task<void> flush_task(mmap_space* ms, flush_guard guard) {
    guard.release();  // reads queued from here on need the next turn's flush
    std::swap(ms->flushing_, ms->queue_);
    if (ms->flushing_.empty()) co_return;
    ++ms->stats_.batches;
    // Prefetch the next group while copying this one. The prefetches of a
    // group are issued back to back: spread out between copies, each one
    // stalled on its own miss and little overlapped.
    std::vector<view>& q = ms->flushing_;
    const std::size_t n = q.size();
    ms->prefetch(q.data(), std::min(n, prefetch_group));
    for (std::size_t i = 0; i < n; i += prefetch_group) {
      const std::size_t end = std::min(n, i + prefetch_group);
      if (end < n) ms->prefetch(q.data() + end, std::min(n - end, prefetch_group));
      for (std::size_t k = i; k < end; ++k) ms->copy(std::move(q[k]));
    }
    q.clear();
  }

  static void drop(detail::holder_hook& h, packet_state& p) noexcept {
    auto& ms = *static_cast<mmap_space*>(h.owner);
    for (std::vector<view>* q : {&ms.queue_, &ms.flushing_}) {
      for (view& v : *q) {
        if (v.live() && v.of(p)) v.detach();
      }
      std::erase_if(*q, [](const view& v) { return !v.live(); });
    }
  }
};

mmap_space::mmap_space(file_space& backing, mmap_space_options opts) noexcept : backing_(&backing), opts_(opts) {
  hook_.drop = &mmap_space_access::drop;
  hook_.owner = this;
}

result<std::unique_ptr<mmap_space>> mmap_space::open(file_space& backing, mmap_space_options opts) {
  if (std::error_code e = install_sigbus_handler()) return fail(e);
  struct stat st {};
  if (::fstat(backing.file().fd(), &st) != 0) return fail(errno_code(errno));
  if (!S_ISREG(st.st_mode)) return fail(std::errc::invalid_argument);
  std::unique_ptr<mmap_space> s(new mmap_space(backing, opts));
  if (auto r = s->map(static_cast<uint64_t>(st.st_size)); !r) return fail(r.error());
  return s;
}

mmap_space::~mmap_space() {
  COIL_ASSERT(!flush_scheduled_ && queue_.empty(), "mmap_space destroyed while packets are in flight on it");
  unmap();
}

void mmap_space::unmap() noexcept {
  if (base_ != nullptr) ::munmap(base_, len_);
  base_ = nullptr;
  len_ = 0;
}

result<void> mmap_space::map(uint64_t len) noexcept {
  unmap();
  broken_ = false;
  if (len == 0) return {};
  const int flags = MAP_SHARED | (opts_.populate ? MAP_POPULATE : 0);
  void* p = ::mmap(nullptr, len, PROT_READ, flags, backing_->file().fd(), 0);
  if (p == MAP_FAILED) return fail(errno_code(errno));
  base_ = static_cast<std::byte*>(p);
  len_ = len;
  return {};
}

result<void> mmap_space::remap() noexcept {
  COIL_ASSERT(queue_.empty() && flushing_.empty(), "mmap_space::remap with reads queued");
  struct stat st {};
  if (::fstat(backing_->file().fd(), &st) != 0) return fail(errno_code(errno));
  return map(static_cast<uint64_t>(st.st_size));
}

bool mmap_space::copy_out(std::byte* dst, uint64_t address, uint64_t n) noexcept {
  const std::byte* src = base_ + address;
  copy_guard g{src, src + n};
  active_copy = &g;
  // Keep the copy between the guard's install and removal: the handler runs
  // on this thread, so a compiler barrier is the ordering needed.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::memcpy(dst, src, n);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  active_copy = nullptr;
  if (g.patched == 0) return true;
  ++stats_.faults;
  // Put the file back under the patched pages, so a read after the file
  // grows again sees its bytes (or faults again), never the zeros.
  const uintptr_t lo = reinterpret_cast<uintptr_t>(src) & ~(page_bytes - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(src + n) + page_bytes - 1) & ~(page_bytes - 1);
  const auto offset = static_cast<off_t>(lo - reinterpret_cast<uintptr_t>(base_));
  void* p = ::mmap(reinterpret_cast<void*>(lo), hi - lo, PROT_READ, MAP_SHARED | MAP_FIXED, backing_->file().fd(),
                   offset);
  if (p == MAP_FAILED) broken_ = true;  // zeros may stay mapped: read nothing through it again
  return false;
}

void mmap_space::prefetch(const view* v, std::size_t n) const noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (v[i].end_address() > len_) continue;
    const std::byte* src = base_ + v[i].address();
    __builtin_prefetch(src);
    __builtin_prefetch(src + v[i].size() - 1);
  }
}

void mmap_space::copy(view v) noexcept {
  if (broken_ || v.end_address() > len_ || !copy_out(v.data(), v.address(), v.size())) {
    ++stats_.forwarded;
    return backing_->submit(std::move(v));
  }
  ++stats_.mapped_reads;
  v.done();
}

void mmap_space::submit(view v) noexcept {
  if (v.dir() == direction::write || broken_ || v.address() >= len_) {
    ++stats_.forwarded;
    return backing_->submit(std::move(v));
  }
  if (v.end_address() > len_) {
    // The part past the mapping goes to the file: end of file, or bytes the
    // file gained since the mapping was made.
    view head = v.take_front(len_ - v.address());
    ++stats_.forwarded;
    backing_->submit(std::move(v));
    v = std::move(head);
  }
  runtime* rt = opts_.batch ? runtime::current() : nullptr;
  if (rt == nullptr || !rt->accepting()) return copy(std::move(v));
  detail::register_holder(hook_, home_);
  queue_.push_back(std::move(v));
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    rt->spawn(mmap_space_access::flush_task(this, mmap_space_access::flush_guard(flush_scheduled_))).detach();
  }
}

}  // namespace coil::packet
