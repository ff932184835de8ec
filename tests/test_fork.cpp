// fork() without exec: the child builds its own runtime and works; the
// parent's runtime, with an operation in flight across the fork, is unaffected.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

// Child: its own runtime, real work, exit code 0 on success.
int child_main(const std::string& path) {
  if (runtime::current() != nullptr) return 2;  // the parent's must be forgotten
  auto rt = runtime::create();
  if (!rt) return 3;
  return (*rt)->block_on([](std::string path) -> task<int> {
    auto f = co_await file::create(path.c_str());
    if (!f) co_return 4;
    auto w = co_await f->write_all_at(std::as_bytes(std::span("child", 5)), 0);
    if (!w) co_return 5;
    auto n = co_await nop();
    if (!n) co_return 6;
    co_await sleep_for(1ms);
    co_return 0;
  }(path));
}

TEST(Fork, ChildBuildsItsOwnRuntimeAndParentIsUnaffected) {
  test::temp_dir dir;
  const std::string path = dir.file("from-child");
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  std::string got;
  int child_status = -1;
  (*rt)->block_on([&]() -> task<void> {
    // A read in flight in the parent while the child runs.
    auto reader = runtime::current()->spawn([](int fd, std::string& got) -> task<void> {
      file f{unique_fd(::dup(fd))};
      char buf[16];
      auto n = co_await f.read(std::as_writable_bytes(std::span(buf)));
      if (n) got.assign(buf, *n);
    }(p[0], got));
    co_await yield();
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(child_main(path));
    int status = 0;
    ::waitpid(pid, &status, 0);
    child_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    EXPECT_EQ(::write(p[1], "parent", 6), 6);
    co_await reader;
  }());
  EXPECT_EQ(child_status, 0);
  EXPECT_EQ(got, "parent");
  char back[5] = {};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::read(fd, back, 5), 5);
  EXPECT_EQ(std::string(back, 5), "child");
  ::close(fd);
  ::close(p[0]);
  ::close(p[1]);
}

}  // namespace
