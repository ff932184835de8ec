// The per-thread AIO context and the two internal tasks that connect it to
// the runtime (see aio_op.hpp).
#include "coil/rt/aio_op.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <utility>

#include "coil/io/ops.hpp"
#include "coil/rt/op.hpp"

namespace coil {
namespace {

struct aio_service {
  std::unique_ptr<aio_driver> drv;
  bool flusher_spawned = false;  // a flusher task is scheduled for the next turn
  bool reaper_alive = false;     // a reaper task exists (it awaits the eventfd)
  bool idle() const noexcept { return !drv->has_pending_work() && !flusher_spawned && !reaper_alive; }
};

// Plain pointers and flags: they stay readable during thread exit, after the
// holder below has destroyed the service.
thread_local aio_service* t_service = nullptr;
thread_local bool t_exiting = false;
thread_local aio_options t_options{};

struct service_holder {
  ~service_holder() {
    // Waits for in-flight requests (aio_driver's destructor).
    delete std::exchange(t_service, nullptr);
    t_exiting = true;
  }
};

// fork() child: AIO contexts are not inherited, so the forking thread's
// context id means nothing there (io_submit: EINVAL). Forget the service so
// the child creates a fresh one; the copy (its requests belong to the
// parent) is leaked, only its eventfd closed.
void forget_service_in_child() noexcept {
  if (aio_service* s = std::exchange(t_service, nullptr)) ::close(s->drv->event_fd());
}

result<aio_service*> service() noexcept {
  if (t_service != nullptr) return t_service;
  if (t_exiting) return fail(errc::runtime_closed);
  static thread_local service_holder holder;  // registers the thread-exit cleanup
  (void)holder;
  static const bool atfork = pthread_atfork(nullptr, nullptr, &forget_service_in_child) == 0;
  (void)atfork;
  auto drv = aio_driver::create(t_options);
  if (!drv) return fail(drv.error());
  t_service = new aio_service{std::move(*drv)};
  return t_service;
}

// Clears one of the service's flags when the task owning it goes away, even
// if its frame is destroyed before it ever ran (a runtime torn down with the
// task still scheduled): a coroutine's parameters live in its frame.
class flag_owner {
 public:
  explicit flag_owner(bool aio_service::*flag) noexcept : flag_(flag) {}
  flag_owner(flag_owner&& o) noexcept : flag_(std::exchange(o.flag_, nullptr)) {}
  flag_owner(const flag_owner&) = delete;
  flag_owner& operator=(const flag_owner&) = delete;
  flag_owner& operator=(flag_owner&&) = delete;
  ~flag_owner() { release(); }
  void release() noexcept {
    if (flag_ != nullptr && t_service != nullptr) t_service->*flag_ = false;
    flag_ = nullptr;
  }

