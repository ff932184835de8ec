#include "coil/io/uring_driver.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <time.h>

#include <cerrno>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/io/drain.hpp"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COIL_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define COIL_TSAN 1
#endif
#ifdef COIL_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace coil {
namespace {

// liburing maps and unmaps rings with raw system calls, unseen by
// ThreadSanitizer: a ring mapped where another thread's freed ring was
// would look like a race with that thread. The kernel orders the two; say so.
#ifdef COIL_TSAN
char ring_mappings;
void ring_mapped() noexcept { __tsan_acquire(&ring_mappings); }
void ring_unmapping() noexcept { __tsan_release(&ring_mappings); }
#else
void ring_mapped() noexcept {}
void ring_unmapping() noexcept {}
#endif

// user_data of the driver's own cancel requests; never a valid completion.
constexpr uint64_t internal_user_data = 0;

// 6.15+ (newer than Debian 12's headers): waits not counted as I/O wait.
constexpr unsigned enter_no_iowait = 1u << 7;  // IORING_ENTER_NO_IOWAIT
constexpr unsigned feat_no_iowait = 1u << 17;  // IORING_FEAT_NO_IOWAIT

// The NOP that proves a new ring (uring_driver::create).
void proving_prep(completion&, io_uring_sqe& sqe) noexcept { io_uring_prep_nop(&sqe); }
int32_t proving_perform(completion&, bool) noexcept { return 0; }
constexpr op_vtable proving_nop{
    .prep = &proving_prep, .perform = &proving_perform, .poll_events = 0, .opcode = IORING_OP_NOP,
    .consumes_fd = false, .never_blocks = true};
// A NOP asking for result 1: kernels that inject results (6.10+) answer 1,
// older ones 0 or EINVAL.
constexpr uint32_t nop_inject_result = 1u << 0;  // IORING_NOP_INJECT_RESULT, in sqe.nop_flags (rw_flags)
void injecting_prep(completion&, io_uring_sqe& sqe) noexcept {
  io_uring_prep_nop(&sqe);
  sqe.rw_flags = nop_inject_result;
  sqe.len = 1;
}
constexpr op_vtable injecting_nop{
    .prep = &injecting_prep, .perform = &proving_perform, .poll_events = 0, .opcode = IORING_OP_NOP,
    .consumes_fd = false, .never_blocks = true};

int64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

}  // namespace

