// fork() without exec: the child builds its own runtime and works; the
// parent's runtime, with an operation in flight across the fork, is unaffected.
// The blocking pool and the AIO context started by the parent work in the child.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "coil/fs/direct_file.hpp"
#include "coil/io/dma_buffer.hpp"
#include "coil/rt/blocking.hpp"
#include "test_aio_util.hpp"
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

// Forks; the child runs fn and exits with its value. Returns the child's
// exit code, or 128 + signal. A child that hangs is killed by SIGALRM (the
// bugs these tests catch are hangs), so the parent reports instead of waiting.
template <class Fn>
int in_child(Fn fn) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(60);
    ::_exit(fn());
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(Fork, SpawnBlockingWorksInAChildAfterTheParentStartedThePool) {
  {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    // Starts the pool: its thread then waits idle for the next job.
    auto v = (*rt)->block_on(spawn_blocking([] { return 7; }));
    ASSERT_TRUE(v && *v == 7);
  }
  const int status = in_child([] {
    auto rt = runtime::create();
    if (!rt) return 3;
    // The parent's idle thread does not exist in the child: a pool that
    // counted it would start none, and this would never return (SIGALRM: 142).
    auto v = (*rt)->block_on([]() -> task<result<int>> {
      auto a = co_await spawn_blocking([] { return 1; });
      auto b = co_await spawn_blocking([] { return 2; });
      if (!a || !b) co_return fail(std::errc::io_error);
      co_return *a + *b;
    }());
    return v && *v == 3 ? 0 : 4;
  });
  EXPECT_EQ(status, 0);
  // The parent's pool is untouched.
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  auto v = (*rt)->block_on(spawn_blocking([] { return 8; }));
  EXPECT_TRUE(v && *v == 8);
}

// block()'s private runtime is the parent's ring too: the child makes its own.
TEST(Fork, BlockInAChildOfAThreadThatUsedBlock) {
  auto warm = block(sleep_for(std::chrono::milliseconds(1)));  // the private runtime exists
  ASSERT_TRUE(warm);
  const int status = in_child([] {
    auto slept = block(sleep_for(std::chrono::milliseconds(1)));  // runs on a ring of its own
    if (!slept) return 3;
    auto n = block(nop());
    return n ? 0 : 4;
  });
  EXPECT_EQ(status, 0);
  auto after = block(sleep_for(std::chrono::milliseconds(1)));
  EXPECT_TRUE(after) << after.error().message();
}

TEST(Fork, AioWorksInAChildOfAProcessThatUsedAio) {
  aio_test::direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  constexpr std::size_t block = 4096;
  const auto data = aio_test::pattern(block, 5);
  ASSERT_TRUE(aio_test::write_file(dir.file("f"), data));
  const std::string path = dir.file("f");
  auto read_block = [&]() -> int {
    auto f = direct_file::adopt(unique_fd(::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC)),
                                {.engine = dio_engine::aio});
    if (!f) return 10;
    auto buf = dma_buffer::allocate(block);
    if (!buf) return 11;
    auto rt = runtime::create();
    if (!rt) return 12;
    auto n = (*rt)->block_on([](const direct_file& f, std::span<std::byte> b) -> task<result<size_t>> {
      co_return co_await f.read_at(b, 0);
    }(*f, buf->span()));
    if (!n) return n.error() == std::errc::invalid_argument ? 13 : 14;  // 13: the stale context
    return *n == block && aio_test::same(buf->span(), data) ? 0 : 15;
  };
  // The parent used an AIO context before the fork.
  ASSERT_EQ(read_block(), 0);
  EXPECT_EQ(in_child(read_block), 0);
  EXPECT_EQ(read_block(), 0);  // the parent's context still works
}

}  // namespace
