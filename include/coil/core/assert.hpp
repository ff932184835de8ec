#pragma once
// Programming errors (misuse of the API that cannot be reported as a value)
// stop the process with a message, in every build type.

namespace coil::detail {
[[noreturn]] void assert_fail(const char* expr, const char* msg, const char* file, int line) noexcept;
// An exception escaped a task: prints what() (null: not a std::exception)
// and the task's name (null: unnamed), then calls std::terminate.
[[noreturn]] void exception_escaped(const char* what, const char* task_name) noexcept;
}

#define COIL_ASSERT(cond, msg)                                         \
  do {                                                                 \
    if (__builtin_expect(!(cond), 0))                                  \
      ::coil::detail::assert_fail(#cond, msg, __FILE__, __LINE__);     \
  } while (0)