result<std::unique_ptr<uring_driver>> uring_driver::create(const uring_options& opts) {
  COIL_ASSERT(opts.entries >= 2 && opts.entries <= 32768, "uring_options::entries must be in [2, 32768]");
  std::unique_ptr<uring_driver> d(new uring_driver());
  // Strongest setup first; older kernels reject unknown flags with EINVAL.
  const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  const unsigned sq = IORING_SETUP_SQPOLL | (opts.sqpoll_cpu >= 0 ? IORING_SETUP_SQ_AFF : 0u);
  const unsigned attempts[] = {
      // SQPOLL excludes DEFER_TASKRUN; any refusal falls through to plain rings.
      base | sq | IORING_SETUP_SINGLE_ISSUER,
      base | sq,
      base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      base | IORING_SETUP_COOP_TASKRUN,
      base,
      IORING_SETUP_CQSIZE,
  };
  int ret = -EINVAL;
  unsigned features = 0;
  // Locked-memory limits on kernels before 5.12 make big rings fail with
  // ENOMEM; a smaller ring still works (ops beyond it wait in user space).
  for (unsigned entries = opts.entries; entries >= 2; entries /= 2) {
    for (unsigned flags : attempts) {
      if (!opts.single_issuer && (flags & IORING_SETUP_SINGLE_ISSUER)) continue;
      const bool sqpoll = flags & IORING_SETUP_SQPOLL;
      if (sqpoll && !opts.sqpoll) continue;
      io_uring_params p{};
      p.flags = flags;
      p.cq_entries = entries * 2;
      if (sqpoll) {
        p.sq_thread_idle = opts.sqpoll_idle_ms;
        if (opts.sqpoll_cpu >= 0) p.sq_thread_cpu = static_cast<unsigned>(opts.sqpoll_cpu);
      }
      ret = io_uring_queue_init_params(entries, &d->ring_, &p);
      features = p.features;
      if (ret == 0 || (!sqpoll && ret != -EINVAL)) break;
    }
    if (ret != -ENOMEM || entries <= 8) break;
  }
  if (ret < 0) return fail(kernel_error(ret));
  ring_mapped();
  d->ring_ok_ = true;
  d->capacity_ = d->ring_.cq.ring_entries;
  // Operations that wait on outside events (a pipe read) only finish when
  // cancelled; cancels need CQ room too, so ops may never take all of it.
  d->op_limit_ = d->capacity_ - std::max(1u, d->capacity_ / 16);
  d->submit_batch_ = opts.submit_batch;
  d->device_submit_batch_ = opts.device_submit_batch;
  d->eager_send_ = opts.eager_send;
  d->nodrop_ = features & IORING_FEAT_NODROP;

  // Every kernel with coil's basic opcodes (5.6) can answer the probe, so a
  // refused probe means io_uring_register itself is refused (seccomp):
  // unavailable, rather than a ring that guesses its opcodes and has no
  // buffer rings, fixed tables or io-wq caps.
  {
    constexpr unsigned probe_ops = 256;
    auto* probe = static_cast<io_uring_probe*>(std::calloc(1, sizeof(io_uring_probe) + probe_ops * sizeof(io_uring_probe_op)));
    if (probe == nullptr) return fail(std::errc::not_enough_memory);
    const int r = io_uring_register_probe(&d->ring_, probe, probe_ops);
    if (r == 0) {
      for (unsigned op = 0; op < probe_ops; ++op) {
        if (io_uring_opcode_supported(probe, static_cast<int>(op))) d->probe_[op / 8] |= static_cast<unsigned char>(1u << (op % 8));
      }
    }
    std::free(probe);
    if (r < 0) return fail(kernel_error(r));
  }
  if (opts.register_ring_fd && io_uring_register_ring_fd(&d->ring_) == 1) {  // optional speedup
    d->park_flags_ |= IORING_ENTER_REGISTERED_RING;
  }
  // wait() enters directly where timeouts travel as EXT_ARG (5.11+); SQPOLL
  // rings keep liburing's path (its tail and wakeup rules differ).
  d->direct_park_ = (d->ring_.features & IORING_FEAT_EXT_ARG) && !d->sqpoll_active();
  if (d->ring_.features & feat_no_iowait) d->no_iowait_flag_ = enter_no_iowait;
  // Prove the ring before anyone relies on it: a sandbox may allow
  // io_uring_setup and refuse io_uring_enter. A NOP goes the way every
  // timed park goes (wait() with a deadline); signals only repeat the wait.
  // A second NOP in the same enter learns whether NOP results can be injected.
  {
    completion c, inject;
    c.ops = &proving_nop;
    inject.ops = &injecting_nop;
    d->push(c);
    d->push(inject);
    intrusive_list<completion> got;
    const int64_t give_up = now_ns() + 1'000'000'000LL;
    result<void> waited;
    while ((c.state != op_state::done || inject.state != op_state::done) && now_ns() < give_up) {
      waited = d->wait(give_up - now_ns());
      if (!waited) break;
      d->reap(got);
    }
    const bool done = c.state == op_state::done;
    d->injects_nop_results_ = inject.state == op_state::done && inject.res == 1;
    c.unlink();
    inject.unlink();
    if (!done || c.res != 0) {
      // The kernel never took it, or has run it (a NOP touches no memory).
      d->in_flight_ = d->unbounded_ = d->unsubmitted_ = 0;
      d->in_flight_ops_.clear();
      if (!waited) return fail(waited.error());
      return fail(done ? kernel_error(c.res) : std::make_error_code(std::errc::timed_out));
    }
    d->stats_ = driver_stats{};  // users count their own operations
  }
  d->fixed_files_cap_ = opts.fixed_files;
  d->fixed_buffers_cap_ = opts.fixed_buffers;
  if (opts.iowq_max_workers[0] != 0 || opts.iowq_max_workers[1] != 0) {
    unsigned v[2] = {opts.iowq_max_workers[0], opts.iowq_max_workers[1]};
    if (io_uring_register_iowq_max_workers(&d->ring_, v) == 0) {  // 5.15+; v now holds the old values
      d->iowq_max_[0] = opts.iowq_max_workers[0];
      d->iowq_max_[1] = opts.iowq_max_workers[1];
    }
  }
  return d;
}

