// no_io_uring PROGRAM [ARGS...]: runs PROGRAM with the io_uring system calls
// failing with EPERM (a seccomp filter, as Docker's default profile does),
// so a test can run a whole tool where io_uring is disabled.
#include <seccomp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: no_io_uring PROGRAM [ARGS...]\n");
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  const uint32_t action = SCMP_ACT_ERRNO(EPERM);
  const bool ok = ctx != nullptr && seccomp_rule_add(ctx, action, SCMP_SYS(io_uring_setup), 0) == 0 &&
                  seccomp_rule_add(ctx, action, SCMP_SYS(io_uring_enter), 0) == 0 &&
                  seccomp_rule_add(ctx, action, SCMP_SYS(io_uring_register), 0) == 0 && seccomp_load(ctx) == 0;
  if (ctx != nullptr) seccomp_release(ctx);
  if (!ok) {
    std::fprintf(stderr, "no_io_uring: cannot install the seccomp filter\n");
    return 1;
  }
  ::execvp(argv[1], argv + 1);
  std::fprintf(stderr, "no_io_uring: %s: %s\n", argv[1], std::strerror(errno));
  return 127;
}
