#pragma once
// The driver a runtime runs on: io_uring when the kernel allows it, else the
// epoll driver. Chosen once at creation (see driver_options); the dispatch is
// one predictable branch, so the io_uring fast path stays inlinable.
#include <cstdint>
#include <memory>
#include <system_error>

#include "coil/core/result.hpp"
#include "coil/io/epoll_driver.hpp"
#include "coil/io/fault.hpp"
#include "coil/io/uring_driver.hpp"

namespace coil {

// Which driver a runtime runs on (runtime_options::driver).
enum class driver_kind : uint8_t {
  automatic,  // io_uring if usable, else epoll; COIL_DRIVER=uring|epoll overrides
  uring,      // io_uring or a typed error (never a silent fallback)
  epoll,
};

const char* to_string(driver_kind k) noexcept;

struct driver_options {
  driver_kind kind = driver_kind::automatic;
  // With automatic: an unusable io_uring is an error (errc::uring_unavailable)
  // instead of a fallback to epoll.
  bool strict = false;
  uring_options uring{};
  epoll_options epoll{};
  // Fault injection (io/fault.hpp). Not enabled: COIL_FAULTS=seed:spec, if
  // set, enables it (a bad spec fails create with invalid_argument).
  fault_options faults{};
};

// What a runtime drives: io_uring or epoll (see the file description).
class driver {
 public:
  static result<std::unique_ptr<driver>> create(const driver_options& opts = {});

  driver_kind kind() const noexcept { return uring_ ? driver_kind::uring : driver_kind::epoll; }
  // Why io_uring is not used (empty when it is, or when epoll was requested).
  std::error_code uring_error() const noexcept { return uring_error_; }
  uring_driver* uring() noexcept { return uring_.get(); }
  epoll_driver* epoll() noexcept { return epoll_.get(); }

  void push(completion& c) noexcept {
    if (faults_ && faults_->on_push(c)) [[unlikely]] return;
    uring_ ? uring_->push(c) : epoll_->push(c);
  }
  void cancel(completion& c) noexcept { uring_ ? uring_->cancel(c) : epoll_->cancel(c); }
  result<void> flush() noexcept { return uring_ ? uring_->flush() : epoll_->flush(); }
  result<void> wait(int64_t timeout_ns) noexcept {
    if (faults_ && faults_->holding()) [[unlikely]] timeout_ns = 0;  // held completions are due soon
    return uring_ ? uring_->wait(timeout_ns) : epoll_->wait(timeout_ns);
  }
  std::size_t reap(intrusive_list<completion>& out) noexcept {
    if (faults_) [[unlikely]] return reap_faulty(out);
    return uring_ ? uring_->reap(out) : epoll_->reap(out);
  }
  void cancel_and_wait(completion& c, intrusive_list<completion>& out) noexcept {
    uring_ ? uring_->cancel_and_wait(c, out) : epoll_->cancel_and_wait(c, out);
  }
  bool has_pending_work() const noexcept {
    if (faults_ && faults_->holding()) [[unlikely]] return true;
    return uring_ ? uring_->has_pending_work() : epoll_->has_pending_work();
  }
  // An eager op may be tried with a direct system call now (io_uring with
  // nothing queued, eager_send on, no fault layer: injected faults must see
  // every op).
  bool eager_ready() const noexcept { return uring_ && !faults_ && uring_->eager_ready(); }
  void count_eager() noexcept { uring_->count_eager(); }
  // The fault-injection layer (its counters, pause()); null when off.
  fault_layer* faults() noexcept { return faults_.get(); }
  uint32_t in_flight() const noexcept { return uring_ ? uring_->in_flight() : epoll_->in_flight(); }
  const driver_stats& stats() const noexcept { return uring_ ? uring_->stats() : epoll_->stats(); }
  // Registered files and buffers (see uring_driver). Readiness drivers have
  // no such tables: there the slot is the fd itself and buffer indices are
  // accepted and ignored, so code using ops::fixed<> and read_fixed runs on
  // either driver.
  result<int> register_file(int fd) noexcept {
    if (uring_) return uring_->register_file(fd);
    if (fd < 0) return fail(std::errc::bad_file_descriptor);
    return fd;
  }
  void unregister_file(int slot) noexcept {
    if (uring_) uring_->unregister_file(slot);
  }
  result<int> register_buffer(void* data, std::size_t len) noexcept {
    if (uring_) return uring_->register_buffer(data, len);
    if (data == nullptr || len == 0) return fail(std::errc::invalid_argument);
    return 0;
  }
  void unregister_buffer(int index) noexcept {
    if (uring_) uring_->unregister_buffer(index);
  }

  // Readable when the driver has completions to reap (see embed_fd).
  result<int> notify_fd() noexcept {
    if (uring_) return uring_->notify_fd();
    return epoll_->poll_fd();
  }
  // A descriptor is being closed outside a close op (readiness drivers drop it).
  void forget_fd(int fd) noexcept {
    if (epoll_) epoll_->forget_fd(fd);
  }

 private:
  driver() = default;
  std::size_t reap_faulty(intrusive_list<completion>& out) noexcept;
  std::unique_ptr<fault_layer> faults_;  // before the drivers: destroyed after them
  std::unique_ptr<uring_driver> uring_;
  std::unique_ptr<epoll_driver> epoll_;
  std::error_code uring_error_;
};

}  // namespace coil