uring_driver::~uring_driver() {
  // Rings still in use unregister with nothing; the ring's teardown frees them.
  while (buf_ring_registration* r = buf_rings_.pop_front()) r->driver = nullptr;
  if (!ring_ok_) return;
  // Owners should have drained their operations. If some are still with the
  // kernel, cancel and wait, so it never writes into memory freed after us.
  if (in_flight_ != 0) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      (void)io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    if (sqe != nullptr) {
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
      io_uring_sqe_set_data64(sqe, internal_user_data);
      ++in_flight_;
      ++unsubmitted_;
    }
    const int64_t give_up = now_ns() + 10'000'000'000LL;
    while (in_flight_ != 0 && now_ns() < give_up) {
      (void)enter(true, 100'000'000);
      io_uring_cqe* cqe;
      unsigned head, n = 0;
      unsigned finals = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++n;
        if (!(cqe->flags & IORING_CQE_F_MORE)) ++finals;  // a multishot op's last result
      }
      io_uring_cq_advance(&ring_, n);
      in_flight_ -= finals < in_flight_ ? finals : in_flight_;
    }
    if (in_flight_ != 0) {
      // Leaking the ring keeps the kernel's writes inside mapped memory.
      std::fprintf(stderr, "coil: uring_driver destroyed with %u operations stuck in the kernel; leaking the ring\n",
                   in_flight_);
      return;
    }
  }
  ring_unmapping();
  io_uring_queue_exit(&ring_);
  if (notify_fd_ >= 0) ::close(notify_fd_);
}

result<int> uring_driver::notify_fd() noexcept {
  if (notify_fd_ >= 0) return notify_fd_;
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return fail(errno_code(errno));
  if (const int r = io_uring_register_eventfd(&ring_, fd); r < 0) {
    ::close(fd);
    return fail(kernel_error(r));
  }
  notify_fd_ = fd;
  return fd;
}

result<int> uring_driver::register_file(int fd) noexcept {
  if (fd < 0) return fail(std::errc::bad_file_descriptor);
  if (!files_registered_) {
    if (fixed_files_cap_ == 0) return fail(std::errc::no_buffer_space);
    if (const int r = io_uring_register_files_sparse(&ring_, fixed_files_cap_); r < 0) return fail(kernel_error(r));
    files_registered_ = true;
    free_files_.reserve(fixed_files_cap_);
    for (int i = static_cast<int>(fixed_files_cap_) - 1; i >= 0; --i) free_files_.push_back(i);
  }
  if (free_files_.empty()) return fail(std::errc::no_buffer_space);
  const int slot = free_files_.back();
  if (const int r = io_uring_register_files_update(&ring_, static_cast<unsigned>(slot), &fd, 1); r < 0) {
    return fail(kernel_error(r));
  }
  free_files_.pop_back();
  return slot;
}

void uring_driver::unregister_file(int slot) noexcept {
  if (!files_registered_ || slot < 0 || static_cast<unsigned>(slot) >= fixed_files_cap_) return;
  int none = -1;  // in-flight ops keep their own reference; the slot is free now
  if (io_uring_register_files_update(&ring_, static_cast<unsigned>(slot), &none, 1) >= 0) free_files_.push_back(slot);
}

result<int> uring_driver::register_buffer(void* data, std::size_t len) noexcept {
  if (data == nullptr || len == 0) return fail(std::errc::invalid_argument);
  if (!buffers_registered_) {
    if (fixed_buffers_cap_ == 0) return fail(std::errc::no_buffer_space);
    if (const int r = io_uring_register_buffers_sparse(&ring_, fixed_buffers_cap_); r < 0) return fail(kernel_error(r));
    buffers_registered_ = true;
    free_buffers_.reserve(fixed_buffers_cap_);
    for (int i = static_cast<int>(fixed_buffers_cap_) - 1; i >= 0; --i) free_buffers_.push_back(i);
  }
  if (free_buffers_.empty()) return fail(std::errc::no_buffer_space);
  const int index = free_buffers_.back();
  iovec v{data, len};
  if (const int r = io_uring_register_buffers_update_tag(&ring_, static_cast<unsigned>(index), &v, nullptr, 1); r < 0) {
    return fail(kernel_error(r));  // e.g. ENOMEM over RLIMIT_MEMLOCK on old kernels
  }
  free_buffers_.pop_back();
  return index;
}

void uring_driver::unregister_buffer(int index) noexcept {
  if (!buffers_registered_ || index < 0 || static_cast<unsigned>(index) >= fixed_buffers_cap_) return;
  iovec none{nullptr, 0};
  if (io_uring_register_buffers_update_tag(&ring_, static_cast<unsigned>(index), &none, nullptr, 1) >= 0) {
    free_buffers_.push_back(index);
  }
}

