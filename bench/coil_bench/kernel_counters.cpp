#include "kernel_counters.hpp"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace coil_bench {
namespace {

int open_counter(uint32_t type, uint64_t config) noexcept {
  perf_event_attr a;
  std::memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.type = type;
  a.config = config;
  a.inherit = 1;  // threads and children made from now on
  return static_cast<int>(::syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

// The tracepoint's id, from whichever tracefs mount exists; -1 if none.
long long tracepoint_id(const char* event) noexcept {
  for (const char* root : {"/sys/kernel/tracing/events/", "/sys/kernel/debug/tracing/events/"}) {
    char path[256];
    std::snprintf(path, sizeof(path), "%s%s/id", root, event);
    if (std::FILE* f = std::fopen(path, "re")) {
      long long id = -1;
      if (std::fscanf(f, "%lld", &id) != 1) id = -1;
      std::fclose(f);
      if (id >= 0) return id;
    }
  }
  return -1;
}

uint64_t read_counter(int fd) noexcept {
  uint64_t v = 0;
  return ::read(fd, &v, sizeof(v)) == static_cast<ssize_t>(sizeof(v)) ? v : 0;
}

}  // namespace

kernel_counters kernel_counters::start() noexcept {
  kernel_counters k;
  const long long id = tracepoint_id("raw_syscalls/sys_enter");
  if (id < 0) return k;
  k.syscalls_.reset(open_counter(PERF_TYPE_TRACEPOINT, static_cast<uint64_t>(id)));
  k.switches_.reset(open_counter(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES));
  return k;
}

kernel_counters::counts kernel_counters::read() const noexcept {
  if (!valid()) return {};
  return {read_counter(syscalls_.get()), read_counter(switches_.get())};
}

}  // namespace coil_bench
