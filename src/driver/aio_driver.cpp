#include "coil/io/aio_driver.hpp"

#include <linux/aio_abi.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

#include "coil/core/assert.hpp"
#include "coil/io/op_state.hpp"

namespace coil {

// The mirrors in the header must match the kernel ABI field for field.
static_assert(sizeof(aio_iocb) == sizeof(struct iocb));
static_assert(offsetof(aio_iocb, data) == offsetof(struct iocb, aio_data));
static_assert(offsetof(aio_iocb, key) == offsetof(struct iocb, aio_key));
static_assert(offsetof(aio_iocb, rw_flags) == offsetof(struct iocb, aio_rw_flags));
static_assert(offsetof(aio_iocb, opcode) == offsetof(struct iocb, aio_lio_opcode));
static_assert(offsetof(aio_iocb, reqprio) == offsetof(struct iocb, aio_reqprio));
static_assert(offsetof(aio_iocb, fildes) == offsetof(struct iocb, aio_fildes));
static_assert(offsetof(aio_iocb, buf) == offsetof(struct iocb, aio_buf));
static_assert(offsetof(aio_iocb, nbytes) == offsetof(struct iocb, aio_nbytes));
static_assert(offsetof(aio_iocb, offset) == offsetof(struct iocb, aio_offset));
static_assert(offsetof(aio_iocb, flags) == offsetof(struct iocb, aio_flags));
static_assert(offsetof(aio_iocb, resfd) == offsetof(struct iocb, aio_resfd));
static_assert(sizeof(aio_event) == sizeof(struct io_event));
static_assert(offsetof(aio_event, res) == offsetof(struct io_event, res));

namespace {

long sys_io_setup(unsigned nr, aio_context_t* ctx) noexcept { return ::syscall(SYS_io_setup, nr, ctx); }
long sys_io_destroy(aio_context_t ctx) noexcept { return ::syscall(SYS_io_destroy, ctx); }
long sys_io_submit(aio_context_t ctx, long nr, aio_iocb** iocbs) noexcept {
  return ::syscall(SYS_io_submit, ctx, nr, iocbs);
}
long sys_io_getevents(aio_context_t ctx, long min_nr, long nr, aio_event* events, timespec* timeout) noexcept {
  return ::syscall(SYS_io_getevents, ctx, min_nr, nr, events, timeout);
}
long sys_io_cancel(aio_context_t ctx, aio_iocb* iocb, aio_event* result) noexcept {
  return ::syscall(SYS_io_cancel, ctx, iocb, result);
}

int32_t rw_flags_for(write_sync s) noexcept {
  switch (s) {
    case write_sync::none: return 0;
    case write_sync::dsync: return RWF_DSYNC;
    case write_sync::sync: return RWF_SYNC;
  }
  return 0;
}

void prep_rw(aio_iocb& cb, uint16_t opcode, int fd, uint64_t buf, uint64_t nbytes, uint64_t offset) noexcept {
  cb = aio_iocb{};
  cb.opcode = opcode;
  cb.fildes = static_cast<uint32_t>(fd);
  cb.buf = buf;
  cb.nbytes = nbytes;
  cb.offset = static_cast<int64_t>(offset);
}

}  // namespace

void aio_prep_read(aio_iocb& cb, int fd, void* buf, std::size_t len, uint64_t offset) noexcept {
  prep_rw(cb, IOCB_CMD_PREAD, fd, reinterpret_cast<uintptr_t>(buf), len, offset);
}

void aio_prep_write(aio_iocb& cb, int fd, const void* buf, std::size_t len, uint64_t offset, write_sync sync) noexcept {
  prep_rw(cb, IOCB_CMD_PWRITE, fd, reinterpret_cast<uintptr_t>(buf), len, offset);
  cb.rw_flags = rw_flags_for(sync);
}

void aio_prep_readv(aio_iocb& cb, int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset) noexcept {
  prep_rw(cb, IOCB_CMD_PREADV, fd, reinterpret_cast<uintptr_t>(iov), iovcnt, offset);
}

void aio_prep_writev(aio_iocb& cb, int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset,
                     write_sync sync) noexcept {
  prep_rw(cb, IOCB_CMD_PWRITEV, fd, reinterpret_cast<uintptr_t>(iov), iovcnt, offset);
  cb.rw_flags = rw_flags_for(sync);
}

void aio_prep_fsync(aio_iocb& cb, int fd, bool datasync) noexcept {
  // The kernel insists buf, nbytes, offset and rw_flags are all zero.
  prep_rw(cb, datasync ? IOCB_CMD_FDSYNC : IOCB_CMD_FSYNC, fd, 0, 0, 0);
}

result<std::unique_ptr<aio_driver>> aio_driver::create(const aio_options& opts) {
  if (opts.capacity == 0) return fail(std::errc::invalid_argument);
  std::unique_ptr<aio_driver> d(new aio_driver());
  if (opts.eventfd) {
    d->efd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!d->efd_) return fail(errno_code(errno));
  }
  aio_context_t ctx = 0;
  // EAGAIN here means fs.aio-max-nr is exhausted system-wide.
  if (sys_io_setup(opts.capacity, &ctx) < 0) return fail(errno_code(errno));
  d->ctx_ = ctx;
  d->capacity_ = opts.capacity;
  d->submit_batch_ = opts.submit_batch;
  d->iocbs_.resize(opts.capacity);
  d->free_.resize(opts.capacity);
  for (uint32_t i = 0; i < opts.capacity; ++i) d->free_[i] = opts.capacity - 1 - i;  // slot 0 first
  d->batch_.resize(opts.capacity);
  d->staged_.resize(opts.capacity);
  d->events_.resize(opts.capacity);
  return d;
}