result<void> uring_driver::register_buf_ring(void* ring_mem, unsigned entries, buf_ring_registration& reg) noexcept {
  uint16_t group;
  if (!free_groups_.empty()) {
    group = free_groups_.back();
  } else {
    if (next_group_ == 0xffff) return fail(std::errc::no_buffer_space);
    group = next_group_;
  }
  io_uring_buf_reg r{};
  r.ring_addr = reinterpret_cast<uint64_t>(ring_mem);
  r.ring_entries = entries;
  r.bgid = group;
  if (const int e = io_uring_register_buf_ring(&ring_, &r, 0); e < 0) return fail(kernel_error(e));
  if (!free_groups_.empty()) {
    free_groups_.pop_back();
  } else {
    ++next_group_;
  }
  reg.driver = this;
  reg.group = group;
  buf_rings_.push_back(reg);
  return {};
}

void uring_driver::unregister_buf_ring(buf_ring_registration& reg) noexcept {
  if (reg.driver != this) return;
  if (io_uring_unregister_buf_ring(&ring_, reg.group) == 0) free_groups_.push_back(reg.group);
  reg.unlink();
  reg.driver = nullptr;
}

bool uring_driver::has_required_opcodes() const noexcept {
  // What coil's ops use that 5.6 has; later ones (shutdown, renameat,
  // socket, send_zc...) are checked per op and answer EOPNOTSUPP.
  for (unsigned op = 0; op < 256; ++op) {
    if (required_opcode(static_cast<uint8_t>(op)) && !supports(static_cast<uint8_t>(op))) return false;
  }
  return true;
}

uint32_t uring_driver::cq_overflow() const noexcept {
  return *ring_.cq.koverflow;
}

io_uring_sqe* uring_driver::next_sqe() noexcept {
  io_uring_sqe* sqe = get_sqe();
  if (sqe != nullptr) return sqe;
  submit_now();  // SQ full within one turn: hand the batch to the kernel early
  return get_sqe();
}

void uring_driver::submit_now() noexcept {
  int r = io_uring_submit(&ring_);
  ++stats_.enter_calls;
  if (r > 0) {
    const auto n = static_cast<uint32_t>(r);
    stats_.submitted += n;
    unsubmitted_ -= std::min(n, unsubmitted_);
    if (unsubmitted_ == 0) unsubmitted_device_ = 0;
    check_invariants();
  }
}

bool uring_driver::try_issue(completion& c) noexcept {
  // Unbounded ops skip the bound (see unbounded_).
  const bool unbounded = is_unbounded(c);
  if (!unbounded && in_flight_ - unbounded_ >= op_limit_) return false;
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) return false;
  c.unlink();  // from waiting_, when it waited for room
  issue(c, *sqe, unbounded);
  return true;
}

void uring_driver::submit_early(const completion& c) noexcept {
  if (submit_batch_ != 0 && unsubmitted_ >= submit_batch_) {
    (void)enter(false, -1);
  } else if (c.device && device_submit_batch_ != 0 && ++unsubmitted_device_ >= device_submit_batch_) {
    (void)enter(false, -1);
  }
}

bool uring_driver::try_issue_cancel(completion& c) noexcept {
  if (in_flight_ - unbounded_ >= capacity_) return false;
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) return false;
  io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(&c), 0);
  io_uring_sqe_set_data64(sqe, internal_user_data);
  c.cancel_issued = true;
  ++unsubmitted_;
  account_in_flight();
  check_invariants();
  return true;
}

void uring_driver::push_chain(link_chain& chain) noexcept {
  COIL_ASSERT(chain.count != 0 && chain.members != nullptr, "empty link chain");
  completion* culprit = nullptr;
  int32_t why = 0;
  unsigned bounded = 0;
  for (unsigned i = 0; i < chain.count; ++i) {
    completion& c = *chain.members[i];
    COIL_ASSERT(c.state == op_state::idle && !c.linked(), "link chain member pushed twice (already pending)");
    COIL_ASSERT(c.ops != nullptr && c.ops->on_cqe != nullptr, "link chain member without a result hook");
    count_push(c);
    bounded += !is_unbounded(c);
    if (culprit == nullptr && !supports(c.ops->opcode)) {
      culprit = &c;
      why = -EOPNOTSUPP;
    }
  }
  // Room that never comes: the chain would wait forever.
  if (culprit == nullptr && (chain.count > ring_.sq.ring_entries || bounded > op_limit_)) {
    culprit = chain.members[0];
    why = -EINVAL;
  }
  if (culprit != nullptr) [[unlikely]] {
    for (unsigned i = 0; i < chain.count; ++i) {
      completion& c = *chain.members[i];
      c.res = &c == culprit ? why : -ECANCELED;
      c.cqe_flags = 0;
      detail::set_state(c, op_state::done);
      finished_.push_back(c);
    }
    return;
  }
  if (waiting_.empty() && try_issue_chain(chain)) return;
  // Members wait contiguous: fill_from_waiting issues them as one.
  ++stats_.queued_for_space;
  for (unsigned i = 0; i < chain.count; ++i) {
    detail::set_state(*chain.members[i], op_state::queued);
    waiting_.push_back(*chain.members[i]);
  }
}

