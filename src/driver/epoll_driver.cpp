#include "coil/io/epoll_driver.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "coil/core/assert.hpp"
#include "coil/core/duration.hpp"
#include "coil/io/drain.hpp"
#include "coil/io/ops/common.hpp"

namespace coil {
namespace {

// How long an op that cannot wait for readiness (ops::retry_later) waits
// before its next attempt.
constexpr int64_t backoff_ns = 2'000'000;

int64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// epoll data of the worker eventfd; fds are never this large.
constexpr uint64_t worker_token = ~uint64_t{0};
constexpr uint32_t fd_events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;

}  // namespace

result<std::unique_ptr<epoll_driver>> epoll_driver::create(const epoll_options& opts) {
  std::unique_ptr<epoll_driver> d(new epoll_driver());
  d->epfd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!d->epfd_) return fail(errno_code(errno));
  d->eventfd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!d->eventfd_) return fail(errno_code(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = worker_token;
  if (::epoll_ctl(d->epfd_.get(), EPOLL_CTL_ADD, d->eventfd_.get(), &ev) != 0) return fail(errno_code(errno));
  d->max_workers_ = opts.workers == 0 ? 1 : opts.workers;
  d->threads_.reserve(d->max_workers_);
  d->running_.assign(d->max_workers_, nullptr);
  return d;
}

epoll_driver::~epoll_driver() {
  // Worker ops hold pointers into their owners' memory: let them finish.
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (pthread_t t : threads_) pthread_join(t, nullptr);
  std::lock_guard lock(mu_);
  queue_.clear();
  done_.clear();
}

unsigned epoll_driver::worker_threads() const noexcept {
  return static_cast<unsigned>(threads_.size());
}

epoll_driver::fd_state& epoll_driver::state_of(int fd) noexcept {
  const auto i = static_cast<std::size_t>(fd);
  if (i >= fds_.size()) fds_.resize(i + 1);  // amortized; kept for the fd's lifetime
  if (!fds_[i]) fds_[i] = std::make_unique<fd_state>();
  return *fds_[i];
}

void epoll_driver::forget_fd(int fd) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size() || !fds_[static_cast<std::size_t>(fd)]) return;
  fd_state& s = *fds_[static_cast<std::size_t>(fd)];
  // Waiters on a closing fd would never see readiness again (closing drops
  // the epoll registration): finish them as cancelled.
  while (completion* c = s.waiters.pop_front()) {
    let_go();
    finish(*c, -ECANCELED, 0);
  }
  if (s.registered) (void)::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  s.registered = false;
  s.not_pollable = false;
  s.input_empty = s.reads_always_tried = false;
  s.foreign_only = false;
}

void epoll_driver::drop_foreign(int fd) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size() || !fds_[static_cast<std::size_t>(fd)]) return;
  fd_state& s = *fds_[static_cast<std::size_t>(fd)];
  if (!s.foreign_only || !s.waiters.empty()) return;
  // Its number may be reused by the time anything waits again: keeping the
  // registration would make that waiter trust an epoll entry close() removed.
  (void)::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  s.registered = s.foreign_only = false;
  s.input_empty = s.reads_always_tried = false;
}

void epoll_driver::push(completion& c) noexcept {
  COIL_ASSERT(c.state == op_state::idle && !c.linked(), "operation pushed twice (already pending)");
  COIL_ASSERT(c.ops != nullptr, "operation has no op_vtable");
  ++stats_.pushed;
  ++stats_.by_opcode[opcode_slot(c.ops->opcode)].pushed;
  c.cancel_requested = c.on_worker = false;
  c.cqe_flags = 0;
  detail::set_state(c, op_state::queued);
  pending_.push_back(c);
}

void epoll_driver::push_deadline(deadline_completion& c, int64_t timeout_ns) noexcept {
  COIL_ASSERT(c.state == op_state::idle && !c.linked(), "operation pushed twice (already pending)");
  ++stats_.pushed;
  ++stats_.by_opcode[opcode_slot(c.ops->opcode)].pushed;
  c.cancel_requested = c.on_worker = false;
  c.cqe_flags = 0;
  c.deadline_ns = detail::saturating_add(monotonic_ns(), timeout_ns);
  hold(c);  // cancel() takes it off the list like a readiness waiter
  deadlines_.push_back(c);
}

