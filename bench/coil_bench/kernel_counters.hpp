#pragma once
// Kernel work counted exactly, where CPU time is too noisy to compare two
// servers that differ by a syscall: syscalls and context switches of this
// process, its threads, and the children it forks after start(). Uses perf
// software events and the raw_syscalls tracepoint, so it works in VMs without
// a PMU; unavailable (valid() false) without perf or tracefs.
#include <cstdint>

#include "coil/core/unique_fd.hpp"

namespace coil_bench {

class kernel_counters {
 public:
  struct counts {
    uint64_t syscalls = 0;
    uint64_t switches = 0;  // context switches (each sleep and each preemption)
  };
  // Starts counting now. Children count once they have exited.
  static kernel_counters start() noexcept;
  bool valid() const noexcept { return syscalls_ && switches_; }
  counts read() const noexcept;

 private:
  coil::unique_fd syscalls_;
  coil::unique_fd switches_;
};

}  // namespace coil_bench
