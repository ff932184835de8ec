#pragma once
// Fault injection: a layer inside coil::driver that makes real operations
// fail, come back short, late or out of order, deterministically for a seed.
// Enabled by driver_options::faults / runtime_options::faults or by
// COIL_FAULTS=seed:spec (see parse_fault_spec); when off, the driver holds a
// null pointer and every hook costs one predictable branch.
//
// What the owner of an operation can see, and why no lie loses data:
// - errors (EIO, ENOSPC, EAGAIN, ECONNRESET) are decided at push and the
//   operation never reaches the kernel: a "failed" write wrote nothing, a
//   "failed" recv consumed nothing, a "failed" open or accept created no fd;
// - short transfers shorten the request itself before the kernel runs it
//   (the SQE's length, or the syscall the epoll driver makes), so a short
//   write wrote exactly what it reports and a short recv left the rest in
//   the socket. Only where the kernel may itself be short: buffered regular
//   files, pipes and stream sockets;
// - delays hold a finished completion for 1..delay_turns reaps; reordering
//   shuffles one reap's batch. Neither changes a result;
// - ecanceled (io_uring on 6.10+ only) sends a NOP in the op's place that
//   the kernel completes with -ECANCELED, as when io-wq cannot start a
//   worker: the op ran nowhere, and the driver resubmits it as it does for
//   the kernel's own (uring_driver::resubmits_after_cancel ops only). The
//   epoll driver's system calls never answer ECANCELED: there it is inert.
// Never touched: multishot ops (their results go through op_vtable::on_cqe),
// ops that close an fd, cancels, and descriptors that are none of the above
// kinds (eventfds: the runtime's own wake-ups).
#include <cstdint>
#include <string>

#include "coil/core/intrusive_list.hpp"
#include "coil/core/result.hpp"
#include "coil/io/completion.hpp"

namespace coil {

// Probabilities in [0, 1], each drawn per eligible operation.
struct fault_options {
  bool enabled = false;
  uint64_t seed = 0;
  double eio = 0;         // file I/O, fsync, fallocate fail with EIO
  double enospc = 0;      // writes, fsync, fallocate fail with ENOSPC
  double eagain = 0;      // reads, writes, sends, recvs fail with EAGAIN
  double econnreset = 0;  // sends and recvs fail with ECONNRESET
  double short_io = 0;    // reads/writes/sends/recvs move fewer bytes (or iovecs)
  double delay = 0;       // a completion is held for 1..delay_turns reaps
  double reorder = 0;     // one reap's batch is shuffled
  double ecanceled = 0;   // io_uring: the kernel answers ECANCELED without running the op
  unsigned delay_turns = 3;  // 1..7
};

// Faults injected so far (driver::faults()->stats()).
struct fault_stats {
  uint64_t ops = 0;  // operations the layer looked at
  uint64_t eio = 0;
  uint64_t enospc = 0;
  uint64_t eagain = 0;
  uint64_t econnreset = 0;
  uint64_t short_io = 0;
  uint64_t delayed = 0;
  uint64_t reordered = 0;  // batches shuffled
  uint64_t ecanceled = 0;  // ops answered ECANCELED (the driver resubmits them; not in errors())
  uint64_t errors() const noexcept { return eio + enospc + eagain + econnreset; }
};

// "SEED:KIND=P[,KIND=P...]" with KIND one of eio, enospc, eagain, econnreset,
// short, delay, reorder, ecanceled (P in [0, 1]) or delay_turns=N (1..7). Example:
// "42:eio=0.01,short=0.05,eagain=0.02,delay=0.05". On a bad spec the error
// is std::errc::invalid_argument and *why (when given) says what is wrong.
result<fault_options> parse_fault_spec(const char* spec, std::string* why = nullptr);

// The layer itself; driver calls it only when faults are enabled.
class fault_layer {
 public:
  explicit fault_layer(const fault_options& opts) noexcept;
  ~fault_layer();
  fault_layer(const fault_layer&) = delete;
  fault_layer& operator=(const fault_layer&) = delete;

  const fault_options& options() const noexcept { return opts_; }
  const fault_stats& stats() const noexcept { return stats_; }
  // Paused: operations pass untouched (set up or verify a test's data).
  // Held completions are still released on time.
  void pause(bool paused) noexcept { paused_ = paused; }
  bool paused() const noexcept { return paused_; }
  // The driver can have the kernel answer ECANCELED (io_uring that injects
  // NOP results); set by the driver facade.
  void can_inject_cancels(bool yes) noexcept { inject_cancels_ = yes; }

  // Before c goes to the real driver. True: the layer finished c itself (an
  // injected error); do not push it.
  bool on_push(completion& c) noexcept;
  // Turns what the real driver reaped (got) into what the owner sees (out):
  // releases held completions, holds some of got, shuffles the batch.
  std::size_t on_reap(intrusive_list<completion>& got, intrusive_list<completion>& out) noexcept;
  // Completions the layer holds (failed at push, or delayed): the loop must
  // not sleep on the kernel while there are any.
  bool holding() const noexcept;

 private:
  uint64_t next_push() noexcept;
  uint64_t next_reap() noexcept;
  bool draw(uint64_t r, double p) const noexcept;
  void finish(completion& c, int err) noexcept;

  static constexpr unsigned buckets = 8;
  fault_options opts_;
  fault_stats stats_;
  uint64_t push_rng_;  // push-time decisions: depend only on the sequence of pushes
  uint64_t reap_rng_;  // reap-time decisions (delays, order)
  uint64_t turn_ = 0;
  bool paused_ = false;
  bool inject_cancels_ = false;
  intrusive_list<completion> failed_;            // finished at push, reaped next
  intrusive_list<completion> delayed_[buckets];  // released at turn_ % buckets
};

}  // namespace coil