bool uring_driver::try_issue_chain(link_chain& chain) noexcept {
  unsigned bounded = 0;
  bool device = false;
  for (unsigned i = 0; i < chain.count; ++i) {
    bounded += !is_unbounded(*chain.members[i]);
    device = device || chain.members[i]->device;
  }
  if (in_flight_ - unbounded_ + bounded > op_limit_) return false;
  // A chain split across two submissions would end at the split, so all of
  // its SQEs must fit now.
  if (io_uring_sq_space_left(&ring_) < chain.count) {
    if (unsubmitted_ != 0) submit_now();
    if (io_uring_sq_space_left(&ring_) < chain.count) return false;
  }
  const unsigned link = chain.hard ? IOSQE_IO_HARDLINK : IOSQE_IO_LINK;
  for (unsigned i = 0; i < chain.count; ++i) {
    completion& c = *chain.members[i];
    c.unlink();  // from waiting_, when it waited for room
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    COIL_ASSERT(sqe != nullptr, "SQ space checked for the whole chain");
    fill(c, *sqe, is_unbounded(c));
    if (i + 1 < chain.count) sqe->flags |= static_cast<uint8_t>(link);  // after prep, which resets flags
  }
  ++stats_.link_chains;
  if (submit_batch_ != 0 || device) [[unlikely]] submit_early(*chain.members[chain.count - 1]);
  return true;
}

void uring_driver::cancel_queued_chain(link_chain& chain) noexcept {
  // Members wait for room together: all of them leave together.
  for (unsigned i = 0; i < chain.count; ++i) {
    completion& c = *chain.members[i];
    if (c.state != op_state::queued) continue;
    ++stats_.cancels;
    c.unlink();
    c.res = -ECANCELED;
    c.cqe_flags = 0;
    detail::set_state(c, op_state::done);
    finished_.push_back(c);
  }
}

void uring_driver::push_slow(completion& c) noexcept {
  count_push(c);
  if (!supports(c.ops->opcode)) {
    c.res = -EOPNOTSUPP;
    c.cqe_flags = 0;
    detail::set_state(c, op_state::done);
    finished_.push_back(c);
    return;
  }
  // Keep FIFO order: nothing overtakes operations already waiting for room
  // (unbounded ops need none, see unbounded_).
  if ((waiting_.empty() || is_unbounded(c)) && try_issue(c)) return;
  ++stats_.queued_for_space;
  detail::set_state(c, op_state::queued);
  waiting_.push_back(c);
}

bool uring_driver::resubmits_after_cancel(uint8_t opcode) noexcept {
  switch (opcode) {
    case IORING_OP_NOP:
    case IORING_OP_READV:
    case IORING_OP_WRITEV:
    case IORING_OP_FSYNC:
    case IORING_OP_READ_FIXED:
    case IORING_OP_WRITE_FIXED:
    case IORING_OP_POLL_ADD:
    case IORING_OP_SYNC_FILE_RANGE:
    case IORING_OP_SENDMSG:
    case IORING_OP_RECVMSG:
    case IORING_OP_ACCEPT:
    case IORING_OP_FALLOCATE:
    case IORING_OP_OPENAT:
    case IORING_OP_CLOSE:
    case IORING_OP_STATX:
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_FADVISE:
    case IORING_OP_SEND:
    case IORING_OP_RECV:
    case IORING_OP_OPENAT2:
    case IORING_OP_SHUTDOWN:
    case IORING_OP_RENAMEAT:
    case IORING_OP_UNLINKAT:
    case IORING_OP_MKDIRAT:
    case IORING_OP_SYMLINKAT:
    case IORING_OP_LINKAT:
    case IORING_OP_SOCKET: return true;
    default: return false;
  }
}

