#pragma once
// Owning file descriptor. Closing on destruction is synchronous; use the
// async close operations of file/socket types to close on the ring.
#include <unistd.h>

#include <atomic>
#include <utility>

namespace coil {

namespace detail {
// Called just before a descriptor is closed, so that an event loop can drop
// what it keeps under that number (a readiness driver's registration). The
// runtime installs it when the first one is created; the core layer knows
// nothing of runtimes.
using fd_closing_fn = void (*)(int fd) noexcept;
inline std::atomic<fd_closing_fn> fd_closing_hook{nullptr};
inline void fd_closing(int fd) noexcept {
  if (fd_closing_fn f = fd_closing_hook.load(std::memory_order_relaxed)) f(fd);
}
}  // namespace detail

// Owns one descriptor and closes it (synchronously) when destroyed or reset.
class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  // Gives up ownership without closing.
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) {
      detail::fd_closing(fd_);
      ::close(fd_);
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace coil