void epoll_driver::expire_deadlines() noexcept {
  if (deadlines_.empty()) return;
  const int64_t now = monotonic_ns();
  intrusive_list<completion> all;
  all.splice_back(deadlines_);
  while (completion* c = all.pop_front()) {
    if (static_cast<deadline_completion*>(c)->deadline_ns > now) {
      deadlines_.push_back(*c);
      continue;
    }
    let_go();
    finish(*c, -ETIME, 0);
  }
}

void epoll_driver::finish(completion& c, int32_t res, uint32_t flags) noexcept {
  c.res = res;
  c.cqe_flags = flags;
  detail::set_state(c, op_state::done);
  finished_.push_back(c);
}

void epoll_driver::deliver_result(completion& c, int32_t res) noexcept {
  const op_vtable& ops = *c.ops;
  if (ops.on_cqe == nullptr || ops.chain_of != nullptr || res < 0 || (res == 0 && ops.zero_ends)) {
    finish(c, res, c.cqe_flags);
    return;
  }
  // A multishot op stays armed; its hook runs when the walk is over.
  c.res = res;
  c.cqe_flags |= IORING_CQE_F_MORE;
  ++stats_.extra_results;
  hold(c);
  results_.push_back(c);
}

void epoll_driver::run_hooks() noexcept {
  while (completion* c = results_.pop_front()) {
    let_go();
    // Edge-triggered readiness means more may be ready already: try again
    // at the next flush (after the owner ran, so one busy fd cannot
    // monopolize a turn). Requeued first, so the hook may cancel.
    detail::set_state(*c, op_state::queued);
    pending_.push_back(*c);
    c->ops->on_cqe(*c);
    c->cqe_flags = 0;
    // cancel() came while the result waited: it ends the op after the hook.
    if (c->cancel_requested && c->state == op_state::queued) {
      c->unlink();
      finish(*c, -ECANCELED, 0);
    }
  }
}

void epoll_driver::back_off(completion& c) noexcept {
  if (backed_off_.empty()) backoff_due_ns_ = monotonic_ns() + backoff_ns;
  hold(c);  // cancel() takes it off the list like a readiness waiter
  backed_off_.push_back(c);
}

void epoll_driver::retry_backed_off() noexcept {
  if (backed_off_.empty() || monotonic_ns() < backoff_due_ns_) return;
  intrusive_list<completion> due;
  due.splice_back(backed_off_);
  while (completion* c = due.pop_front()) {
    let_go();
    start(*c);
  }
}

void epoll_driver::start(completion& c) noexcept {
  const op_vtable& ops = *c.ops;
  if (ops.consumes_fd) forget_fd(c.fd);
  if (ops.never_blocks) {
    ++stats_.submitted;
    const int32_t r = ops.perform(c, false);
    finish(c, r, c.cqe_flags);
    return;
  }
  if (ops.poll_events == 0) {
    offload(c);
    return;
  }
  fd_state* s = c.fd >= 0 ? &state_of(c.fd) : nullptr;
  if (s != nullptr && c.reads_to_empty && s->input_empty && !s->reads_always_tried) {
    // Edge-triggered: data arriving after the read that emptied the queue
    // raised an edge, so waiting for it saves a recv that says EAGAIN (one
    // of four system calls per request-response turn). Not once the peer's
    // end or urgent data was seen (reads_always_tried).
    ++stats_.drained_skips;
    await_ready(c, *s);
    return;
  }
  ++stats_.submitted;
  const int32_t r = ops.perform(c, true);
  if (s != nullptr && c.reads_to_empty) s->input_empty = c.emptied;
  if (r == coil::ops::retry_later) {
    back_off(c);
    return;
  }
  if (r != -EAGAIN) {
    deliver_result(c, r);
    return;
  }
  if (s == nullptr || (s->not_pollable && !ops.foreign_fd)) {
    offload(c);
    return;
  }
  await_ready(c, *s);
}