bool uring_driver::resubmit_after_cancel(completion& c, int32_t res) noexcept {
  // ECANCELED that coil did not ask for: io-wq failed to create a worker for
  // the op (a signal was pending in the thread that had to fork one), so
  // the kernel never ran it. Real cancels (stop tokens, close, timeouts,
  // frames destroyed) all come through cancel() and set cancel_requested.
  if (res != -ECANCELED || c.cancel_requested || c.cancel_retries == max_cancel_retries || c.ops->on_cqe != nullptr ||
      !resubmits_after_cancel(c.ops->opcode)) {
    return false;
  }
  ++c.cancel_retries;
  ++stats_.cancel_retries;
  // Back through the room queue, which reap() fills from when it is done.
  detail::set_state(c, op_state::queued);
  waiting_.push_back(c);
  return true;
}

void uring_driver::cancel(completion& c) noexcept {
  switch (c.state) {
    case op_state::queued:
      if (c.ops->chain_of != nullptr) [[unlikely]] return cancel_queued_chain(*c.ops->chain_of(c));
      ++stats_.cancels;
      c.unlink();
      c.res = -ECANCELED;
      c.cqe_flags = 0;
      detail::set_state(c, op_state::done);
      finished_.push_back(c);
      return;
    case op_state::in_flight:
      if (c.cancel_requested) return;
      c.cancel_requested = true;
      ++stats_.cancels;
      if (cancels_waiting_ != 0 || !try_issue_cancel(c)) ++cancels_waiting_;
      check_invariants();
      return;
    case op_state::idle:
    case op_state::done:
      return;
  }
}

void uring_driver::issue_waiting_cancels() noexcept {
  // Rare (the CQ was full when cancel() came): a walk beats a second hook.
  in_flight_ops_.for_each([this](completion& c) {
    if (cancels_waiting_ != 0 && c.cancel_requested && !c.cancel_issued && try_issue_cancel(c)) --cancels_waiting_;
  });
  check_invariants();
}

void uring_driver::fill_from_waiting() noexcept {
  if (cancels_waiting_ != 0) {
    issue_waiting_cancels();
    if (cancels_waiting_ != 0) return;
  }
  while (completion* c = waiting_.front()) {
    if (c->ops->chain_of != nullptr) [[unlikely]] {
      link_chain& chain = *c->ops->chain_of(*c);
      COIL_DEBUG_ASSERT(chain.members[0] == c, "a link chain waits for room from its first member");
      if (!try_issue_chain(chain)) return;
      continue;
    }
    if (!try_issue(*c)) return;  // issued ones leave waiting_ for in_flight_ops_
  }
}

result<void> uring_driver::enter(bool wait, int64_t timeout_ns) noexcept {
  const bool defer = ring_.flags & IORING_SETUP_DEFER_TASKRUN;
  for (;;) {
    int r;
    if (wait) {
      if (io_uring_cq_ready(&ring_) != 0 && unsubmitted_ == 0) return {};
      io_uring_cqe* cqe = nullptr;
      if (timeout_ns >= 0) {
        __kernel_timespec ts{timeout_ns / 1'000'000'000LL, timeout_ns % 1'000'000'000LL};
        r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      } else {
        r = io_uring_submit_and_wait(&ring_, 1);
      }
    } else if (unsubmitted_ != 0) {
      r = io_uring_submit_and_get_events(&ring_);
    } else if (defer && in_flight_ != 0) {
      r = io_uring_get_events(&ring_);
    } else {
      return {};
    }
    ++stats_.enter_calls;
    // With a timeout liburing reports the submit count through the ring, not r;
    // the SQ being drained is what matters.
    note_submitted();
    if (r >= 0 || r == -ETIME || r == -EINTR) return {};
    if (r == -EAGAIN || r == -EBUSY) {
      // The kernel is short of resources or holds unflushed completions:
      // reaping frees them, so report success and let the caller reap.
      return {};
    }
    return fail(kernel_error(r));
  }
}

result<void> uring_driver::flush() noexcept { return enter(false, -1); }

