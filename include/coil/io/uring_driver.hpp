#pragma once
// io_uring driver: the only code that talks to the ring. Usable on its own
// (push operations, submit, reap completions into your own list) or under the
// runtime. Single-threaded: every call must come from the creating thread.
//
// Guarantees:
// - nothing is submitted per operation: push() only fills SQEs; flush/wait do
//   one io_uring_enter for everything pushed since the last one;
// - the number of operations the kernel owns never exceeds the CQ size, so
//   completions cannot overflow; excess operations wait in a user-space queue
//   and "SQ full" never reaches the caller;
// - a completion is handed back exactly once, through reap();
// - an operation that completes with ECANCELED coil did not ask for (io-wq
//   could not start a worker while a signal was pending) is resubmitted, up
//   to max_cancel_retries times (stats().cancel_retries), where that is safe;
// - multishot hooks (op_vtable::on_cqe) run after the walk of the CQ that
//   found their results, once the CQ head has moved past them, so a hook sees
//   settled counters and may push, cancel or re-arm. An op holds one result
//   at a time (in its completion): a second CQE for an op whose hook has not
//   run yet (or a full batch of hooks) pauses the walk while the pending
//   hooks run. Hooks of ops finished without the kernel (finished_) run as
//   reap takes them, before the walk. Hooks must not reap.
#include <cstdint>
#include <memory>
#include <vector>

#include <liburing.h>

#include "coil/core/assert.hpp"
#include "coil/core/intrusive_list.hpp"
#include "coil/core/result.hpp"
#include "coil/io/completion.hpp"
#include "coil/io/op_state.hpp"
#include "coil/io/registration.hpp"
#include "coil/io/stats.hpp"

namespace coil {

struct uring_options {
  unsigned entries = 256;          // SQ size; the CQ gets twice as many. On ENOMEM
                                   // (RLIMIT_MEMLOCK on old kernels) smaller rings are tried.
  bool single_issuer = true;       // IORING_SETUP_SINGLE_ISSUER|DEFER_TASKRUN when available
  bool register_ring_fd = true;    // saves an fdget per io_uring_enter
  // Caps the kernel's io-wq worker threads (iou-wrk-*) for this ring:
  // [0] bounded work (regular-file I/O), [1] unbounded (sockets, pipes).
  // Without a cap, thousands of blocking buffered writes spawn thousands of
  // threads. 0 leaves the kernel default.
  unsigned iowq_max_workers[2] = {8, 8};
  // SQPOLL: a kernel thread polls the SQ, so submitting needs no system call
  // while it is awake. Off by default (it burns a CPU while busy); falls back
  // to a normal ring when refused (EPERM without CAP_SYS_NICE on old kernels).
  bool sqpoll = false;
  unsigned sqpoll_idle_ms = 50;  // the thread sleeps after this long without work
  int sqpoll_cpu = -1;           // pin the thread (IORING_SETUP_SQ_AFF); -1: anywhere
  // Size of the registered-file and registered-buffer tables (sparse,
  // created on first registration).
  unsigned fixed_files = 1024;
  unsigned fixed_buffers = 64;
  // Submit as soon as this many SQEs are filled (0: once per loop turn, the
  // default, which makes the fewest system calls). 1 hands each op to the
  // kernel at push, like fio's default iodepth_batch_submit=1: a system call
  // per op, for devices that serve a trickle of requests faster than bursts.
  unsigned submit_batch = 0;
  // Submit as soon as this many O_DIRECT ops (direct_file on io_uring) are
  // filled (0: no cap of their own). Some block devices start on a request
  // later when it arrives in a large batch; the default 4 keeps most of the
  // system-call saving of batching while avoiding that delay
  // (docs/performance.md, submit batching).
  unsigned device_submit_batch = 4;
  // A socket send (ops with the eager trait) awaited on an eager turn (no
  // other task ready, no SQE waiting to be submitted, no other send pending
  // on the socket) is first tried with one send(MSG_DONTWAIT) system call and
  // completes without the ring if that moved any bytes. With one connection
  // this replaces a submit that returns at once, plus a completion and a
  // resume; busy turns batch sends in the ring (docs/design.md, Eager sends).
  bool eager_send = true;
  // A positional read of a file (file::read_at; not fixed<> ops, not
  // O_DIRECT files) awaited on a quiet turn (as for eager sends: nothing
  // else ready, nothing waiting for the ring) is first tried with one
  // preadv2(RWF_NOWAIT): a page-cache hit completes without the ring. A file whose reads keep
  // missing goes to the ring for a while before it is tried again, and a
  // loop turn finishes at most inline_read_budget reads inline, so a task
  // reading a cached file in a loop still lets others run
  // (docs/design.md, Inline reads).
  bool inline_reads = true;
  unsigned inline_read_budget = 64;
};


class uring_driver {
 public:
  static result<std::unique_ptr<uring_driver>> create(const uring_options& opts = {});
  // Opcodes every coil runtime relies on (5.6+); a ring without them is
  // treated as unavailable.
  bool has_required_opcodes() const noexcept;
  // Resubmissions of one operation after ECANCELED nobody asked for; the
  // next one is delivered.
  static constexpr unsigned max_cancel_retries = 3;
  // Whether an op whose ECANCELED was not asked for may be submitted again:
  // it never ran, and running it alone means what running it once means.
  // Not connect (one that had started answers EALREADY), zero-copy sends
  // (two CQEs) or timeouts; multishot ops are their owners' to re-arm.
  static bool resubmits_after_cancel(uint8_t opcode) noexcept;
  // The kernel takes a NOP's result from its SQE (IORING_NOP_INJECT_RESULT,
  // 6.10+): the fault layer's ecanceled kind needs it.
  bool injects_nop_results() const noexcept { return injects_nop_results_; }
  ~uring_driver();
  uring_driver(const uring_driver&) = delete;
  uring_driver& operator=(const uring_driver&) = delete;

