// Guide: drivers.md. Which driver a runtime got and why, strict mode, and
// the batching counters. Passes on both drivers (ctest runs it twice, once
// with COIL_DRIVER=epoll).
#include <cstdio>
#include <cstdlib>

#include <coil/coil.hpp>

#include "example_util.hpp"

namespace {

using example::check;

// doc-begin: which
void report(coil::runtime& rt) {
  coil::driver& d = rt.driver();
  std::printf("driver: %s\n", coil::to_string(d.kind()));
  if (d.kind() == coil::driver_kind::epoll && d.uring_error()) {
    // Why io_uring was not used: EPERM (seccomp, kernel.io_uring_disabled), ENOSYS...
    std::printf("io_uring unavailable: %s\n", d.uring_error().message().c_str());
  }
}
// doc-end: which

// doc-begin: strict
// Refuse to run without io_uring rather than fall back to epoll.
coil::result<std::unique_ptr<coil::runtime>> uring_or_nothing() {
  coil::runtime_options opts;
  opts.strict_driver = true;  // or opts.driver = coil::driver_kind::uring
  auto rt = coil::runtime::create(opts);
  if (!rt && rt.error() == coil::errc::uring_unavailable) std::fprintf(stderr, "this service needs io_uring\n");
  return rt;
}
// doc-end: strict

// doc-begin: batching
// 100 operations queued in one loop turn: on io_uring they reach the kernel
// with one io_uring_enter, submitted and waited for together.
coil::task<void> batch_of_nops() {
  coil::runtime& rt = *coil::runtime::current();
  coil::task_group g;
  for (int i = 0; i < 100; ++i) g.spawn([]() -> coil::task<coil::result<void>> { co_return co_await coil::nop(); }());
  const uint64_t before = rt.stats().io.enter_calls;
  auto r = co_await g.join();
  const uint64_t enters = rt.stats().io.enter_calls - before;
  std::printf("100 nops: %llu system calls\n", static_cast<unsigned long long>(enters));
  check(r && (rt.driver().kind() != coil::driver_kind::uring || enters <= 2), "batching");
}
// doc-end: batching

}  // namespace

int main() {
  {
    auto rt = coil::runtime::create();
    if (!rt) return 1;
    report(**rt);
    (*rt)->block_on(batch_of_nops());
  }
  const char* forced = std::getenv("COIL_DRIVER");
  auto strict = uring_or_nothing();
  if (strict) {
    // With COIL_DRIVER=epoll the environment wins over automatic + strict.
    check((*strict)->driver().kind() == coil::driver_kind::uring || forced != nullptr, "strict");
  }
  return example::exit_code();
}