result<void> uring_driver::wait(int64_t timeout_ns) noexcept {
  if (!finished_.empty()) return flush();
  if (!direct_park_) return enter(true, timeout_ns);
  // One io_uring_enter that submits what is queued and parks, made here
  // rather than through liburing so it can carry NO_IOWAIT and skip the
  // submit path's extra reads of the rings.
  const unsigned to_submit = unsubmitted_ != 0 ? publish_sqes() : 0u;
  if (to_submit == 0 && io_uring_cq_ready(&ring_) != 0) return {};
  // Parked on peers only (sockets, multishot): not I/O wait, which tools
  // read as a slow disk. With file or device I/O in flight the kernel's
  // iowait hint stays (cpufreq boosts for low-depth storage I/O).
  unsigned flags = park_flags_ | (in_flight_ == unbounded_ ? no_iowait_flag_ : 0u);
  __kernel_timespec ts;  // filled only for a deadline
  io_uring_getevents_arg arg;
  void* argp = nullptr;
  size_t argsz = 0;
  if (timeout_ns >= 0) {
    ts = {timeout_ns / 1'000'000'000LL, timeout_ns % 1'000'000'000LL};
    arg = {};
    arg.sigmask_sz = _NSIG / 8;
    arg.ts = reinterpret_cast<uint64_t>(&ts);
    flags |= IORING_ENTER_EXT_ARG;
    argp = &arg;
    argsz = sizeof(arg);
  }
  const int r = io_uring_enter2(static_cast<unsigned>(ring_.enter_ring_fd), to_submit, 1, flags,
                                static_cast<sigset_t*>(argp), argsz);
  ++stats_.enter_calls;
  if (to_submit != 0) note_submitted();
  if (r >= 0 || r == -ETIME || r == -EINTR || r == -EAGAIN || r == -EBUSY) [[likely]] return {};
  return fail(kernel_error(r));
}

// liburing has no call that publishes filled SQEs without entering the
// kernel, so this does what its submit path does (__io_uring_flush_sq in
// liburing 2.0 to 2.9): SQEs from sq.sqe_head to sq.sqe_tail are filled but
// unpublished; publishing stores the tail to *sq.ktail with release order.
// The fields are in liburing's public struct; the checks below break the
// build if they change type. CMakeLists.txt requires liburing 2.x.
static_assert(std::is_same_v<decltype(io_uring_sq::sqe_head), unsigned> &&
                  std::is_same_v<decltype(io_uring_sq::sqe_tail), unsigned> &&
                  std::is_same_v<decltype(io_uring_sq::ktail), unsigned*> &&
                  std::is_same_v<decltype(io_uring_sq::khead), unsigned*>,
              "liburing's io_uring_sq changed: review uring_driver::publish_sqes");

unsigned uring_driver::publish_sqes() noexcept {
  // Without SQPOLL the kernel reads the tail in this thread's own system call.
  io_uring_sq& sq = ring_.sq;
  if (sq.sqe_head != sq.sqe_tail) {
    sq.sqe_head = sq.sqe_tail;
    io_uring_smp_store_release(sq.ktail, sq.sqe_tail);
  }
  return sq.sqe_tail - IO_URING_READ_ONCE(*sq.khead);
}

void uring_driver::note_submitted() noexcept {
  const unsigned left = io_uring_sq_ready(&ring_);
  if (left == 0) unsubmitted_device_ = 0;
  if (left < unsubmitted_) {
    stats_.submitted += unsubmitted_ - left;
    unsubmitted_ = left;
  }
  check_invariants();
}