  // Opcodes every coil runtime relies on (5.6+): has_required_opcodes checks
  // them once, so a push that knows its opcode is one of them at compile
  // time skips the probe (push<true>).
  static constexpr bool required_opcode(uint8_t opcode) noexcept {
    switch (opcode) {
      case IORING_OP_NOP:
      case IORING_OP_READV:
      case IORING_OP_WRITEV:
      case IORING_OP_FSYNC:
      case IORING_OP_READ_FIXED:
      case IORING_OP_WRITE_FIXED:
      case IORING_OP_POLL_ADD:
      case IORING_OP_SENDMSG:
      case IORING_OP_RECVMSG:
      case IORING_OP_ACCEPT:
      case IORING_OP_ASYNC_CANCEL:
      case IORING_OP_CONNECT:
      case IORING_OP_FALLOCATE:
      case IORING_OP_OPENAT:
      case IORING_OP_CLOSE:
      case IORING_OP_STATX:
      case IORING_OP_READ:
      case IORING_OP_WRITE:
      case IORING_OP_SEND:
      case IORING_OP_RECV: return true;
      default: return false;
    }
  }

  // Queues c (c.ops set, state idle). Fills an SQE now if room allows,
  // otherwise c waits in user space. Never fails: an opcode the kernel lacks
  // completes with -EOPNOTSUPP at the next reap. Required: c's opcode is a
  // required_opcode (no probe check).
  template <bool Required = false>
  void push(completion& c) noexcept {
    COIL_ASSERT(c.state == op_state::idle && !c.linked(), "operation pushed twice (already pending)");
    COIL_DEBUG_ASSERT(c.ops != nullptr, "operation has no op_vtable");
    // Inline for the common case: nothing waits for room (FIFO), the op fits
    // the CQ bound and the kernel has it; an SQE is free.
    const bool unbounded = is_unbounded(c);
    if (waiting_.empty() && (unbounded || in_flight_ - unbounded_ < op_limit_) &&
        (Required || supports(c.ops->opcode))) [[likely]] {
      if (io_uring_sqe* sqe = get_sqe()) [[likely]] {
        count_push(c);
        issue(c, *sqe, unbounded);
        return;
      }
    }
    push_slow(c);
  }

  // Queues a link chain (every member idle, its ops set, on_cqe taking its
  // result): the SQEs go to the ring contiguous and linked in order, once
  // the whole chain fits the SQ and the CQ bound; until then the chain waits
  // for room as one unit, in FIFO order with other ops. A member the kernel
  // lacks fails the chain at the next reap (it with -EOPNOTSUPP, the others
  // with -ECANCELED); so does one that could never fit the ring (-EINVAL).
  void push_chain(link_chain& chain) noexcept;

  // Asks the kernel to cancel c. c still completes exactly once (with
  // -ECANCELED, or its real result if it finished first). No-op when c is not
  // pending.
  void cancel(completion& c) noexcept;

