#include "coil/rt/runtime.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/rt/block.hpp"

namespace coil {
namespace detail {
constinit thread_local runtime* current_runtime = nullptr;
}
using detail::current_runtime;

namespace {

// block()'s private runtime; released before it is deleted, so closes made
// while it goes down do not reach it.
struct blocking_holder {
  runtime* rt = nullptr;
  ~blocking_holder() { delete std::exchange(rt, nullptr); }
};
thread_local blocking_holder blocking_rt;

// fork() without exec: the child's copy of the parent's runtimes (current or
// block()'s) shares the parent's ring memory and must never be driven (or
// destroyed: that would cancel the parent's operations). The child forgets
// them and may create its own; the copies are leaked on purpose.
void forget_runtime_in_child() noexcept {
  current_runtime = nullptr;
  blocking_rt.rt = nullptr;
}
const int atfork_registered = pthread_atfork(nullptr, nullptr, &forget_runtime_in_child);

// Installed as detail::fd_closing_hook by the first runtime::create.
void forget_closing_fd(int fd) noexcept {
  if (current_runtime != nullptr) {
    current_runtime->driver().forget_fd(fd);
    current_runtime->forget_inline_read(fd);
  }
  // A file or socket used through block() may be closed outside it: the
  // private runtime's readiness state must not outlive the number.
  if (runtime* p = blocking_rt.rt; p != nullptr && p != current_runtime) {
    p->driver().forget_fd(fd);
    p->forget_inline_read(fd);
  }
}
}

result<std::unique_ptr<runtime>> runtime::create(const runtime_options& opts) {
  COIL_ASSERT(current_runtime == nullptr, "this thread already owns a coil runtime (one per thread)");
  detail::fd_closing_hook.store(&forget_closing_fd, std::memory_order_relaxed);
  driver_options dopts;
  dopts.kind = opts.driver;
  dopts.strict = opts.strict_driver;
  dopts.uring = opts.uring;
  dopts.epoll = opts.epoll;
  dopts.aio = opts.aio;
  dopts.faults = opts.faults;
  auto drv = driver::create(dopts);
  if (!drv) return fail(drv.error());
  timespec probe;
  if (clock_gettime(opts.clock, &probe) != 0) return fail(errno_code(errno));
  std::unique_ptr<runtime> rt(new runtime());
  rt->driver_ = std::move(*drv);
  rt->owner_ = std::this_thread::get_id();
  rt->clock_ = opts.clock;
  rt->timers_.reserve(64);
  // Fault injection must see every read, as it sees every eager send.
  if (opts.uring.inline_reads && rt->driver_->kind() == driver_kind::uring && rt->driver_->faults() == nullptr) {
    rt->inline_budget_turn_ = rt->inline_budget_ = opts.uring.inline_read_budget;
  }
  if (opts.remote) {
    if (auto r = rt->enable_remote(); !r) return fail(r.error());
  }
  current_runtime = rt.get();
  return rt;
}


runtime* detail::blocking_runtime(std::error_code& ec) noexcept {
  if (blocking_rt.rt == nullptr) {
    auto rt = runtime::create();  // makes itself current
    current_runtime = nullptr;    // current only inside block()
    if (!rt) {
      ec = rt.error();
      return nullptr;
    }
    blocking_rt.rt = rt->release();
  }
  return blocking_rt.rt;
}

runtime::~runtime() {
  COIL_ASSERT(on_owner_thread(), "a runtime must be destroyed on the thread that owns it");
  closing_ = true;
  // Tear down unfinished spawned tasks. Destroying a frame suspended in an
  // operation cancels it and waits for the kernel to let go of its memory.
  destroy_spawned();
  if (wake_fd_ >= 0) {
    // Posts still queued run now (they see accepting() == false and answer
    // runtime_closed); the wake read must leave the kernel before its buffer.
    run_remote();
    driver_->cancel_and_wait(*wake_read_, reaped_);
    while (posters_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    ::close(wake_fd_);
  }
  if (embed_epfd_ >= 0) ::close(embed_epfd_);
  if (embed_timerfd_ >= 0) ::close(embed_timerfd_);
  reaped_.clear();
  ready_.clear();
  for (detail::timer_node* t : timers_) t->heap_index = detail::timer_node::not_armed;
  timers_.clear();
  if (current_runtime == this) current_runtime = nullptr;
  driver_.reset();
}

void runtime::destroy_spawned() {
  while (list_hook* h = spawned_.pop_front()) {
    auto* link = static_cast<detail::spawn_link*>(h);
    if (link->handle_owner != nullptr) link->orphan(link->handle_owner);
    std::coroutine_handle<> frame = link->start.handle;
    delete link;
    frame.destroy();
  }
}

void runtime::track_spawned(list_hook& h) noexcept { spawned_.push_back(h); }

void runtime::cancel_all() noexcept {
  COIL_ASSERT(on_owner_thread(), "runtime::cancel_all called from a thread that does not own the runtime");
  if (root_stop_ != nullptr) root_stop_->request_stop();
  spawned_.for_each([](list_hook& h) { static_cast<detail::spawn_link&>(h).stop.request_stop(); });
}

// ---- cross-thread posts --------------------------------------------------------

result<void> runtime::enable_remote() noexcept {
  COIL_ASSERT(on_owner_thread(), "runtime::enable_remote called from a thread that does not own the runtime");
  if (wake_fd_ >= 0) return {};
  // Blocking eventfd: io_uring waits on it by poll, epoll by readiness.
  const int fd = ::eventfd(0, EFD_CLOEXEC);
  if (fd < 0) return fail(errno_code(errno));
  wake_read_ = std::make_unique<op_completion<ops::read>>(ops::read{fd, &wake_buf_, sizeof wake_buf_, ops::current_position});
  wake_fd_ = fd;
  arm_wake();
  return {};
}

void runtime::post(detail::remote_node& n) noexcept {
  COIL_ASSERT(wake_fd_ >= 0, "runtime::post needs runtime_options::remote");
  posters_.fetch_add(1, std::memory_order_relaxed);  // the runtime is alive: n is not visible yet
  n.next = remote_head_.load(std::memory_order_relaxed);
  while (!remote_head_.compare_exchange_weak(n.next, &n, std::memory_order_seq_cst, std::memory_order_relaxed)) {
  }
  // Pairs with the owner's parked_ store then remote_head_ load: one of the
  // two sides sees the other, so a post is never left unnoticed.
  if (parked_.load(std::memory_order_seq_cst) && !wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
  posters_.fetch_sub(1, std::memory_order_release);
}

bool runtime::run_remote() noexcept {
  // A plain load first: the common "nothing posted" turn stays a read of a
  // cache line the owner already holds, not a read-modify-write.
  if (remote_head_.load(std::memory_order_relaxed) == nullptr) return false;
  detail::remote_node* n = remote_head_.exchange(nullptr, std::memory_order_acquire);
  if (n == nullptr) return false;
  detail::remote_node* fifo = nullptr;  // the stack holds newest first
  while (n != nullptr) {
    detail::remote_node* next = n->next;
    n->next = fifo;
    fifo = n;
    n = next;
  }
  while (fifo != nullptr) {
    detail::remote_node* next = fifo->next;
    ++stats_.remote_runs;
    fifo->run(*fifo);  // may free fifo (it belongs to the poster)
    fifo = next;
  }
  return true;
}

void runtime::remote_pause() noexcept {
  // Rare path (a task torn down mid-call): poll politely rather than take
  // over the armed wake read.
  timespec ts{0, 200'000};
  nanosleep(&ts, nullptr);
}

void runtime::arm_wake() noexcept {
  wake_read_->state = op_state::idle;
  driver_->push_io(*wake_read_);
}

int64_t runtime::now_ns() const noexcept {
  timespec ts;
  clock_gettime(clock_, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

runtime_stats runtime::stats() const noexcept {
  runtime_stats s = stats_;
  s.io = driver_->stats();
  return s;
}

// ---- diagnostics ----------------------------------------------------------------

std::size_t runtime::pending_ops(std::span<pending_op_info> out) noexcept {
  COIL_ASSERT(on_owner_thread(), "runtime::pending_ops called from a thread that does not own the runtime");
  const uint32_t now = coarse_clock_ms();
  std::size_t n = 0;
  auto add = [&](completion& c, bool in_flight) {
    if (n < out.size()) {
      pending_op_info& i = out[n];
      i.opcode = c.ops->opcode;
      i.fd = c.fd;
      i.in_flight = in_flight;
      i.task = nullptr;
      i.age_ms = pending_op_info::unknown_age;
      if (c.ops->owner != nullptr) {
        uint32_t since = 0;
        c.ops->owner(c, i.task, since);
        i.age_ms = now - since;
      }
    }
    ++n;
  };
  driver_->for_each_pending(add);
  return n;
}

void runtime::dump_in_flight(std::FILE* out) noexcept {
  pending_op_info ops[256];  // on the stack: dumping must work when memory is short
  const std::size_t n = pending_ops(ops);
  std::fprintf(out, "coil: %zu operations pending (%s driver)\n", n, to_string(driver_->kind()));
  for (std::size_t i = 0; i < n && i < std::size(ops); ++i) {
    const pending_op_info& o = ops[i];
    char age[24] = "age ?";  // the owner keeps no stamp (a multishot stream, a bare completion)
    if (o.age_ms != pending_op_info::unknown_age) std::snprintf(age, sizeof age, "age %u ms", o.age_ms);
    std::fprintf(out, "  %-14s fd %-5d %-9s %s%s%s%s\n", opcode_name(o.opcode), o.fd, o.in_flight ? "in flight" : "queued",
                 age, o.task ? "  task \"" : "", o.task ? o.task : "", o.task ? "\"" : "");
  }
  if (n > std::size(ops)) std::fprintf(out, "  ... and %zu more\n", n - std::size(ops));
}

// ---- inline reads -----------------------------------------------------------------

bool runtime::inline_read_adopt(inline_read_slot& s, int fd) noexcept {
  s = inline_read_slot{};
  s.fd = fd;
  // A RWF_NOWAIT read of an O_DIRECT file still waits for the device.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_DIRECT)) s.skip = inline_never;
  return s.skip == 0;
}

void runtime::inline_read_missed(int fd, int32_t r) noexcept {
  inline_read_slot& s = inline_slots_[static_cast<unsigned>(fd) % inline_slot_count];
  if (r == -EAGAIN) {
    // Not in the page cache: after a few misses in a row the file looks
    // cold, and its reads go straight to the ring for a while.
    if (++s.misses >= inline_max_misses) {
      s.misses = 0;
      s.skip = inline_pause;
    }
  } else if (r != -EINTR) {
    s.skip = inline_never;  // no RWF_NOWAIT here (EOPNOTSUPP, EINVAL), or not a file (ESPIPE)
  }
}

// ---- timers: binary min-heap of frame-resident nodes -------------------------

void runtime::timer_swap(std::size_t a, std::size_t b) noexcept {
  std::swap(timers_[a], timers_[b]);
  timers_[a]->heap_index = a;
  timers_[b]->heap_index = b;
}

void runtime::timer_sift_up(std::size_t i) noexcept {
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (timers_[parent]->deadline_ns <= timers_[i]->deadline_ns) return;
    timer_swap(i, parent);
    i = parent;
  }
}

void runtime::timer_sift_down(std::size_t i) noexcept {
  const std::size_t n = timers_.size();
  for (;;) {
    std::size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && timers_[l]->deadline_ns < timers_[m]->deadline_ns) m = l;
    if (r < n && timers_[r]->deadline_ns < timers_[m]->deadline_ns) m = r;
    if (m == i) return;
    timer_swap(i, m);
    i = m;
  }
}

void runtime::add_timer(detail::timer_node& t) noexcept {
  COIL_ASSERT(t.heap_index == detail::timer_node::not_armed, "timer armed twice");
  t.heap_index = timers_.size();
  timers_.push_back(&t);  // amortized: capacity is kept between turns
  timer_sift_up(t.heap_index);
}

void runtime::remove_timer(detail::timer_node& t) noexcept {
  const std::size_t i = t.heap_index;
  if (i == detail::timer_node::not_armed) return;
  const std::size_t last = timers_.size() - 1;
  if (i != last) timer_swap(i, last);
  timers_.pop_back();
  t.heap_index = detail::timer_node::not_armed;
  if (i != last) {
    timer_sift_down(i);
    timer_sift_up(i);
  }
}

void runtime::fire_timers() {
  turn_now_ns_ = -1;
  if (timers_.empty()) return;
  const int64_t now = now_ns();
  turn_now_ns_ = now;
  while (!timers_.empty() && timers_.front()->deadline_ns <= now) {
    detail::timer_node* t = timers_.front();
    remove_timer(*t);
    ++stats_.timers_fired;
    schedule(*t);
  }
}

// ---- the loop ----------------------------------------------------------------

void runtime::run_ready() {
  // Completions first: they free kernel slots and usually unblock the most.
  // Work scheduled while running waits for the next turn, so one busy task
  // cannot starve I/O.
  turn_done_.splice_back(reaped_);
  while (completion* c = turn_done_.pop_front()) resume_completion(*c);
  turn_ready_.splice_back(ready_);
  while (detail::ready_node* n = turn_ready_.pop_front()) n->handle.resume();
}

inline void runtime::resume_completion(completion& c) noexcept {
  if (&c == wake_read_.get()) [[unlikely]] {
    ++stats_.wakeups;
    wake_pending_.store(false, std::memory_order_release);
    arm_wake();  // also while closing: posts must still wake a parked loop (the destructor cancels it)
    return;
  }
  static_cast<detail::rt_completion&>(c).waiter.resume();
}

void runtime::resume_reaped(completion& c, void* self, bool more) noexcept {
  auto& rt = *static_cast<runtime*>(self);
  // The rest of the walk is ready work: an op awaited now joins the batch.
  rt.walk_more_ = more;
  rt.resume_completion(c);
}

// ---- the loop turn -------------------------------------------------------------

// Inlined into each loop: with one operation in flight every turn is a park,
// and a call per turn shows (docs/performance.md, "Loop turn").
[[gnu::always_inline]] inline bool runtime::turn() {
  ++stats_.loop_turns;
  stamp_stale_ = true;
  inline_budget_ = inline_budget_turn_;
  run_ready();
  fire_timers();
  if (wake_fd_ >= 0 && run_remote()) turn_now_ns_ = -1;  // posts ran user code: the clock read is old
  return !ready_.empty() || !reaped_.empty();
}

[[gnu::always_inline]] inline int64_t runtime::park_timeout(int64_t limit_ns) const noexcept {
  if (timers_.empty()) return limit_ns;
  // The turn's clock read when it is fresh: only expired timers were
  // scheduled since, no user code ran.
  const int64_t now = turn_now_ns_ >= 0 ? turn_now_ns_ : now_ns();
  const int64_t t = std::max<int64_t>(0, timers_.front()->deadline_ns - now);
  return limit_ns < 0 ? t : std::min(t, limit_ns);
}

// ---- shutdown -----------------------------------------------------------------

result<void> runtime::shutdown(duration_ns grace) noexcept {
  COIL_ASSERT(on_owner_thread(), "runtime::shutdown called from a thread that does not own the runtime");
  COIL_ASSERT(!running_, "runtime::shutdown called from inside the runtime (call it after block_on returns)");
  closing_ = true;
  cancel_all();
  const int64_t deadline = detail::saturating_add(now_ns(), grace.ns);
  running_ = true;
  for (;;) {
    (void)turn();
    (void)driver_->flush();
    driver_->reap(reaped_);
    if (spawned_.empty() && ready_.empty() && reaped_.empty()) break;
    const int64_t now = now_ns();
    if (now >= deadline) break;
    if (!ready_.empty() || !reaped_.empty()) continue;
    (void)park(park_timeout(deadline - now));
  }
  running_ = false;
  if (spawned_.empty()) return {};
  destroy_spawned();  // frames still running past the grace: cancel and await their I/O
  return fail(std::errc::timed_out);
}

// ---- embedding --------------------------------------------------------------

result<int> runtime::embed_fd() noexcept {
  COIL_ASSERT(on_owner_thread(), "runtime::embed_fd called from a thread that does not own the runtime");
  if (embed_epfd_ >= 0) return embed_epfd_;
  auto io_fd = driver_->notify_fd();
  if (!io_fd) return fail(io_fd.error());
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return fail(errno_code(errno));
  const int tfd = ::timerfd_create(clock_, TFD_CLOEXEC | TFD_NONBLOCK);
  if (tfd < 0) {
    const int e = errno;
    ::close(ep);
    return fail(errno_code(e));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, *io_fd, &ev) != 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) != 0) {
    const int e = errno;
    ::close(ep);
    ::close(tfd);
    return fail(errno_code(e));
  }
  embed_epfd_ = ep;
  embed_timerfd_ = tfd;
  if (driver_->kind() == driver_kind::uring) embed_iofd_ = *io_fd;  // an eventfd poll_once clears
  return embed_epfd_;
}

int64_t runtime::poll_once() noexcept {
  COIL_ASSERT(on_owner_thread(), "runtime::poll_once called from a thread that does not own the runtime");
  COIL_ASSERT(!running_, "runtime::poll_once called from inside the runtime");
  running_ = true;
  (void)turn();
  if (embed_iofd_ >= 0) {
    uint64_t n;
    (void)!::read(embed_iofd_, &n, sizeof n);  // cleared before reaping: later completions signal again
  }
  (void)driver_->flush();
  driver_->reap(reaped_);
  running_ = false;
  if (embed_timerfd_ >= 0) {
    uint64_t expirations;
    if (::read(embed_timerfd_, &expirations, sizeof expirations) > 0) embed_armed_ns_ = -1;  // fired: re-arm next
  }
  if (!ready_.empty() || !reaped_.empty()) return 0;
  if (timers_.empty()) return -1;
  const int64_t deadline = timers_.front()->deadline_ns;
  if (embed_timerfd_ >= 0 && deadline != embed_armed_ns_) {
    // Absolute, in the runtime's clock: a late poll_once never sees it early.
    itimerspec its{};
    its.it_value.tv_sec = deadline / 1'000'000'000LL;
    its.it_value.tv_nsec = deadline % 1'000'000'000LL;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;  // 0 would disarm
    (void)::timerfd_settime(embed_timerfd_, TFD_TIMER_ABSTIME, &its, nullptr);
    embed_armed_ns_ = deadline;
  }
  return std::max<int64_t>(0, deadline - now_ns());
}

bool runtime::run_until(const bool& done) {
  while (!done) {
    const bool more = turn();
    if (done) break;
    if (more) {
      (void)driver_->flush();
      driver_->reap(reaped_);
      continue;
    }
    const int64_t timeout_ns = park_timeout(-1);
    if (timeout_ns < 0 && !driver_->has_pending_work()) return false;  // nothing can ever wake us
    auto r = park(timeout_ns);
    if (!r) detail::assert_fail("driver wait", r.error().message().c_str(), __FILE__, __LINE__);
  }
  return true;
}

result<void> runtime::park(int64_t timeout_ns) noexcept {
  if (wake_fd_ >= 0) {
    parked_.store(true, std::memory_order_seq_cst);
    // Pairs with post()'s push then parked_ load: a post made before this
    // store is seen here, one made after it writes the eventfd.
    if (remote_head_.load(std::memory_order_seq_cst) != nullptr) {
      parked_.store(false, std::memory_order_relaxed);
      return {};
    }
  }
  ++stats_.parks;
  auto r = driver_->wait(timeout_ns);
  parked_.store(false, std::memory_order_relaxed);
  if (r) {
    stamp_stale_ = true;  // ops awaited in the walk are stamped after the park
    // Owners of what the CQ holds resume from the walk itself, not through
    // reaped_ and the next turn. The depth stays one: resume_reaped is
    // only called from here, never from inside a coroutine.
    driver_->reap(reaped_, &resume_reaped, this);
    walk_more_ = false;
  }
  return r;
}

}  // namespace coil
