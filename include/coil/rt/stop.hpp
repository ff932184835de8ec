#pragma once
// Single-threaded stop source/callbacks for task cancellation. No atomics and
// no heap: callbacks are nodes owned by whoever waits (an operation in a
// coroutine frame), linked into the source while they wait.
#include "coil/core/intrusive_list.hpp"

namespace coil {

struct stop_callback : list_hook {
  using fn_type = void (*)(stop_callback&) noexcept;
  fn_type fn = nullptr;
};

// Where cancellation of a task tree is requested (request_stop) and observed.
class stop_source {
 public:
  stop_source() noexcept = default;
  stop_source(const stop_source&) = delete;
  stop_source& operator=(const stop_source&) = delete;

  bool stop_requested() const noexcept { return requested_; }

  // The name of the task this source belongs to (set_task_name), shown in
  // in-flight listings. Not owned: it must outlive the task.
  const char* name() const noexcept { return name_; }
  void set_name(const char* name) noexcept { name_ = name; }

  // Runs every registered callback once. Callbacks must not resume coroutines
  // inline; they schedule or cancel.
  void request_stop() noexcept {
    if (requested_) return;
    requested_ = true;
    while (stop_callback* cb = callbacks_.pop_front()) cb->fn(*cb);
  }

  // cb runs at request_stop() unless it unlinks itself first. If stop was
  // already requested, runs cb now.
  void add(stop_callback& cb) noexcept {
    if (requested_) {
      cb.fn(cb);
      return;
    }
    callbacks_.push_back(cb);
  }

 private:
  bool requested_ = false;
  const char* name_ = nullptr;
  intrusive_list<stop_callback> callbacks_;
};

}  // namespace coil