void epoll_driver::await_ready(completion& c, fd_state& s) noexcept {
  if (!s.registered) {
    epoll_event ev{};
    ev.events = fd_events;
    ev.data.u64 = static_cast<uint64_t>(c.fd);
    if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, c.fd, &ev) != 0 && errno != EEXIST) {
      if (errno == EPERM && !c.ops->foreign_fd) {  // regular files and the like never report readiness
        s.not_pollable = true;
        offload(c);
      } else if (errno == EPERM) {
        // A readiness wait on a worker could outlive any cancel: refuse it,
        // as io_uring refuses to poll a file without a wait queue.
        finish(c, -EINVAL, 0);
      } else {
        finish(c, -errno, 0);
      }
      return;
    }
    s.registered = true;
    s.foreign_only = c.ops->foreign_fd;
  } else if (!c.ops->foreign_fd) {
    s.foreign_only = false;
  }
  ++stats_.readiness_waits;
  hold(c);
  s.waiters.push_back(c);
}

void epoll_driver::offload(completion& c) noexcept {
  ++stats_.offloaded;
  hold(c);
  c.on_worker = true;
  c.res = not_started;  // a worker replaces it, under mu_, when done
  bool need_thread = false;
  {
    std::lock_guard lock(mu_);
    queue_.push_back(c);
    need_thread = idle_workers_ == 0 && threads_.size() < max_workers_;
  }
  if (need_thread && !spawn_worker() && threads_.empty()) {
    // Not even one thread: run it here rather than never.
    {
      std::lock_guard lock(mu_);
      c.unlink();
    }
    c.on_worker = false;
    let_go();
    const int32_t r = c.ops->perform(c, false);
    finish(c, r, c.cqe_flags);
    return;
  }
  cv_.notify_one();
}

bool epoll_driver::spawn_worker() noexcept {
  // Workers take no signals: they belong to the application's threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  const int r = pthread_create(&t, nullptr, &worker_main, this);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (r != 0) return false;
  threads_.push_back(t);
  return true;
}

void* epoll_driver::worker_main(void* arg) noexcept {
  auto& d = *static_cast<epoll_driver*>(arg);
  std::unique_lock lock(d.mu_);
  for (;;) {
    ++d.idle_workers_;
    d.cv_.wait(lock, [&] { return d.stopping_ || !d.queue_.empty(); });
    --d.idle_workers_;
    completion* c = d.queue_.pop_front();
    if (c == nullptr) return nullptr;  // stopping and nothing left
    completion** slot = &d.running_.front();
    while (*slot != nullptr) ++slot;  // a free one exists: one per worker
    *slot = c;
    lock.unlock();
    const int32_t res = c->ops->perform(*c, false);
    lock.lock();
    *slot = nullptr;
    c->res = res;
    d.done_.push_back(*c);
    const uint64_t one = 1;
    (void)!::write(d.eventfd_.get(), &one, sizeof one);
  }
}

void epoll_driver::collect_workers() noexcept {
  uint64_t n;
  (void)!::read(eventfd_.get(), &n, sizeof n);
  intrusive_list<completion> got;
  {
    std::lock_guard lock(mu_);
    got.splice_back(done_);
  }
  while (completion* c = got.pop_front()) {
    c->on_worker = false;
    let_go();
    finish(*c, c->res, c->cqe_flags);
  }
}