aio_driver::~aio_driver() {
  if (ctx_ == 0) return;
  while (completion* c = waiting_.pop_front()) {
    c->res = -ECANCELED;
    detail::set_state(*c, op_state::done);
  }
  finished_.clear();
  // The kernel may still be writing into these requests' buffers: wait.
  intrusive_list<completion> late;
  while (in_flight_ > 0) {
    const long r = get_events(1, -1, late);
    late.clear();
    if (r < 0 && r != -EINTR) break;  // io_destroy below waits for the rest too
  }
  (void)sys_io_destroy(ctx_);
  submitted_.clear();
}

void aio_driver::push(completion& c) noexcept {
  COIL_ASSERT(c.state == op_state::idle && !c.linked(), "operation pushed twice (already pending)");
  COIL_ASSERT(c.ops != nullptr && c.ops->prep_iocb != nullptr, "operation has no AIO form (op_vtable::prep_iocb)");
  c.res = 0;
  c.cqe_flags = 0;
  c.cancel_requested = c.cancel_issued = false;
  detail::set_state(c, op_state::queued);
  waiting_.push_back(c);
  ++stats_.pushed;
  if (submit_batch_ != 0 && ++unflushed_ >= submit_batch_) flush();
}

void aio_driver::fail_front(int32_t res) noexcept {
  completion* c = waiting_.pop_front();
  c->res = res;
  detail::set_state(*c, op_state::done);
  finished_.push_back(*c);
}

void aio_driver::free_slot(aio_iocb& cb) noexcept {
  cb.data = 0;  // slot_of must not find a finished request here
  free_.push_back(static_cast<uint32_t>(&cb - iocbs_.data()));
}

aio_iocb* aio_driver::slot_of(const completion& c) noexcept {
  // Only for io_cancel, which is rare: a walk instead of a field per op.
  for (aio_iocb& cb : iocbs_) {
    if (cb.data == reinterpret_cast<uintptr_t>(&c)) return &cb;
  }
  return nullptr;
}

void aio_driver::flush() noexcept {
  unflushed_ = 0;
  while (!waiting_.empty() && in_flight_ < capacity_) {
    const uint32_t room = capacity_ - in_flight_;
    uint32_t n = 0;
    while (n < room) {
      completion* c = waiting_.pop_front();
      if (c == nullptr) break;
      aio_iocb& cb = iocbs_[free_.back()];
      free_.pop_back();
      c->ops->prep_iocb(*c, cb);
      cb.data = reinterpret_cast<uintptr_t>(c);
      if (efd_) {
        cb.flags |= IOCB_FLAG_RESFD;
        cb.resfd = static_cast<uint32_t>(efd_.get());
      }
      staged_[n] = c;
      batch_[n] = &cb;
      ++n;
    }
    const long r = sys_io_submit(ctx_, n, batch_.data());
    const int err = r < 0 ? errno : 0;
    ++stats_.submit_calls;
    const uint32_t taken = r > 0 ? static_cast<uint32_t>(r) : 0;
    for (uint32_t i = 0; i < taken; ++i) {
      detail::set_state(*staged_[i], op_state::in_flight);
      submitted_.push_back(*staged_[i]);
    }
    in_flight_ += taken;
    stats_.submitted += taken;
    if (in_flight_ > stats_.in_flight_max) stats_.in_flight_max = in_flight_;
    if (taken == n) continue;
    // Put the tail back at the front, in order; its slots are filled again
    // at the next attempt.
    intrusive_list<completion> rest;
    for (uint32_t i = taken; i < n; ++i) {
      free_slot(*batch_[i]);
      rest.push_back(*staged_[i]);
    }
    rest.splice_back(waiting_);
    waiting_.splice_back(rest);
    if (r >= 0) {
      // The kernel stopped at a request it rejects (or ran short of
      // resources); the next call reports which.
      ++stats_.partial_submits;
      continue;
    }
    if (err == EAGAIN) {
      ++stats_.eagain;
      // Backpressure: completions will free kernel resources; retrying now
      // would only spin. With nothing in flight nothing would ever free
      // them, so the request fails instead of waiting forever.
      if (in_flight_ > 0) break;
      fail_front(-EAGAIN);
      continue;
    }
    if (err == EINTR) continue;
    // The first request offered is the one the kernel rejected (EBADF,
    // EINVAL for an unsupported fsync or bad flags, EFAULT...).
    fail_front(-err);
  }
  if (!waiting_.empty()) ++stats_.queued_for_space;
  check_invariants();
}

