#pragma once
// Shared test helpers: a fresh temp directory per test and a one-liner to run
// a task on a new runtime.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "coil/coil.hpp"

namespace coil::test {

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

}  // namespace coil::test