void epoll_driver::cancel(completion& c) noexcept {
  switch (c.state) {
    case op_state::queued:  // pushed, never tried
      ++stats_.cancels;
      c.unlink();
      finish(c, -ECANCELED, 0);
      return;
    case op_state::in_flight:
      if (c.cancel_requested) return;  // running on a worker; asked before
      ++stats_.cancels;
      if (c.on_worker) {
        // On the worker pool: still in queue_ means it never started; in
        // done_ it has finished, and its result (an fd an open returned)
        // must reach the owner.
        bool removed = false;
        {
          std::lock_guard lock(mu_);
          if (c.linked() && c.res == not_started) {
            c.unlink();
            removed = true;
          }
        }
        if (removed) {
          c.on_worker = false;
          let_go();
          finish(c, -ECANCELED, 0);
        } else {
          c.cancel_requested = true;  // running: its real result will come
        }
        return;
      }
      if (c.cqe_flags & IORING_CQE_F_MORE) {
        c.cancel_requested = true;  // a multishot result waits for its hook (run_hooks)
        return;
      }
      c.unlink();  // waiting for readiness
      let_go();
      finish(c, -ECANCELED, 0);
      if (c.ops->foreign_fd) drop_foreign(c.fd);
      return;
    case op_state::idle:
    case op_state::done:
      return;
  }
}

void epoll_driver::run_pending() noexcept {
  // Ops pushed while running these (none today) wait for the next flush.
  intrusive_list<completion> batch;
  batch.splice_back(pending_);
  while (completion* c = batch.pop_front()) start(*c);
  run_hooks();
}

void epoll_driver::on_ready(int fd, uint32_t events) noexcept {
  if (static_cast<std::size_t>(fd) >= fds_.size() || !fds_[static_cast<std::size_t>(fd)]) return;
  fd_state& s = *fds_[static_cast<std::size_t>(fd)];
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) s.input_empty = false;
  if (events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP | EPOLLPRI)) s.reads_always_tried = true;
  if (s.waiters.empty()) return;
  const bool all = events & (EPOLLERR | EPOLLHUP);
  // Retry in FIFO order; an op that still gets -EAGAIN keeps waiting (the next
  // edge wakes it).
  intrusive_list<completion> retry;
  retry.splice_back(s.waiters);
  while (completion* c = retry.pop_front()) {
    const uint32_t want = c->ops->poll_events | ((c->ops->poll_events & EPOLLIN) ? uint32_t{EPOLLRDHUP} : 0u);
    if (!all && !(events & want)) {
      s.waiters.push_back(*c);
      continue;
    }
    ++stats_.submitted;
    const int32_t r = c->ops->perform(*c, true);
    if (c->reads_to_empty) s.input_empty = c->emptied;
    if (r == -EAGAIN) {
      s.waiters.push_back(*c);
      continue;
    }
    if (r == coil::ops::retry_later) {
      let_go();
      back_off(*c);
      continue;
    }
    let_go();
    deliver_result(*c, r);
  }
  if (s.foreign_only && s.waiters.empty()) drop_foreign(fd);
}

result<void> epoll_driver::poll(int64_t timeout_ns) noexcept {
  epoll_event events[128];
  int n;
  if (!backed_off_.empty()) {
    const int64_t left = std::max<int64_t>(0, backoff_due_ns_ - monotonic_ns());
    timeout_ns = timeout_ns < 0 ? left : std::min(timeout_ns, left);
  }
  if (!deadlines_.empty()) {
    const int64_t now = monotonic_ns();
    deadlines_.for_each([&](completion& c) {
      const int64_t left = std::max<int64_t>(0, static_cast<deadline_completion&>(c).deadline_ns - now);
      timeout_ns = timeout_ns < 0 ? left : std::min(timeout_ns, left);
    });
  }
  ++stats_.enter_calls;
  if (epoll_pwait2_ok_) {
    timespec ts{timeout_ns / 1'000'000'000LL, timeout_ns % 1'000'000'000LL};
    n = ::epoll_pwait2(epfd_.get(), events, 128, timeout_ns < 0 ? nullptr : &ts, nullptr);
    if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
      epoll_pwait2_ok_ = false;  // pre-5.11 kernel or a seccomp profile without it
      return poll(timeout_ns);
    }
  } else {
    // Millisecond resolution: round up so a timer never fires early.
    const int ms = poll_timeout_ms(timeout_ns);
    n = ::epoll_wait(epfd_.get(), events, 128, ms);
  }
  if (n < 0) {
    if (errno == EINTR) return {};
    return fail(errno_code(errno));
  }
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == worker_token) {
      collect_workers();
    } else {
      on_ready(static_cast<int>(events[i].data.u64), events[i].events);
    }
  }
  retry_backed_off();
  expire_deadlines();
  run_hooks();
  return {};
}

