#pragma once
#include <cstddef>
#include <cstdint>

namespace coil {

// Per-opcode counts live in a fixed array (no allocation, one increment per
// op): io_uring opcodes below opcode_slots - 1 have their own slot, any
// higher one shares the last.
inline constexpr std::size_t opcode_slots = 64;
constexpr std::size_t opcode_slot(uint8_t opcode) noexcept {
  return opcode < opcode_slots - 1 ? opcode : opcode_slots - 1;
}
// The io_uring name of an opcode ("read", "recv", "async_cancel"...);
// "unknown" for one newer than this build.
const char* opcode_name(uint8_t opcode) noexcept;
// CLOCK_MONOTONIC_COARSE in ms (wraps after 49 days; differences stay
// right): the runtime reads it once per loop turn, operations stamp
// themselves with that value (runtime::stamp_ms) for listings.
uint32_t coarse_clock_ms() noexcept;

struct op_counts {
  uint64_t pushed = 0;     // handed to push()
  uint64_t completed = 0;  // final completions reaped
};

// Counters every driver keeps (io_uring, epoll).
struct driver_stats {
  uint64_t pushed = 0;             // operations handed to push()
  uint64_t submitted = 0;          // io_uring: SQEs the kernel accepted (ops + cancels); epoll: syscalls tried
  uint64_t completed = 0;          // completions reaped for operations
  uint64_t enter_calls = 0;        // blocking/submitting system calls (io_uring_enter, epoll_wait)
  uint64_t queued_for_space = 0;   // io_uring: pushes that waited for SQ/CQ room
  uint64_t link_chains = 0;        // io_uring: link chains handed to the kernel
  uint64_t readiness_waits = 0;    // epoll: operations that waited for their fd to be ready
  uint64_t cq_overflows = 0;       // io_uring: reaps that found CQEs the full CQ could not take (kernel-held)
  uint64_t offloaded = 0;          // epoll: operations run on a worker thread
  uint64_t extra_results = 0;      // results of multishot ops that stay armed (CQEs with F_MORE)
  uint64_t cancels = 0;            // cancel() calls that found the operation pending
  uint64_t eager = 0;              // io_uring: sends done with one direct system call on an eager turn (not in pushed)
  uint64_t inline_reads = 0;       // io_uring: positional reads done by one preadv2(RWF_NOWAIT) (not in pushed)
  uint64_t drained_skips = 0;      // epoll: TCP reads that waited for readiness without a recv (queue known empty)
  uint64_t cancel_retries = 0;     // io_uring: ops resubmitted after an ECANCELED nobody asked for (io-wq had no worker)
  uint32_t in_flight_max = 0;      // high-water mark of kernel-owned entries
  // By io_uring opcode (index with opcode_slot()); the epoll driver counts
  // the same ops the same way. Their sums equal pushed and completed.
  op_counts by_opcode[opcode_slots] = {};

  const op_counts& of(uint8_t opcode) const noexcept { return by_opcode[opcode_slot(opcode)]; }
  // Kernel submissions per system call (ops + cancels per io_uring_enter;
  // on epoll, attempts per epoll_wait): near 1 means no batching.
  double batching_factor() const noexcept {
    return enter_calls == 0 ? 0.0 : static_cast<double>(submitted) / static_cast<double>(enter_calls);
  }
};

// One operation a driver holds (queued, with the kernel or on a worker), as
// listed by the drivers' for_each_pending and runtime::pending_ops().
struct pending_op_info {
  uint8_t opcode = 0;
  int32_t fd = -1;        // the descriptor it targets (-1: none)
  bool in_flight = false;  // with the kernel or a worker thread (else waiting in user space)
  static constexpr uint32_t unknown_age = ~uint32_t{0};
  uint32_t age_ms = unknown_age;  // since awaited (coarse clock, within one loop turn); unknown_age: not recorded
  const char* task = nullptr;  // the owning task's name (set_task_name), if any
};

}  // namespace coil