  // Submits what is queued (one system call if anything is) and collects
  // completions ready in the kernel, without blocking.
  result<void> flush() noexcept;

  // Submits what is queued and blocks until at least one completion is
  // available or timeout_ns passes (negative: no timeout). One system call.
  // A timeout or signal is not an error.
  result<void> wait(int64_t timeout_ns) noexcept;

  // Appends finished completions to out (state done, res set). Returns how many.
  std::size_t reap(intrusive_list<completion>& out) noexcept { return reap(out, nullptr, nullptr); }
  // The same, but a completion found in the CQ walk (not multishot) goes to
  // direct(c, ctx, more) instead of out, with the CQ head already past it
  // and pending multishot hooks run: direct may resume its owner, which may
  // push, cancel or cancel_and_wait (a nested reap), never this reap again.
  // more: CQEs of this walk are still to come. Ops finished without the
  // kernel still go to out.
  using direct_fn = void (*)(completion& c, void* ctx, bool more) noexcept;
  std::size_t reap(intrusive_list<completion>& out, direct_fn direct, void* ctx) noexcept;

  // Blocks until c has completed, cancelling it first. Other completions that
  // arrive meanwhile are appended to out. On return c is done and unlinked.
  void cancel_and_wait(completion& c, intrusive_list<completion>& out) noexcept;

  bool supports(uint8_t opcode) const noexcept { return (probe_[opcode / 8] >> (opcode % 8)) & 1u; }
  uint32_t in_flight() const noexcept { return in_flight_; }
  uint32_t capacity() const noexcept { return capacity_; }
  bool has_pending_work() const noexcept { return in_flight_ != 0 || !waiting_.empty() || !finished_.empty();
  }
  unsigned setup_flags() const noexcept { return ring_.flags; }
  // Nothing is waiting to reach the kernel, and eager sends are on.
  bool eager_allowed() const noexcept { return eager_send_ && ring_idle(); }
  // No SQE filled and nothing waiting for room.
  bool ring_idle() const noexcept { return io_uring_sq_ready(&ring_) == 0 && waiting_.empty(); }
  // An op finished by a direct system call instead of the ring.
  void count_eager() noexcept { ++stats_.eager; }
  void count_inline_read() noexcept { ++stats_.inline_reads; }
  // An eventfd the kernel signals when completions arrive (registered on
  // first call). Polling the ring fd itself is not enough: with
  // DEFER_TASKRUN a sleeping poller is not woken until the task work runs.
  // Reading it (to clear) is the caller's job.
  result<int> notify_fd() noexcept;
  bool sqpoll_active() const noexcept { return ring_.flags & IORING_SETUP_SQPOLL; }
  // Parks on sockets alone are not counted as I/O wait (IORING_ENTER_NO_IOWAIT,
  // 6.15+); with file or device I/O in flight they still are.
  bool parks_without_iowait() const noexcept { return no_iowait_flag_ != 0; }

  // Registered (fixed) files: the kernel keeps a reference, so ops on the
  // slot skip the per-op file lookup (use ops::fixed<Op>). Returns the slot.
  result<int> register_file(int fd) noexcept;
  void unregister_file(int slot) noexcept;
  // Registered buffers: pinned once, so read_fixed/write_fixed skip the
  // per-op page pinning. Returns the buffer index.
  result<int> register_buffer(void* data, std::size_t len) noexcept;
  void unregister_buffer(int index) noexcept;
  // Provided-buffer rings (IORING_REGISTER_PBUF_RING): ring_mem is a
  // page-aligned array of `entries` io_uring_buf (a power of two) that must
  // stay mapped until unregistered. Fills reg (the group id) and links it.
  result<void> register_buf_ring(void* ring_mem, unsigned entries, buf_ring_registration& reg) noexcept;
  void unregister_buf_ring(buf_ring_registration& reg) noexcept;

  // The io-wq caps in force ({0, 0} when the kernel refused to set them).
  const unsigned* iowq_max_workers() const noexcept { return iowq_max_; }
  uint32_t cq_overflow() const noexcept;
  const driver_stats& stats() const noexcept { return stats_; }

  // Calls f(completion&, bool in_flight) for every operation pushed and not
  // yet completed, in push order: with the kernel (true), then waiting for
  // room (false). For diagnostics (listing what is stuck); f must not push or cancel.
  template <class F>
  void for_each_pending(F&& f) noexcept {
    in_flight_ops_.for_each([&](completion& c) { f(c, true); });
    waiting_.for_each([&](completion& c) { f(c, false); });
  }