result<void> epoll_driver::flush() noexcept {
  run_pending();
  // Readiness and worker results only change while something waits.
  result<void> r = in_flight_ == 0 ? result<void>{} : poll(0);
  check_invariants();
  return r;
}

result<void> epoll_driver::wait(int64_t timeout_ns) noexcept {
  run_pending();
  // Finished ops, or multishot ops requeued by run_pending: do not sleep.
  result<void> r;
  if (!finished_.empty() || !pending_.empty()) {
    r = in_flight_ == 0 ? result<void>{} : poll(0);
  } else {
    r = poll(timeout_ns);
  }
  check_invariants();
  return r;
}

std::size_t epoll_driver::reap(intrusive_list<completion>& out) noexcept {
  std::size_t n = 0;
  while (completion* c = finished_.pop_front()) {
    ++stats_.by_opcode[opcode_slot(c->ops->opcode)].completed;
    if (c->ops->on_cqe != nullptr) {
      c->ops->on_cqe(*c);  // multishot: the owner takes the final result
    } else {
      out.push_back(*c);
    }
    ++n;
  }
  stats_.completed += n;
  check_invariants();
  return n;
}

void epoll_driver::check_invariants() noexcept {
#if COIL_INVARIANTS
  uint32_t held = 0;
  for (std::size_t fd = 0; fd < fds_.size(); ++fd) {
    if (!fds_[fd]) continue;
    const fd_state& s = *fds_[fd];
    COIL_DEBUG_ASSERT(s.waiters.empty() || s.registered, "ops wait for readiness of an fd not in the epoll set");
    COIL_DEBUG_ASSERT(!s.foreign_only || s.registered, "foreign_only on an fd not in the epoll set");
    fds_[fd]->waiters.for_each([&](completion& c) {
      COIL_DEBUG_ASSERT(c.state == op_state::in_flight && !c.on_worker, "a readiness waiter is not in flight");
      COIL_DEBUG_ASSERT(static_cast<std::size_t>(c.fd) == fd, "an op waits on another fd's readiness");
      COIL_DEBUG_ASSERT(!(c.cqe_flags & IORING_CQE_F_MORE), "a readiness waiter holds an undelivered result");
      ++held;
    });
  }
  backed_off_.for_each([&](completion& c) {
    COIL_DEBUG_ASSERT(c.state == op_state::in_flight && !c.on_worker, "a backed-off op is not in flight");
    ++held;
  });
  deadlines_.for_each([&](completion& c) {
    COIL_DEBUG_ASSERT(c.state == op_state::in_flight && !c.on_worker, "a deadline is not in flight");
    ++held;
  });
  held += static_cast<uint32_t>(results_.size());
  {
    // Worker ops are counted, not read: a worker may be writing to them.
    std::lock_guard lock(mu_);
    held += static_cast<uint32_t>(queue_.size() + done_.size());
    for (completion* c : running_) held += c != nullptr;
  }
  COIL_DEBUG_ASSERT(held == in_flight_, "in_flight_ differs from the ops the epoll driver holds");
  COIL_DEBUG_ASSERT(results_.empty(), "multishot results left without their hooks");
  pending_.for_each([](completion& c) {
    COIL_DEBUG_ASSERT(c.state == op_state::queued && !(c.cqe_flags & IORING_CQE_F_MORE), "a pending op is not queued");
  });
  finished_.for_each([](completion& c) {
    COIL_DEBUG_ASSERT(c.state == op_state::done, "a finished op is not done");
  });
#endif
}

void epoll_driver::cancel_and_wait(completion& c, intrusive_list<completion>& out) noexcept {
  detail::cancel_and_drain(*this, c, out);
}

}  // namespace coil