std::size_t uring_driver::reap(intrusive_list<completion>& out, direct_fn direct, void* ctx) noexcept {
  std::size_t n = 0;
  // NODROP kernels keep such CQEs and leave koverflow at 0: only this flag tells.
  if (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW) ++stats_.cq_overflows;
  while (completion* c = finished_.pop_front()) {
    ++stats_.by_opcode[opcode_slot(c->ops->opcode)].completed;
    ++stats_.completed;
    deliver(*c, out);
    ++n;
  }
  // The tail is read once (liburing's loop re-reads it per CQE); later
  // CQEs wait for the next reap.
  io_uring_cq& cq = ring_.cq;
  const unsigned tail = io_uring_smp_load_acquire(cq.ktail);
  const unsigned shift = (ring_.flags & IORING_SETUP_CQE32) ? 1u : 0u;
  const unsigned first = *cq.khead;
  unsigned head = first;
  // Signed distance: a nested reap (a directly resumed owner's
  // cancel_and_wait) may move the head past this walk's tail.
  for (; static_cast<int32_t>(tail - head) > 0; ++head) {
    const io_uring_cqe* cqe = &cq.cqes[(head & cq.ring_mask) << shift];
    if (cqe->user_data == internal_user_data) {
      --in_flight_;
      check_invariants();
      continue;
    }
    auto* c = reinterpret_cast<completion*>(cqe->user_data);
    // Read once: stores through c below could alias the CQE for the compiler.
    const int32_t res = cqe->res;
    const uint32_t flags = cqe->flags;
    if (c->ops->on_cqe != nullptr) [[unlikely]] {
      int took = hold_result(*c, res, flags);
      if (took < 0) {
        // The walk pauses before this CQE while the pending hooks run.
        io_uring_smp_store_release(cq.khead, head);
        run_hooks();
        took = hold_result(*c, res, flags);
      }
      n += static_cast<unsigned>(took);
      stats_.completed += static_cast<unsigned>(took);
      continue;
    }
    if (flags & IORING_CQE_F_MORE) {
      // Still in flight (a zero-copy send's result before its notification).
      c->res = res;
      c->cqe_flags = flags;
      ++stats_.extra_results;
      continue;
    }
    retire(*c);
    if (res < 0 && resubmit_after_cancel(*c, res)) [[unlikely]] continue;
    if (flags & IORING_CQE_F_NOTIF) {
      c->cqe_flags |= IORING_CQE_F_NOTIF;  // zero-copy done: keep the send's result
    } else {
      c->res = res;
      c->cqe_flags = flags;
    }
    detail::set_state(*c, op_state::done);
    ++stats_.by_opcode[opcode_slot(c->ops->opcode)].completed;
    ++stats_.completed;  // counted before the owner runs: it may read stats()
    ++n;
    if (direct != nullptr) {
      // The owner runs now: the CQ must already be past c, and held
      // multishot results must be delivered before it can touch their ops.
      io_uring_smp_store_release(cq.khead, head + 1);
      if (hooked_ != 0) [[unlikely]] run_hooks();
      direct(*c, ctx, head + 1 != tail);
      head = *cq.khead - 1;  // a nested reap may have walked on
      continue;
    }
    out.push_back(*c);
  }
  if (head != first) {
    io_uring_smp_store_release(cq.khead, head);
    if (hooked_ != 0) [[unlikely]] run_hooks();  // only after the walk
  }
  if (!waiting_.empty() || cancels_waiting_ != 0) fill_from_waiting();
  if constexpr (detail::invariants) check_lists();
  return n;
}

int uring_driver::hold_result(completion& c, int32_t res, uint32_t flags) noexcept {
  // c holds one result at a time: a second one waits until c's hook ran.
  if (hooked_ == hook_batch || std::find(hooks_, hooks_ + hooked_, &c) != hooks_ + hooked_) return -1;
  c.res = res;
  c.cqe_flags = flags;
  hooks_[hooked_++] = &c;
  if (flags & IORING_CQE_F_MORE) {
    ++stats_.extra_results;  // still armed: the kernel slot stays taken
    return 0;
  }
  retire(c);
  detail::set_state(c, op_state::done);
  ++stats_.by_opcode[opcode_slot(c.ops->opcode)].completed;
  return 1;
}

void uring_driver::run_hooks() noexcept {
  // Taken off the batch first: a hook may push, cancel or re-arm, not reap.
  const unsigned count = std::exchange(hooked_, 0u);
  const unsigned head = *ring_.cq.khead;
  for (unsigned i = 0; i < count; ++i) hooks_[i]->ops->on_cqe(*hooks_[i]);
  COIL_DEBUG_ASSERT(hooked_ == 0 && *ring_.cq.khead == head, "a multishot hook reaped");
  static_cast<void>(head);
}

void uring_driver::check_lists() noexcept {
  uint32_t ops = 0, unbounded = 0, cancels = 0;
  in_flight_ops_.for_each([&](completion& c) {
    COIL_DEBUG_ASSERT(c.state == op_state::in_flight, "an op listed in flight is not in flight");
    ++ops;
    unbounded += is_unbounded(c);
    cancels += c.cancel_requested && !c.cancel_issued;
  });
  // The rest of in_flight_ is the driver's own cancel requests.
  COIL_DEBUG_ASSERT(ops <= in_flight_, "more ops listed in flight than counted");
  COIL_DEBUG_ASSERT(unbounded == unbounded_, "unbounded_ differs from the unbounded ops in flight");
  COIL_DEBUG_ASSERT(cancels == cancels_waiting_, "cancels_waiting_ differs from the cancels not yet issued");
  COIL_DEBUG_ASSERT(ops - unbounded <= op_limit_, "bounded ops in flight exceed op_limit_");
  waiting_.for_each([](completion& c) {
    COIL_DEBUG_ASSERT(c.state == op_state::queued, "an op waiting for room is not queued");
  });
  finished_.for_each([](completion& c) {
    COIL_DEBUG_ASSERT(c.state == op_state::done, "an op finished without the kernel is not done");
  });
  check_invariants();
}

void uring_driver::cancel_and_wait(completion& c, intrusive_list<completion>& out) noexcept {
  detail::cancel_and_drain(*this, c, out);
}

}  // namespace coil
