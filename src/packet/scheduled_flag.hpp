#pragma once
// A flush task's claim on its space's "flush scheduled" flag: cleared when the
// task starts (release) or when its frame is destroyed unrun, as happens when
// a runtime is torn down first (a coroutine's parameters live in its frame).
#include <utility>

namespace coil::packet::detail {

class scheduled_flag {
 public:
  explicit scheduled_flag(bool& flag) noexcept : flag_(&flag) {}
  scheduled_flag(scheduled_flag&& o) noexcept : flag_(std::exchange(o.flag_, nullptr)) {}
  scheduled_flag(const scheduled_flag&) = delete;
  scheduled_flag& operator=(const scheduled_flag&) = delete;
  scheduled_flag& operator=(scheduled_flag&&) = delete;
  ~scheduled_flag() { release(); }
  void release() noexcept {
    if (flag_ != nullptr) *flag_ = false;
    flag_ = nullptr;
  }

 private:
  bool* flag_;
};

}  // namespace coil::packet::detail
