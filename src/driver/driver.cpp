#include "coil/io/driver.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "coil/io/op_state.hpp"

namespace coil {
namespace {

// -1 when the sysctl does not exist (kernels before 6.6) or is unreadable.
int io_uring_disabled_sysctl() noexcept {
  std::FILE* f = std::fopen("/proc/sys/kernel/io_uring_disabled", "re");
  if (f == nullptr) return -1;
  int v = -1;
  if (std::fscanf(f, "%d", &v) != 1) v = -1;
  std::fclose(f);
  return v;
}

void report_fallback(const std::error_code& why) noexcept {
  static std::once_flag once;
  std::call_once(once, [&] {
    const int sysctl = io_uring_disabled_sysctl();
    if (sysctl >= 0) {
      std::fprintf(stderr, "coil: io_uring unavailable (%s; kernel.io_uring_disabled=%d), using the epoll driver\n",
                   why.message().c_str(), sysctl);
    } else {
      std::fprintf(stderr, "coil: io_uring unavailable (%s), using the epoll driver\n", why.message().c_str());
    }
  });
}

// The options' faults, else COIL_FAULTS.
result<fault_options> faults_from(const driver_options& opts) {
  if (opts.faults.enabled) return opts.faults;
  const char* env = std::getenv("COIL_FAULTS");
  if (env == nullptr || *env == '\0') return fault_options{};
  std::string why;
  auto f = parse_fault_spec(env, &why);
  if (!f) std::fprintf(stderr, "coil: bad COIL_FAULTS=%s: %s\n", env, why.c_str());
  return f;
}

}  // namespace

driver::~driver() {
  if (aio_notify_ && (aio_notify_->state == op_state::queued || aio_notify_->state == op_state::in_flight)) {
    // The read must leave the kernel before its buffer and the eventfd go.
    intrusive_list<completion> late;
    uring_ ? uring_->cancel_and_wait(*aio_notify_, late) : epoll_->cancel_and_wait(*aio_notify_, late);
    late.clear();
  }
  aio_notify_.reset();
  aio_.reset();  // waits for requests still in flight
}

// ---- the AIO backend ------------------------------------------------------------

void driver::push_aio(completion& c) noexcept {
  aux_ = true;  // reap() collects what this leaves finished
  if (!aio_) {
    auto a = aio_driver::create(aio_opts_);
    if (!a) {
      // io_setup failed (fs.aio-max-nr exhausted...): c fails with that.
      c.res = -a.error().value();
      c.cqe_flags = 0;
      detail::set_state(c, op_state::done);
      aio_failed_.push_back(c);
      return;
    }
    aio_ = std::move(*a);
    aio_notify_ = std::make_unique<op_completion<ops::read>>(
        ops::read{aio_->event_fd(), &aio_count_, sizeof aio_count_, ops::current_position});
  }
  aio_->push(c);
}

void driver::cancel_aio(completion& c) noexcept {
  if (aio_) aio_->cancel(c);  // a request cancelled while queued is finished now; reap() hands it back
}

void driver::aio_cancel_and_wait(completion& c, intrusive_list<completion>& out) noexcept {
  if (c.state == op_state::done) {
    c.unlink();  // in aio_failed_
    return;
  }
  if (aio_) aio_->cancel_and_wait(c, out);
}

bool driver::take_aio_notify() noexcept {
  if (aio_notify_->state != op_state::done) return false;
  // Whatever it read (or an error), events may be ready: collect them.
  aio_notify_->unlink();
  aio_notify_->state = op_state::idle;
  aio_signalled_ = true;
  return true;
}

void driver::arm_aio_notify() noexcept {
  if (aio_->in_flight() == 0 || aio_notify_->state != op_state::idle) return;
  // Straight to the main engine: the fault layer must not delay or fail it.
  uring_ ? uring_->push(*aio_notify_) : epoll_->push(*aio_notify_);
}

int64_t driver::before_wait(int64_t timeout_ns) noexcept {
  if (faults_ && faults_->holding()) timeout_ns = 0;  // held completions are due soon
  if (aio_) {
    aio_->flush();
    if (aio_->has_finished() || aio_signalled_) timeout_ns = 0;
    arm_aio_notify();
  }
  if (!aio_failed_.empty()) timeout_ns = 0;
  return timeout_ns;
}

bool driver::aux_pending_work() const noexcept {
  return (faults_ && faults_->holding()) || (aio_ && aio_->has_pending_work()) || !aio_failed_.empty();
}

std::size_t driver::reap_aux(intrusive_list<completion>& out) noexcept {
  intrusive_list<completion> got;
  std::size_t n = uring_ ? uring_->reap(got) : epoll_->reap(got);
  if (aio_notify_ && take_aio_notify()) --n;
  n = faults_ ? faults_->on_reap(got, out) : n;
  if (!faults_) out.splice_back(got);
  std::size_t aio_n = 0;
  while (completion* c = aio_failed_.pop_front()) {
    out.push_back(*c);
    ++aio_n;
  }
  if (aio_) {
    if (std::exchange(aio_signalled_, false)) {
      aio_n += aio_->reap(out);
    } else {
      aio_n += aio_->take_finished(out);
    }
    aio_->flush();  // requests pushed this turn, or waiting for room
    aio_n += aio_->take_finished(out);  // rejected by that submission
    arm_aio_notify();
  }
  return n + aio_n;
}

const char* to_string(driver_kind k) noexcept {
  switch (k) {
    case driver_kind::automatic: return "automatic";
    case driver_kind::uring: return "io_uring";
    case driver_kind::epoll: return "epoll";
  }
  return "?";
}

result<std::unique_ptr<driver>> driver::create(const driver_options& opts) {
  driver_kind kind = opts.kind;
  bool strict = opts.strict || kind == driver_kind::uring;
  if (kind == driver_kind::automatic) {
    if (const char* env = std::getenv("COIL_DRIVER"); env != nullptr && *env != '\0') {
      if (std::strcmp(env, "epoll") == 0) {
        kind = driver_kind::epoll;
      } else if (std::strcmp(env, "uring") == 0 || std::strcmp(env, "io_uring") == 0) {
        kind = driver_kind::uring;
        strict = true;
      } else {
        std::fprintf(stderr, "coil: ignoring COIL_DRIVER=%s (expected uring or epoll)\n", env);
      }
    }
  }
  std::unique_ptr<driver> d(new driver());
  d->aio_opts_ = opts.aio;
  d->aio_opts_.eventfd = true;  // the facade waits on it
  if (auto f = faults_from(opts); !f) {
    return fail(f.error());
  } else if (f->enabled) {
    d->faults_ = std::make_unique<fault_layer>(*f);
    d->aux_ = true;
  }
  if (kind != driver_kind::epoll) {
    // Any setup errno (EPERM from seccomp or the sysctl, ENOSYS, ENOMEM after
    // retries, EOPNOTSUPP) means "unavailable", as do missing basic opcodes.
    auto u = uring_driver::create(opts.uring);
    if (u && (*u)->has_required_opcodes()) {
      d->uring_ = std::move(*u);
      if (d->faults_) d->faults_->can_inject_cancels(d->uring_->injects_nop_results());
      return d;
    }
    d->uring_error_ = u ? std::make_error_code(std::errc::function_not_supported) : u.error();
    if (strict) return fail(errc::uring_unavailable);
    report_fallback(d->uring_error_);
  }
  auto e = epoll_driver::create(opts.epoll);
  if (!e) return fail(e.error());
  d->epoll_ = std::move(*e);
  return d;
}

}  // namespace coil