 private:
  uring_driver() = default;
  // io_uring_get_sqe without its per-call checks of the setup flags (coil
  // never sets SQE128) and with the kernel's SQ head cached: the cache only
  // lags, so a slot it calls free is free, and the head is read again only
  // when the cached one says the SQ is full.
  io_uring_sqe* get_sqe() noexcept {
    io_uring_sq& sq = ring_.sq;
    const unsigned tail = sq.sqe_tail;
    if (tail - sq_head_ >= sq.ring_entries) [[unlikely]] {
      sq_head_ = io_uring_smp_load_acquire(sq.khead);
      if (tail - sq_head_ >= sq.ring_entries) return nullptr;
    }
    sq.sqe_tail = tail + 1;
    return &sq.sqes[tail & sq.ring_mask];
  }
  io_uring_sqe* next_sqe() noexcept;
  void push_slow(completion& c) noexcept;
  void count_push(completion& c) noexcept {
    ++stats_.pushed;
    ++stats_.by_opcode[opcode_slot(c.ops->opcode)].pushed;
    c.cancel_requested = c.cancel_issued = false;
    c.cancel_retries = 0;
  }
  // Hands c (not linked anywhere) to the kernel in sqe.
  void issue(completion& c, io_uring_sqe& sqe, bool unbounded) noexcept {
    fill(c, sqe, unbounded);
    if (submit_batch_ != 0 || c.device) [[unlikely]] submit_early(c);
  }
  void fill(completion& c, io_uring_sqe& sqe, bool unbounded) noexcept {
    c.ops->prep(c, sqe);
    io_uring_sqe_set_data(&sqe, &c);
    detail::set_state(c, op_state::in_flight);
    in_flight_ops_.push_back(c);
    ++unsubmitted_;
    unbounded_ += unbounded;
    account_in_flight();
    check_invariants();
  }
  void submit_early(const completion& c) noexcept;
  bool resubmit_after_cancel(completion& c, int32_t res) noexcept;
  bool try_issue(completion& c) noexcept;
  bool try_issue_cancel(completion& c) noexcept;
  bool try_issue_chain(link_chain& chain) noexcept;
  void cancel_queued_chain(link_chain& chain) noexcept;
  void submit_now() noexcept;
  void fill_from_waiting() noexcept;
  void issue_waiting_cancels() noexcept;
  result<void> enter(bool wait, int64_t timeout_ns) noexcept;
  unsigned publish_sqes() noexcept;
  void note_submitted() noexcept;
  void account_in_flight() noexcept {
    ++in_flight_;
    if (in_flight_ > stats_.in_flight_max) stats_.in_flight_max = in_flight_;
  }
  bool is_unbounded(const completion& c) const noexcept { return c.unbounded && nodrop_; }
  // An op taken from finished_ (never reached the kernel): outside the CQ walk.
  static void deliver(completion& c, intrusive_list<completion>& out) noexcept {
    if (c.ops->on_cqe != nullptr) {
      c.ops->on_cqe(c);  // multishot: the owner takes every result
    } else {
      out.push_back(c);
    }
  }
  // c's final CQE was reaped: the kernel no longer holds it.
  void retire(completion& c) noexcept {
    --in_flight_;
    if (is_unbounded(c)) --unbounded_;
    if (cancels_waiting_ != 0 && c.cancel_requested && !c.cancel_issued) --cancels_waiting_;
    in_flight_ops_.erase(c);
    check_invariants();
  }
  // A multishot CQE for c during the walk: c keeps the result for its hook.
  // Returns 1 for a final result, 0 for one with more to come, -1 when the
  // walk must run the pending hooks first.
  [[gnu::noinline]] int hold_result(completion& c, int32_t res, uint32_t flags) noexcept;
  void run_hooks() noexcept;
  // Debug invariants (COIL_DEBUG_ASSERT): the counters agree after every
  // change. Compiled out where invariants are off.
  void check_invariants() const noexcept {
    COIL_DEBUG_ASSERT(!ring_ok_ || (op_limit_ != 0 && op_limit_ < capacity_), "op_limit_ must leave CQ room for cancels");
    COIL_DEBUG_ASSERT(unbounded_ <= in_flight_, "more unbounded ops than ops in flight");
    COIL_DEBUG_ASSERT(nodrop_ || unbounded_ == 0, "unbounded ops without NODROP");
    // Bounded ops stop at op_limit_, the driver's cancels at capacity_.
    COIL_DEBUG_ASSERT(in_flight_ - unbounded_ <= capacity_, "bounded entries in flight exceed the CQ");
    COIL_DEBUG_ASSERT(cancels_waiting_ <= in_flight_, "more cancels waiting than ops in flight");
    COIL_DEBUG_ASSERT(in_flight_ != 0 || in_flight_ops_.empty(), "ops listed in flight with none counted");
    // Without SQPOLL the kernel takes SQEs only in this thread's enter.
    COIL_DEBUG_ASSERT((ring_.flags & IORING_SETUP_SQPOLL) || unsubmitted_ == io_uring_sq_ready(&ring_),
                      "unsubmitted_ differs from the SQEs the kernel has not taken");
    COIL_DEBUG_ASSERT((ring_.flags & IORING_SETUP_SQPOLL) || unsubmitted_ <= in_flight_,
                      "more SQEs unsubmitted than entries in flight");
    COIL_DEBUG_ASSERT(unsubmitted_ != 0 || unsubmitted_device_ == 0, "device ops counted with nothing unsubmitted");
    COIL_DEBUG_ASSERT(device_submit_batch_ != 0 || unsubmitted_device_ == 0, "device ops counted without a device batch");
  }
  // The lists against the counters: O(ops), once per reap.
  void check_lists() noexcept;