long aio_driver::get_events(long min_nr, int64_t timeout_ns, intrusive_list<completion>& out) noexcept {
  timespec ts{};
  timespec* tp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1'000'000'000;
    ts.tv_nsec = timeout_ns % 1'000'000'000;
    tp = &ts;
  }
  ++stats_.getevents_calls;
  const long r = sys_io_getevents(ctx_, min_nr, static_cast<long>(events_.size()), events_.data(), tp);
  if (r < 0) return -errno;
  for (long i = 0; i < r; ++i) {
    auto* c = reinterpret_cast<completion*>(static_cast<uintptr_t>(events_[i].data));
    free_slot(*reinterpret_cast<aio_iocb*>(static_cast<uintptr_t>(events_[i].obj)));
    // Transfers are capped below 2 GiB (0x7ffff000), so the result fits.
    c->res = static_cast<int32_t>(events_[i].res);
    detail::set_state(*c, op_state::done);
    c->unlink();  // from submitted_
    out.push_back(*c);
  }
  in_flight_ -= static_cast<uint32_t>(r);
  stats_.completed += static_cast<uint64_t>(r);
  check_invariants();
  return r;
}

result<void> aio_driver::wait(int64_t timeout_ns) noexcept {
  flush();
  if (!finished_.empty() || in_flight_ == 0) return {};
  // A timeout returns 0 and a signal EINTR: neither is an error.
  const long r = get_events(1, timeout_ns, finished_);
  if (r < 0 && r != -EINTR) return fail(errno_code(static_cast<int>(-r)));
  return {};
}

std::size_t aio_driver::take_finished(intrusive_list<completion>& out) noexcept {
  std::size_t n = 0;
  while (completion* c = finished_.pop_front()) {
    out.push_back(*c);
    ++n;
  }
  return n;
}

std::size_t aio_driver::reap(intrusive_list<completion>& out) noexcept {
  std::size_t n = take_finished(out);
  while (in_flight_ > 0) {
    const long got = get_events(0, 0, out);
    if (got <= 0) break;
    n += static_cast<std::size_t>(got);
    if (static_cast<std::size_t>(got) < events_.size()) break;
  }
  return n;
}

void aio_driver::cancel(completion& c) noexcept {
  if (c.state == op_state::queued) {
    c.unlink();
    c.res = -ECANCELED;
    detail::set_state(c, op_state::done);
    finished_.push_back(c);
    return;
  }
  if (c.state != op_state::in_flight || c.cancel_issued) return;
  aio_iocb* cb = slot_of(c);
  if (cb == nullptr) return;
  c.cancel_requested = c.cancel_issued = true;  // io_cancel is asked once
  aio_event ev{};
  // Kernels before 4.19 could return 0 and hand the event back here instead
  // of through the ring; newer ones say EINPROGRESS (or EINVAL: regular
  // files cannot cancel) and the event arrives normally.
  if (sys_io_cancel(ctx_, cb, &ev) == 0) {
    free_slot(*cb);
    c.res = static_cast<int32_t>(ev.res);
    detail::set_state(c, op_state::done);
    c.unlink();  // from submitted_
    --in_flight_;
    ++stats_.completed;
    finished_.push_back(c);
    check_invariants();
  }
}

void aio_driver::cancel_and_wait(completion& c, intrusive_list<completion>& out) noexcept {
  cancel(c);
  while (c.state == op_state::in_flight) {
    const long r = get_events(1, -1, out);
    // Giving up here would let the kernel write into memory about to be
    // freed; only EINTR is expected.
    COIL_ASSERT(r >= 0 || r == -EINTR, "io_getevents failed while waiting for a request to let go of its buffer");
  }
  c.unlink();  // out of finished_ or out
}

}  // namespace coil
