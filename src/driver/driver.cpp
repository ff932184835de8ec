#include "coil/io/driver.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

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

std::size_t driver::reap_faulty(intrusive_list<completion>& out) noexcept {
  intrusive_list<completion> got;
  uring_ ? uring_->reap(got) : epoll_->reap(got);
  return faults_->on_reap(got, out);
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
  if (auto f = faults_from(opts); !f) {
    return fail(f.error());
  } else if (f->enabled) {
    d->faults_ = std::make_unique<fault_layer>(*f);
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
