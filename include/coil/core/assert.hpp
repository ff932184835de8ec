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

// Debug invariants: checks of coil's own bookkeeping (a driver's counters
// against its lists), placed where that bookkeeping changes. On where
// COIL_INVARIANTS is 1: CMake sets it for coil and everything linking it, on
// in Debug and sanitizer builds (option COIL_INVARIANTS). Off, the condition
// is not evaluated (only type-checked) and no code remains. Asserts only:
// nothing that changes a class's layout may depend on it.
#ifndef COIL_INVARIANTS
#define COIL_INVARIANTS 0
#endif

namespace coil::detail {
inline constexpr bool invariants = COIL_INVARIANTS != 0;
}

#if COIL_INVARIANTS
#define COIL_DEBUG_ASSERT(cond, msg) COIL_ASSERT(cond, msg)
#else
#define COIL_DEBUG_ASSERT(cond, msg)      \
  do {                                    \
    static_cast<void>(sizeof(!(cond)));   \
  } while (0)
#endif