  io_uring ring_{};
  unsigned sq_head_ = 0;  // the kernel's SQ head as get_sqe last read it
  bool ring_ok_ = false;
  uint32_t capacity_ = 0;   // max kernel-owned entries (CQ size)
  uint32_t op_limit_ = 0;   // ops stop here; the rest of capacity is kept for cancels
  uint32_t in_flight_ = 0;  // SQEs filled (submitted or not) whose CQE is not yet reaped
  // Of those, ops marked completion::unbounded: armed multishot ops and ops
  // waiting on a peer. They are outside the CQ bound: a server keeps one per
  // idle connection, and bounding them lets ops waiting for room be exactly
  // what they wait for (the other end of an echo). Results beyond the CQ go
  // to the kernel's overflow list (NODROP, flushed by the next enter); a
  // full CQ ends a multishot, which its owner re-arms. Kernels without
  // NODROP bound everything.
  uint32_t unbounded_ = 0;
  bool nodrop_ = false;
  unsigned park_flags_ = IORING_ENTER_GETEVENTS;  // wait()'s io_uring_enter flags
  unsigned no_iowait_flag_ = 0;  // IORING_ENTER_NO_IOWAIT where the kernel has it
  bool direct_park_ = false;     // wait() calls io_uring_enter itself
  bool eager_send_ = true;  // uring_options::eager_send
  bool injects_nop_results_ = false;
  uint32_t unsubmitted_ = 0;
  uint32_t submit_batch_ = 0;  // uring_options::submit_batch
  uint32_t device_submit_batch_ = 0;  // uring_options::device_submit_batch
  uint32_t unsubmitted_device_ = 0;   // device ops filled since the last submit
  intrusive_list<completion> waiting_;         // ops waiting for room
  // Ops the kernel owns, in issue order: lets for_each_pending list them. An
  // in-flight op's hook is free otherwise, so this costs two pointer writes.
  intrusive_list<completion> in_flight_ops_;
  uint32_t cancels_waiting_ = 0;  // in-flight ops whose cancel waits for room (found by a walk)
  intrusive_list<completion> finished_;  // completed without reaching the kernel
  // Multishot ops whose result waits for the CQ walk to end (reap).
  static constexpr unsigned hook_batch = 16;
  completion* hooks_[hook_batch];
  unsigned hooked_ = 0;
  unsigned char probe_[256 / 8] = {};
  unsigned iowq_max_[2] = {0, 0};
  int notify_fd_ = -1;
  std::vector<int> free_files_;    // free slots of the sparse file table
  std::vector<int> free_buffers_;  // free indices of the sparse buffer table
  std::vector<uint16_t> free_groups_;  // provided-buffer group ids to reuse
  intrusive_list<buf_ring_registration> buf_rings_;
  uint16_t next_group_ = 0;
  bool files_registered_ = false;
  bool buffers_registered_ = false;
  unsigned fixed_files_cap_ = 0;
  unsigned fixed_buffers_cap_ = 0;
  driver_stats stats_;
};

}  // namespace coil
