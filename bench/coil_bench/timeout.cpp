// timeout: with_timeout over single operations, the cost per timed op.
// Mode expire: every op times out (a read of an empty pipe); mode complete:
// every op finishes first (a nop). The default form is with_timeout(op, d):
// a timer in the runtime, when_any's two children and a cancel; --baseline
// link awaits link(op, link_timeout(d)) instead: the kernel times the op
// (io_uring IORING_OP_LINK_TIMEOUT).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <span>
#include <system_error>
#include <vector>

#include "benches.hpp"
#include "coil/fs/file.hpp"
#include "coil/rt/link.hpp"
#include "coil/rt/op.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/when.hpp"

namespace coil_bench {
namespace {

struct timeout_shared {
  bool stop = false;
  uint64_t ops = 0;
  uint64_t errors = 0;  // a result other than the mode's
};

coil::task<void> timeout_worker(const timeout_config& cfg, timeout_shared& s) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    ++s.errors;
    co_return;
  }
  coil::file rd{coil::unique_fd(p[0])};
  coil::unique_fd wr(p[1]);
  std::byte buf[16];
  const coil::duration_ns d = cfg.expire ? std::chrono::microseconds(cfg.timeout_us) : std::chrono::seconds(10);
  while (!s.stop) {
    bool as_expected;
    if (cfg.expire) {
      if (cfg.link_form) {
        auto [r, t] = co_await coil::link(rd.read(buf), coil::link_timeout(d));
        as_expected = !r && r.error() == std::errc::timed_out;
      } else {
        auto r = co_await coil::with_timeout(rd.read(buf), d);
        as_expected = !r && r.error() == std::errc::timed_out;
      }
    } else {
      if (cfg.link_form) {
        auto [r, t] = co_await coil::link(coil::nop(), coil::link_timeout(d));
        as_expected = r && t;
      } else {
        auto r = co_await coil::with_timeout(coil::nop(), d);
        as_expected = static_cast<bool>(r);
      }
    }
    if (!as_expected) ++s.errors;
    ++s.ops;
  }
}

coil::task<void> timeout_main(const timeout_config& cfg, progress* prog, timeout_shared& s, measured& m) {
  coil::runtime& rt = *coil::runtime::current();
  std::vector<coil::join_handle<void>> workers;
  workers.reserve(cfg.tasks);
  const run_clock clock;
  for (uint64_t i = 0; i < cfg.tasks; ++i) workers.push_back(rt.spawn(timeout_worker(cfg, s)));
  co_await stop_after(cfg.seconds, s.stop, prog, s.ops, "ops/s");
  for (auto& w : workers) co_await w;
  clock.stop(m);
}

}  // namespace

timeout_result run_timeout_coil(const timeout_config& cfg, progress* prog) {
  timeout_result out;
  auto rt = coil::runtime::create();
  if (!rt) {
    std::fprintf(stderr, "coil-bench: runtime::create: %s\n", rt.error().message().c_str());
    std::exit(1);
  }
  timeout_shared s;
  (*rt)->block_on(timeout_main(cfg, prog, s, out));
  out.ops = s.ops;
  out.errors = s.errors;
  out.stats = (*rt)->stats();
  return out;
}

}  // namespace coil_bench
