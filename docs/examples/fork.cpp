// Guide: fork.md. A child forked while the parent's runtime has a read in
// flight builds its own runtime, works, and leaves with _exit; the parent's
// read is unaffected.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>

#include <coil/coil.hpp>

namespace {

// doc-begin: child
// Runs in the child. The parent's runtime was forgotten at fork(): current()
// is null, and a runtime of the child's own can be created.
int child_main() {
  if (coil::runtime::current() != nullptr) return 2;
  auto rt = coil::runtime::create();
  if (!rt) return 3;
  return (*rt)->block_on([]() -> coil::task<int> {
    auto n = co_await coil::nop();
    auto s = co_await coil::sleep_for(std::chrono::milliseconds(1));
    co_return n && s ? 0 : 4;
  }());
}

coil::task<int> parent(int pipe_read_end, int pipe_write_end) {
  std::array<char, 8> buf{};
  coil::file rd{coil::unique_fd(pipe_read_end)};
  // A read in flight across the fork.
  auto reader = coil::runtime::current()->spawn(
      [](coil::file& f, std::span<char> b) -> coil::task<coil::result<size_t>> {
        co_return co_await f.read(std::as_writable_bytes(b));
      }(rd, buf));
  co_await coil::yield();

  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(child_main());  // _exit: never unwind into the parent's objects
  int status = 0;
  ::waitpid(pid, &status, 0);

  (void)::write(pipe_write_end, "parent", 6);
  auto n = co_await reader;
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && n && *n == 6;
  co_return ok ? 0 : 1;
}
// doc-end: child

}  // namespace

int main() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return 1;
  auto rt = coil::runtime::create();
  if (!rt) return 1;
  const int code = (*rt)->block_on(parent(p[0], p[1]));
  ::close(p[1]);
  return code;
}
