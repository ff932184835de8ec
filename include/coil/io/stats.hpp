#pragma once
#include <cstdint>

namespace coil {

// Counters every driver keeps (io_uring, epoll).
struct driver_stats {
  uint64_t pushed = 0;             // operations handed to push()
  uint64_t submitted = 0;          // io_uring: SQEs the kernel accepted (ops + cancels); epoll: syscalls tried
  uint64_t completed = 0;          // completions reaped for operations
  uint64_t enter_calls = 0;        // blocking/submitting system calls (io_uring_enter, epoll_wait)
  uint64_t queued_for_space = 0;   // io_uring: pushes that waited for SQ/CQ room; epoll: waits for readiness
  uint64_t cq_overflows = 0;       // io_uring: reaps that found CQEs the full CQ could not take (kernel-held)
  uint64_t offloaded = 0;          // epoll: operations run on a worker thread
  uint64_t extra_results = 0;      // results of multishot ops that stay armed (CQEs with F_MORE)
  uint32_t in_flight_max = 0;      // high-water mark of kernel-owned entries
};
using uring_stats = driver_stats;

}  // namespace coil
