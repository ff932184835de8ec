#pragma once
// Ring setup for the raw liburing baselines. It mirrors what coil's driver
// asks for (same SQ/CQ sizes, same flags, same fallbacks, registered ring
// fd), so a coil/raw ratio measures the library, not a different ring.
#include <cerrno>

#include <liburing.h>

namespace coil_bench {

// Returns 0 or -errno, like liburing. entries: SQ size; the CQ gets twice as
// many (coil's default is 256/512).
inline int setup_raw_ring(io_uring& ring, unsigned entries) {
  const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  const unsigned attempts[] = {
      base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      base | IORING_SETUP_COOP_TASKRUN,
      base,
      IORING_SETUP_CQSIZE,
  };
  int ret = -EINVAL;
  for (unsigned flags : attempts) {
    io_uring_params p{};
    p.flags = flags;
    p.cq_entries = entries * 2;
    ret = io_uring_queue_init_params(entries, &ring, &p);
    if (ret != -EINVAL) break;
  }
  if (ret < 0) return ret;
  (void)io_uring_register_ring_fd(&ring);  // optional speedup, as in coil
  return 0;
}

// 0 if a raw ring can be set up here, else -errno (EPERM where seccomp or
// kernel.io_uring_disabled blocks io_uring; coil itself then runs on epoll).
inline int probe_raw_ring() {
  io_uring ring;
  const int r = setup_raw_ring(ring, 8);
  if (r == 0) io_uring_queue_exit(&ring);
  return r;
}

}  // namespace coil_bench
