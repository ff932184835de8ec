#pragma once
// shield(t): awaits t with no cancellation reaching it from the caller.
//
// A cancelled task's new waits and operations fail at once, which is right
// for work but wrong for cleanup: a task stopped by a shutdown still wants to
// drain (`co_await shield(drain(gate))`), flush or say goodbye. Inside the
// shield, t and everything it awaits see no stop request; they can still
// bound themselves (with_timeout, when_any work as usual).
#include <coroutine>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/rt/task.hpp"

namespace coil {

template <class T>
class [[nodiscard]] shield_awaiter {
 public:
  explicit shield_awaiter(task<T> t) noexcept : t_(std::move(t)) {}

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> parent) noexcept {
    auto h = t_.handle();
    COIL_ASSERT(h && !h.promise().started, "shield given an empty or started task");
    h.promise().started = true;
    h.promise().continuation = parent;
    h.promise().stop = nullptr;  // the caller's stop source stays outside
    return h;
  }
  T await_resume() noexcept { return t_.handle().promise().take(); }

 private:
  task<T> t_;
};

template <class T>
// Awaits t with the caller's cancellation kept out (see the file description).
shield_awaiter<T> shield(task<T> t) noexcept {
  return shield_awaiter<T>(std::move(t));
}

}  // namespace coil
