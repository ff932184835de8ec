// Guide: tuning.md. Ring and pool sizes, registered files and buffers, and
// the counters to look at. Every knob here degrades gracefully: the epoll
// driver ignores what it has no use for.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include <coil/coil.hpp>

#include "example_util.hpp"

namespace {

using example::check;

// doc-begin: options
coil::runtime_options tuned() {
  coil::runtime_options opts;
  opts.uring.entries = 1024;               // SQ size; the CQ gets twice as many
  opts.uring.iowq_max_workers[0] = 4;      // kernel workers for regular-file I/O
  opts.uring.iowq_max_workers[1] = 16;     // ... for sockets and pipes
  opts.uring.sqpoll = false;               // true: a kernel thread polls the SQ (spends a CPU)
  opts.epoll.workers = 8;                  // fallback driver: threads for blocking file ops
  opts.aio.capacity = 256;                 // O_DIRECT on AIO: requests the kernel owns at once
  return opts;
}
// doc-end: options

// doc-begin: registered
// Registered files skip the kernel's per-operation fd lookup; registered
// buffers skip page pinning. On epoll the slot is the fd and the buffer
// index is ignored, so this code runs on either driver.
coil::task<coil::result<void>> registered(int fd) {
  coil::driver& drv = coil::runtime::current()->driver();
  auto slot = drv.register_file(fd);
  if (!slot) co_return coil::fail(slot.error());
  static char pool[4096];  // registered memory must outlive its registration
  auto index = drv.register_buffer(pool, sizeof pool);
  if (!index) co_return coil::fail(index.error());

  using fixed_write = coil::ops::fixed<coil::ops::write>;
  auto w = co_await coil::op_awaiter<fixed_write>(fixed_write(coil::ops::write{fd, "registered", 10, 0}, *slot));
  if (!w) co_return coil::fail(w.error());
  auto r = co_await coil::op_awaiter<coil::ops::read_fixed>(coil::ops::read_fixed{{fd, pool, 10, 0}, *index});
  if (!r) co_return coil::fail(r.error());
  check(*r == 10 && std::memcmp(pool, "registered", 10) == 0, "fixed read");

  drv.unregister_buffer(*index);
  drv.unregister_file(*slot);
  co_return {};
}
// doc-end: registered

// doc-begin: stats
void print_stats(const coil::runtime& rt) {
  const coil::runtime_stats s = rt.stats();
  std::printf("turns %llu, parks %llu, ops %llu, system calls %llu, waited for room %llu, on workers %llu\n",
              static_cast<unsigned long long>(s.loop_turns), static_cast<unsigned long long>(s.parks),
              static_cast<unsigned long long>(s.io.completed), static_cast<unsigned long long>(s.io.enter_calls),
              static_cast<unsigned long long>(s.io.queued_for_space),
              static_cast<unsigned long long>(s.io.offloaded));
}
// doc-end: stats

// doc-begin: inflight
// Operations per opcode, and what the driver holds right now. Call on the
// runtime's own thread (from a signal: a signal_set, as examples/echo_server).
void print_ops(coil::runtime& rt) {
  const coil::driver_stats s = rt.stats().io;
  for (std::size_t op = 0; op < coil::opcode_slots; ++op) {
    const coil::op_counts& c = s.by_opcode[op];
    if (c.pushed == 0) continue;
    std::printf("%s: %llu pushed, %llu completed\n", coil::opcode_name(static_cast<uint8_t>(op)),
                static_cast<unsigned long long>(c.pushed), static_cast<unsigned long long>(c.completed));
  }
  std::printf("%.1f submissions per system call, %llu cancels\n", s.batching_factor(),
              static_cast<unsigned long long>(s.cancels));
  rt.dump_in_flight(stdout);  // "coil: N operations pending", then one line each
}
// doc-end: inflight

}  // namespace

int main() {
  // doc-begin: pools
  coil::set_blocking_pool_threads(4);  // spawn_blocking's bound; before its first use only
  // doc-end: pools
  example::temp_dir dir;
  const int fd = ::open(dir.file("data").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return 1;
  {
    auto rt = coil::runtime::create(tuned());
    if (!rt) return 1;
    auto r = (*rt)->block_on(registered(fd));
    if (!r) std::fprintf(stderr, "registered: %s\n", r.error().message().c_str());
    check(static_cast<bool>(r), "registered");
    print_stats(**rt);
    print_ops(**rt);
  }
  ::close(fd);
  return example::exit_code();
}
