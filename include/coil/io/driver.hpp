#pragma once
// The driver a runtime runs on: io_uring when the kernel allows it, else the
// epoll driver. Chosen once at creation (see driver_options); the dispatch is
// one predictable branch, so the io_uring fast path stays inlinable.
//
// Ops bound for Linux AIO (op_vtable::prep_iocb, dio_ops with .aio) go to an
// AIO backend the facade creates on first use. Its eventfd is read by an
// internal operation on the main driver, so one park waits for both; the
// facade collects AIO events when that read completes, and submits AIO
// requests at push (aio_options::submit_batch), in reap() and in wait().
#include <array>
#include <cstdint>
#include <memory>
#include <system_error>

#include "coil/core/result.hpp"
#include "coil/io/aio_driver.hpp"
#include "coil/io/epoll_driver.hpp"
#include "coil/io/fault.hpp"
#include "coil/io/op_completion.hpp"
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
  aio_options aio{};  // the AIO backend, created by the first op bound for it
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
  // io_uring's answers, asked here so callers need not know the concrete
  // driver; epoll answers as a driver without that feature.
  bool supports(uint8_t opcode) const noexcept { return uring_ && uring_->supports(opcode); }
  uint32_t ring_capacity() const noexcept { return uring_ ? uring_->capacity() : 0; }  // 0: no ring
  uint32_t cq_overflow() const noexcept { return uring_ ? uring_->cq_overflow() : 0; }
  bool sqpoll_active() const noexcept { return uring_ && uring_->sqpoll_active(); }
  bool parks_without_iowait() const noexcept { return uring_ && uring_->parks_without_iowait(); }
  bool injects_nop_results() const noexcept { return uring_ && uring_->injects_nop_results(); }
  // The io-wq caps in force ({0, 0} on epoll, or when the kernel refused).
  std::array<unsigned, 2> iowq_max_workers() const noexcept {
    if (!uring_) return {0, 0};
    const unsigned* m = uring_->iowq_max_workers();
    return {m[0], m[1]};
  }

  ~driver();
  driver(const driver&) = delete;
  driver& operator=(const driver&) = delete;

  // Queues c on the engine that runs it: the AIO backend when c.ops has
  // prep_iocb, else io_uring or epoll.
  void push(completion& c) noexcept {
    if (c.ops->prep_iocb != nullptr) [[unlikely]] return push_aio(c);
    push_io(c);
  }
  // push() for a completion whose op has no AIO form (known at compile
  // time): no routing check on the hot path. Fault injection applies here.
  // Required: the opcode is a uring_driver::required_opcode.
  template <bool Required = false>
  void push_io(completion& c) noexcept {
    if (faults_ && faults_->on_push(c)) [[unlikely]] return;
    uring_ ? uring_->push<Required>(c) : epoll_->push(c);
  }
  // Link chains (rt/link.hpp). io_uring takes a whole chain (push_chain);
  // elsewhere the chain's owner pushes one member at a time and times a
  // member with push_deadline. Chains skip fault injection.
  bool links_in_kernel() const noexcept { return uring_ != nullptr; }
  void push_chain(link_chain& chain) noexcept {
    COIL_ASSERT(uring_ != nullptr, "push_chain needs io_uring (see links_in_kernel)");
    uring_->push_chain(chain);
  }
  void push_deadline(deadline_completion& c, int64_t timeout_ns) noexcept {
    COIL_ASSERT(epoll_ != nullptr, "push_deadline emulates link timeouts on epoll only");
    epoll_->push_deadline(c, timeout_ns);
  }
  void cancel(completion& c) noexcept {
    if (c.ops->prep_iocb != nullptr) [[unlikely]] return cancel_aio(c);
    uring_ ? uring_->cancel(c) : epoll_->cancel(c);
  }
  // Submits what is queued on io_uring or epoll and collects what is ready
  // there; reap() follows and does the same for AIO.
  result<void> flush() noexcept { return uring_ ? uring_->flush() : epoll_->flush(); }
  result<void> wait(int64_t timeout_ns) noexcept {
    if (aux_) [[unlikely]] timeout_ns = before_wait(timeout_ns);
    return uring_ ? uring_->wait(timeout_ns) : epoll_->wait(timeout_ns);
  }
  std::size_t reap(intrusive_list<completion>& out) noexcept {
    if (aux_) [[unlikely]] return reap_aux(out);
    return uring_ ? uring_->reap(out) : epoll_->reap(out);
  }
  // reap(), handing io_uring's CQ completions to direct as the walk finds
  // them (see uring_driver::reap); everything else goes to out.
  std::size_t reap(intrusive_list<completion>& out, uring_driver::direct_fn direct, void* ctx) noexcept {
    if (aux_) [[unlikely]] return reap_aux(out);
    return uring_ ? uring_->reap(out, direct, ctx) : epoll_->reap(out);
  }
  void cancel_and_wait(completion& c, intrusive_list<completion>& out) noexcept {
    if (c.ops->prep_iocb != nullptr) [[unlikely]] return aio_cancel_and_wait(c, out);
    uring_ ? uring_->cancel_and_wait(c, out) : epoll_->cancel_and_wait(c, out);
    if (aio_notify_) [[unlikely]] (void)take_aio_notify();  // it may have arrived meanwhile
  }
  bool has_pending_work() const noexcept {
    if (aux_ && aux_pending_work()) [[unlikely]] return true;
    return uring_ ? uring_->has_pending_work() : epoll_->has_pending_work();
  }
  // Calls f(completion&, bool in_flight) for every operation pushed and not
  // yet completed, io_uring's or epoll's, then AIO's (see
  // uring_driver::for_each_pending). The facade's own eventfd read is left
  // out. For diagnostics; f must not push or cancel.
  template <class F>
  void for_each_pending(F&& f) noexcept {
    auto own = [&](completion& c, bool in_flight) {
      if (&c != aio_notify_.get()) f(c, in_flight);
    };
    uring_ ? uring_->for_each_pending(own) : epoll_->for_each_pending(own);
    if (aio_) aio_->for_each_pending(f);
  }
  // The AIO backend's counters (zero before its first use).
  aio_stats aio_counters() const noexcept { return aio_ ? aio_->stats() : aio_stats{}; }
  // An eager op may be tried with a direct system call now (io_uring with
  // nothing queued, eager_send on, no fault layer: injected faults must see
  // every op).
  bool eager_allowed() const noexcept { return uring_ && !faults_ && uring_->eager_allowed(); }
  void count_eager() noexcept { uring_->count_eager(); }
  // io_uring with no SQE filled and nothing waiting for room.
  bool ring_idle() const noexcept { return uring_ && uring_->ring_idle(); }
  void count_inline_read() noexcept { uring_->count_inline_read(); }
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
  friend class buffer_ring;  // registers its ring with io_uring
  uring_driver* uring() noexcept { return uring_.get(); }
  driver() = default;
  void push_aio(completion& c) noexcept;
  void cancel_aio(completion& c) noexcept;
  void aio_cancel_and_wait(completion& c, intrusive_list<completion>& out) noexcept;
  int64_t before_wait(int64_t timeout_ns) noexcept;
  std::size_t reap_aux(intrusive_list<completion>& out) noexcept;
  bool aux_pending_work() const noexcept;
  void arm_aio_notify() noexcept;
  // If the eventfd read has completed: takes it out of whatever list the
  // main driver put it in and notes that events may be ready.
  bool take_aio_notify() noexcept;

  std::unique_ptr<fault_layer> faults_;  // before the drivers: destroyed after them
  std::unique_ptr<uring_driver> uring_;
  std::unique_ptr<epoll_driver> epoll_;
  std::unique_ptr<aio_driver> aio_;  // created by the first op bound for AIO
  aio_options aio_opts_;
  intrusive_list<completion> aio_failed_;  // AIO ops that found no backend (io_setup failed)
  // The read of the AIO eventfd, armed on the main driver while AIO
  // requests are in flight: its completion means events are ready.
  std::unique_ptr<op_completion<ops::read>> aio_notify_;
  uint64_t aio_count_ = 0;  // aio_notify_'s buffer
  bool aio_signalled_ = false;  // aio_notify_ completed: collect events
  bool aux_ = false;  // faults or AIO: reap, wait and has_pending_work take the slow path
  std::error_code uring_error_;
};

}  // namespace coil
