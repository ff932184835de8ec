// kernel.io_uring_disabled=2 (Linux 6.6+) makes io_uring_setup fail for
// everyone: the runtime must fall back to epoll and say why. Changes a global
// sysctl, so ctest runs it alone (RUN_SERIAL) and it always restores it.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "test_util.hpp"

namespace {

using namespace coil;

constexpr const char* sysctl_path = "/proc/sys/kernel/io_uring_disabled";

bool write_sysctl(const std::string& v) {
  std::ofstream f(sysctl_path);
  f << v;
  f.flush();
  return static_cast<bool>(f);
}

TEST(IoUringDisabledSysctl, RuntimeFallsBackToEpoll) {
  std::ifstream in(sysctl_path);
  std::string old;
  if (!in || !(in >> old)) GTEST_SKIP() << "no kernel.io_uring_disabled sysctl (kernel < 6.6)";
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to change kernel.io_uring_disabled";
  if (!write_sysctl("2")) GTEST_SKIP() << "cannot write kernel.io_uring_disabled (read-only /proc?)";
  ::unsetenv("COIL_DRIVER");
  auto strict = [] {
    runtime_options o;
    o.strict_driver = true;
    return runtime::create(o);
  };
  auto rt = runtime::create();
  const bool created = static_cast<bool>(rt);
  const driver_kind kind = created ? (*rt)->driver().kind() : driver_kind::automatic;
  const std::error_code why = created ? (*rt)->driver().uring_error() : std::error_code{};
  int value = -1;
  if (created) value = (*rt)->block_on([]() -> task<int> {
    auto r = co_await nop();
    co_return r ? 7 : -1;
  }());
  rt = {};
  auto s = strict();
  const bool strict_failed = !s && s.error() == errc::uring_unavailable;
  s = {};
  ASSERT_TRUE(write_sysctl(old)) << "could not restore kernel.io_uring_disabled=" << old;
  ASSERT_TRUE(created);
  EXPECT_EQ(kind, driver_kind::epoll);
  EXPECT_EQ(why, std::errc::operation_not_permitted);
  EXPECT_EQ(value, 7);
  EXPECT_TRUE(strict_failed);
}

}  // namespace