 private:
  bool aio_service::*flag_;
};

// Schedules the owners of finished requests on their runtime. A request of
// a runtime that is gone (its frame leaked) is left done and never resumed.
void dispatch(intrusive_list<aio_completion>& done) noexcept {
  runtime* rt = runtime::current();
  while (aio_completion* c = done.pop_front()) {
    auto* w = static_cast<detail::aio_waiter*>(c);
    if (rt != nullptr && w->rt == rt) rt->schedule(w->node);
  }
}

task<void> reaper_task(flag_owner owner);

// Disconnects the awaiting task from its stop source. The reaper serves every
// task's requests; cancelling it (runtime-wide cancellation) would strand
// requests the kernel still owns with nobody to collect them.
struct ignore_stop {
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<detail::promise<void>> h) noexcept {
    h.promise().stop = nullptr;
    return false;  // carry on without suspending
  }
  void await_resume() const noexcept {}
};

void ensure_reaper(aio_service& s, runtime& rt) noexcept {
  if (s.reaper_alive || s.drv->in_flight() == 0) return;
  s.reaper_alive = true;
  rt.spawn(reaper_task(flag_owner(&aio_service::reaper_alive))).detach();
}

// Exists while the kernel owns requests. The eventfd counts completions;
// reading it first and collecting events second never loses a wakeup, since
// the kernel signals the eventfd after posting each event.
task<void> reaper_task(flag_owner owner) {
  (void)owner;
  co_await ignore_stop{};
  uint64_t count = 0;
  while (t_service != nullptr && t_service->drv->in_flight() > 0) {
    const int efd = t_service->drv->event_fd();
    auto r = co_await op_awaiter<ops::read>(ops::read{efd, &count, sizeof count, ops::current_position});
    aio_service* s = t_service;
    if (s == nullptr) break;
    if (!r && r.error() != std::errc::interrupted && r.error() != std::errc::resource_unavailable_try_again) {
      // The eventfd cannot be read (should not happen): fall back to
      // blocking for one completion, which is slow but never spins.
      (void)s->drv->wait(-1);
    }
    intrusive_list<aio_completion> done;
    s->drv->reap(done);
    s->drv->flush();  // requests that waited for room
    s->drv->take_finished(done);
    dispatch(done);
  }
}

// Runs one turn after the first push of a turn, so everything pushed in that
// turn goes to the kernel in one io_submit.
task<void> flusher_task(flag_owner owner) {
  owner.release();  // pushes from here on need the next turn's flusher
  aio_service* s = t_service;
  if (s == nullptr) co_return;
  s->drv->flush();
  intrusive_list<aio_completion> done;
  s->drv->take_finished(done);
  dispatch(done);
  runtime* rt = runtime::current();
  if (rt != nullptr) ensure_reaper(*s, *rt);
  co_return;
}

void ensure_flusher(aio_service& s, runtime& rt) noexcept {
  if (s.flusher_spawned) return;
  s.flusher_spawned = true;
  rt.spawn(flusher_task(flag_owner(&aio_service::flusher_spawned))).detach();
}

}  // namespace

result<void> configure_thread_aio(const aio_options& opts) noexcept {
  if (opts.capacity == 0) return fail(std::errc::invalid_argument);
  if (t_service != nullptr) {
    if (!t_service->idle()) return fail(std::errc::device_or_resource_busy);
    delete std::exchange(t_service, nullptr);
  }
  t_options = opts;
  t_options.eventfd = true;  // the runtime needs it
  return {};
}

result<aio_driver*> thread_aio_driver() noexcept {
  auto s = service();
  if (!s) return fail(s.error());
  return (*s)->drv.get();
}

namespace detail {

std::error_code aio_submit(runtime& rt, aio_waiter& w) noexcept {
  auto s = service();
  if (!s) return s.error();
  (*s)->drv->push(w);
  ensure_flusher(**s, rt);
  return {};
}

void aio_cancel(aio_waiter& w) noexcept {
  aio_service* s = t_service;
  if (s == nullptr) return;
  s->drv->cancel(w);
  // A request cancelled while queued is finished now; the flusher hands it back.
  if (w.state == aio_state::done && w.rt != nullptr) ensure_flusher(*s, *w.rt);
}

std::size_t aio_pending_ops(const runtime& rt, std::span<pending_op_info> out, uint32_t now_ms) noexcept {
  aio_service* s = t_service;
  if (s == nullptr) return 0;
  std::size_t n = 0;
  s->drv->for_each_pending([&](aio_completion& c, bool in_flight) {
    const auto& w = static_cast<const aio_waiter&>(c);  // the runtime pushes only these
    if (w.rt != &rt) return;
    if (n < out.size()) {
      pending_op_info& i = out[n];
      i.opcode = aio_uring_opcode(w.cb.opcode);
      i.fd = static_cast<int32_t>(w.cb.fildes);
      i.in_flight = in_flight;
      i.task = w.stop_src != nullptr ? w.stop_src->name() : nullptr;
      i.age_ms = now_ms - w.since_ms;
    }
    ++n;
  });
  return n;
}

void aio_cancel_and_wait(aio_waiter& w) noexcept {
  aio_service* s = t_service;
  if (s == nullptr) return;  // the context already waited for everything
  intrusive_list<aio_completion> others;
  s->drv->cancel_and_wait(w, others);
  dispatch(others);
}

}  // namespace detail
}  // namespace coil
