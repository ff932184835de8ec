#pragma once
// Helpers shared by the sync and task_group tests.
#include <system_error>

#include "test_util.hpp"

namespace coil::test {

// The error of r, or an empty code: EXPECT_EQ(error_of(r), E) also fails when
// r unexpectedly succeeded.
template <class T>
std::error_code error_of(const result<T>& r) {
  return r ? std::error_code{} : r.error();
}

// A few loop turns: every spawned task runs until it parks.
inline task<void> settle(int turns = 3) {
  for (int i = 0; i < turns; ++i) co_await yield();
}

// Starts t now, outside any spawn, so the test keeps the task and can destroy
// its frame while it waits. Its waits are not cancellable (no stop source).
template <class T>
void start_here(task<T>& t) {
  t.handle().promise().started = true;
  t.handle().resume();
}

}  // namespace coil::test
