#pragma once
// Readiness driver for systems where io_uring is unavailable (Docker's and
// containerd's default seccomp profiles, kernel.io_uring_disabled, RHEL).
// Runs the same operation structs as the io_uring driver through their
// perform() function:
// - an op is tried nonblocking when the loop flushes (MSG_DONTWAIT,
//   RWF_NOWAIT); on -EAGAIN it waits for its fd's readiness (edge-triggered
//   epoll, registered once per fd) and is tried again;
// - ops that cannot report readiness (open, fsync, a regular-file read that
//   misses the page cache) run blocking on a small bounded worker pool whose
//   completions come back through an eventfd in the same epoll set.
// Same contract as uring_driver: push never fails, each completion is handed
// back exactly once through reap(), cancel completes it with -ECANCELED or its
// real result. Single-threaded, like uring_driver.
//
// Multishot hooks (op_vtable::on_cqe) run after the walk that produced their
// results (the pending ops tried by flush, the readiness events of one
// poll), never inside it: a result waits in its completion, which stays off
// every other list meanwhile, so an op holds at most one; its hook runs with
// the op already requeued (the hook may cancel it). Final results reach the
// hook through reap().
//
// An fd's registration is dropped when it is closed through coil (a close op,
// unique_fd). Closing a raw fd behind coil's back while it is reused for a new
// file is not detected: close fds through coil.
#include <pthread.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "coil/core/intrusive_list.hpp"
#include "coil/core/result.hpp"
#include "coil/core/unique_fd.hpp"
#include "coil/io/completion.hpp"
#include "coil/io/op_state.hpp"
#include "coil/io/stats.hpp"

namespace coil {

// A readiness driver's IORING_OP_LINK_TIMEOUT (ops::link_timeout in a link
// chain, rt/link.hpp): completes with -ETIME at its deadline unless
// cancelled first.
struct deadline_completion : completion {
  int64_t deadline_ns = 0;  // CLOCK_MONOTONIC; set by push_deadline
};

struct epoll_options {
  unsigned workers = 4;  // max worker threads for blocking ops (created on demand)
};

class epoll_driver {
 public:
  static result<std::unique_ptr<epoll_driver>> create(const epoll_options& opts = {});
  ~epoll_driver();
  epoll_driver(const epoll_driver&) = delete;
  epoll_driver& operator=(const epoll_driver&) = delete;

  void push(completion& c) noexcept;
  // Holds c until timeout_ns from now, then finishes it with -ETIME (the
  // wait is bounded by it); cancel() finishes it early with -ECANCELED.
  void push_deadline(deadline_completion& c, int64_t timeout_ns) noexcept;
  void cancel(completion& c) noexcept;
  // Tries queued ops and collects readiness and worker results, without blocking.
  result<void> flush() noexcept;
  // Like flush, then blocks until something completes or timeout_ns passes
  // (negative: no timeout).
  result<void> wait(int64_t timeout_ns) noexcept;
  std::size_t reap(intrusive_list<completion>& out) noexcept;
  void cancel_and_wait(completion& c, intrusive_list<completion>& out) noexcept;

  // Forgets fd's readiness registration (it is being closed).
  void forget_fd(int fd) noexcept;

  bool has_pending_work() const noexcept { return in_flight_ != 0 || !pending_.empty() || !finished_.empty(); }
  uint32_t in_flight() const noexcept { return in_flight_; }
  const driver_stats& stats() const noexcept { return stats_; }
  unsigned worker_threads() const noexcept;

  // Calls f(completion&, bool in_flight) for every operation pushed and not
  // yet completed: waiting for readiness or on the worker pool (true), then
  // not tried yet (false). For diagnostics; f must not push or cancel.
  template <class F>
  void for_each_pending(F&& f) noexcept {
    for (auto& s : fds_) {
      if (s) s->waiters.for_each([&](completion& c) { f(c, true); });
    }
    backed_off_.for_each([&](completion& c) { f(c, true); });
    deadlines_.for_each([&](completion& c) { f(c, true); });
    {
      std::lock_guard lock(mu_);
      queue_.for_each([&](completion& c) { f(c, true); });
      for (completion* c : running_) {
        if (c != nullptr) f(*c, true);
      }
    }
    pending_.for_each([&](completion& c) { f(c, false); });
  }
  // Readable when some waited-for fd is ready or a worker finished.
  int poll_fd() const noexcept { return epfd_.get(); }

