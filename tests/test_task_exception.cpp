// An exception escaping a task is fatal (coil's core has no exceptions to
// carry it anywhere), and it says what escaped and from which task.
#include <new>
#include <stdexcept>

#include "test_util.hpp"

namespace {

using namespace coil;
using coil::test::run;

TEST(TaskDeath, EscapingExceptionNamesItsWhatAndTheTask) {
  auto body = []() -> task<void> {
    co_await set_task_name("ledger writer");
    throw std::runtime_error("disk on fire");
  };
  EXPECT_DEATH(run(body()), "coil: an exception escaped task \"ledger writer\": disk on fire");
}

TEST(TaskDeath, BadAllocInASpawnedTaskNamedThroughItsHandle) {
  auto body = []() -> task<void> {
    auto h = runtime::current()->spawn([]() -> task<void> {
      co_await yield();
      throw std::bad_alloc();
    }());
    h.set_task_name("allocator");
    co_await std::move(h);
  };
  EXPECT_DEATH(run(body()), "escaped task \"allocator\": std::bad_alloc");
}

TEST(TaskDeath, EscapingNonStandardExceptionInAnUnnamedTask) {
  auto body = []() -> task<int> {
    throw 42;
    co_return 0;
  };
  EXPECT_DEATH(run(body()), "escaped a task \\(unnamed: coil::set_task_name names it\\): not a std::exception");
}

}  // namespace
