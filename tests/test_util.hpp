#pragma once
// Shared test helpers: a fresh temp directory per test and a one-liner to run
// a task on a new runtime.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "coil/coil.hpp"

// ASSERT_* for test coroutines (they cannot `return`): gives up on the
// current coroutine. Bind a co_await result first, then test it: g++ 12
// miscompiles co_await inside conditions.
#define CO_ASSERT_OK(r)                                            \
  do {                                                             \
    if (!(r)) {                                                    \
      ADD_FAILURE() << #r << " failed: " << (r).error().message(); \
      co_return;                                                   \
    }                                                              \
  } while (0)
#define CO_ASSERT_TRUE(c)                       \
  do {                                          \
    if (!(c)) {                                 \
      ADD_FAILURE() << "expected true: " << #c; \
      co_return;                                \
    }                                           \
  } while (0)

// EXPECT_* on an awaited result (bound to a variable first, see above).
#define CO_EXPECT_OK(expr)                                          \
  do {                                                              \
    auto co_r_ = expr;                                              \
    EXPECT_TRUE(co_r_) << #expr << ": " << co_r_.error().message(); \
  } while (0)
#define CO_EXPECT_FAIL(expr, err)                             \
  do {                                                        \
    auto co_r_ = expr;                                        \
    EXPECT_TRUE(::coil::test::fails_with(co_r_, err)) << #expr; \
  } while (0)

namespace coil::test {

// r failed with want (an errc, coil::errc or error_code).
template <class R, class E>
::testing::AssertionResult fails_with(const R& r, E want) {
  const std::error_code w = make_error_code(want);
  if (r) return ::testing::AssertionFailure() << "succeeded; expected " << w.message();
  if (r.error() == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "failed with \"" << r.error().message() << "\" (" << r.error()
                                       << "); expected \"" << w.message() << "\" (" << w << ")";
}

// A unique directory under $TMPDIR (or /tmp), removed with its contents.
class temp_dir {
 public:
  temp_dir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/coil-test-XXXXXX";
    char* p = mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs t to completion on a fresh runtime owned by this thread.
template <class T>
T run(task<T> t, const runtime_options& opts = {}) {
  auto rt = runtime::create(opts);
  if (!rt) {
    ADD_FAILURE() << "runtime::create: " << rt.error().message();
    std::abort();
  }
  return (*rt)->block_on(std::move(t));
}

// The driver a default runtime gets here (COIL_DRIVER=epoll runs the suite on
// the fallback driver).
inline driver_kind default_driver() {
  static const driver_kind kind = [] {
    auto d = driver::create();
    return d ? (*d)->kind() : driver_kind::automatic;
  }();
  return kind;
}

// Skips a test of io_uring-only behaviour (ring sizes, SQE batching).
#define COIL_REQUIRE_URING()                                         \
  do {                                                               \
    if (::coil::test::default_driver() != ::coil::driver_kind::uring) \
      GTEST_SKIP() << "io_uring-specific; running on another driver"; \
  } while (0)

inline std::span<std::byte> as_writable(std::vector<char>& v) { return std::as_writable_bytes(std::span(v)); }
inline std::span<const std::byte> as_bytes(const std::vector<char>& v) { return std::as_bytes(std::span(v)); }
inline std::span<const std::byte> as_bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

// A file whose reads at offset 0 wait until wake(): a semaphore eventfd. To
// io_uring a positional read is a file operation, bounded by the CQ like a
// disk read, so these fill the ring (reads at a pipe's current position are
// not bounded: they wait on a peer). io_uring only: pread of an eventfd is
// ESPIPE to the epoll driver's workers.
struct blocking_eventfd {
  file f{unique_fd(::eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE))};
  // Lets n reads (waiting or future) complete.
  void wake(uint64_t n) const { (void)!::write(f.fd(), &n, sizeof n); }
  // A read that waits; its result is 1 (8 bytes) once woken.
  static auto read(const file& f, uint64_t& into) {
    return f.read_at(std::as_writable_bytes(std::span(&into, 1)), 0);
  }
};

// A coroutine type that is not coil::task: it runs eagerly on the calling
// thread and has no runtime, no stop source and no scheduler behind it.
struct foreign_coro {
  struct promise_type {
    foreign_coro get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::abort(); }
  };
  foreign_coro(std::coroutine_handle<promise_type> h) : h(h) {}  // NOLINT
  foreign_coro(foreign_coro&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~foreign_coro() {
    if (h) h.destroy();
  }
  bool done() const { return h.done(); }
  std::coroutine_handle<promise_type> h;
};

// Descriptors this process has open; tests compare counts before and after.
inline int open_fds() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n - 1;  // the iterator's own
}

}  // namespace coil::test