 private:
  struct fd_state {
    intrusive_list<completion> waiters;
    bool registered = false;    // in the epoll set (edge-triggered)
    bool not_pollable = false;  // epoll refused it (regular file): use workers
    // A TCP read left the receive queue empty and no input edge came
    // since: the next such read waits for one (completion::reads_to_empty).
    bool input_empty = false;
    // The peer's end, an error or urgent data was seen: a short read stops
    // at an end of stream or an urgent mark with more to read and no edge
    // to come, so reads of this fd are always tried.
    bool reads_always_tried = false;
    // Registered for foreign_fd ops only (ops::poll_ready on a descriptor
    // coil may never see closed): deregistered when the last one leaves.
    bool foreign_only = false;
  };
  epoll_driver() = default;
  fd_state& state_of(int fd) noexcept;
  void drop_foreign(int fd) noexcept;
  void start(completion& c) noexcept;
  void await_ready(completion& c, fd_state& s) noexcept;
  // finish completes c for good; deliver_result hands over an attempt's
  // result, which leaves a multishot op armed unless it ends the op.
  void finish(completion& c, int32_t res, uint32_t flags) noexcept;
  void deliver_result(completion& c, int32_t res) noexcept;
  void run_hooks() noexcept;
  // in_flight_ counts the ops this driver holds between pending_ and
  // finished_ (readiness waiters, backed-off ops, the worker pool's, multishot
  // results waiting for their hooks); ops enter that set through hold (which
  // makes them in_flight) and leave it through let_go.
  void hold(completion& c) noexcept {
    detail::set_state(c, op_state::in_flight);
    if (++in_flight_ > stats_.in_flight_max) stats_.in_flight_max = in_flight_;
  }
  void let_go() noexcept {
    COIL_DEBUG_ASSERT(in_flight_ != 0, "epoll driver let go of an op it did not hold");
    --in_flight_;
  }
  // Debug invariants: in_flight_ equals the ops on those lists, and every
  // list holds ops in its state. O(fds + ops): at the end of flush, wait
  // and reap.
  void check_invariants() noexcept;
  void expire_deadlines() noexcept;
  void back_off(completion& c) noexcept;
  void retry_backed_off() noexcept;
  void offload(completion& c) noexcept;
  void run_pending() noexcept;
  result<void> poll(int64_t timeout_ns) noexcept;
  void on_ready(int fd, uint32_t events) noexcept;
  void collect_workers() noexcept;
  bool spawn_worker() noexcept;
  static void* worker_main(void* self) noexcept;

  unique_fd epfd_;
  unique_fd eventfd_;  // worker completions
  intrusive_list<completion> pending_;   // pushed, not tried yet
  intrusive_list<completion> finished_;  // done, waiting for reap
  intrusive_list<completion> backed_off_;  // ops::retry_later: tried again at backoff_due_ns_
  // Multishot results (cqe_flags has IORING_CQE_F_MORE) waiting for the walk
  // that produced them to end; empty between driver calls.
  intrusive_list<completion> results_;
  int64_t backoff_due_ns_ = 0;
  intrusive_list<completion> deadlines_;  // deadline_completions (push_deadline)
  std::vector<std::unique_ptr<fd_state>> fds_;
  uint32_t in_flight_ = 0;  // waiting for readiness or on a worker
  bool epoll_pwait2_ok_ = true;
  driver_stats stats_;

  // completion::res of an op in queue_: no system call returns it.
  static constexpr int32_t not_started = INT32_MIN + 1;
  // Worker pool: queue_ and done_ are shared with worker threads under mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  intrusive_list<completion> queue_;
  intrusive_list<completion> done_;
  std::vector<completion*> running_;  // one slot per worker: the op it performs
  std::vector<pthread_t> threads_;
  unsigned max_workers_ = 4;
  unsigned idle_workers_ = 0;
  bool stopping_ = false;
};

}  // namespace coil
