// Guide: signals.md. A server-shaped program that stops gracefully on
// SIGTERM, on one runtime and on several cores; it signals itself.
#include <signal.h>
#include <unistd.h>

#include <chrono>

#include <coil/coil.hpp>

#include "example_util.hpp"

namespace {

using example::check;
using namespace std::chrono_literals;

coil::task<void> serve_forever() { co_await coil::sleep_for(1h); }

// doc-begin: one
// The work runs until the first SIGINT/SIGTERM; a second one, while the
// stop drags on, ends the process as it would without coil.
coil::task<coil::result<void>> run_until_signal(coil::signal_set& sigs) {
  auto server = coil::runtime::current()->spawn(serve_forever());
  auto sig = co_await sigs.wait();
  if (!sig) co_return coil::fail(sig.error());
  std::fprintf(stderr, "got %s from pid %d: stopping\n", sigabbrev_np(sig->signo), sig->pid);
  sigs.restore_default();  // a second SIGTERM now kills the process
  server.cancel();
  co_await server;  // the graceful part: bounded by the server, not by us
  co_return {};
}

int one_core() {
  auto sigs = coil::signal_set::create({SIGINT, SIGTERM});  // before any thread starts
  if (!sigs) return 1;
  auto rt = coil::runtime::create();
  if (!rt) return 1;
  ::kill(::getpid(), SIGTERM);  // in real life: the operator, systemd, Kubernetes
  auto r = (*rt)->block_on(run_until_signal(*sigs));
  return r ? 0 : 1;
}
// doc-end: one

// doc-begin: cores
// Made before cores::run, the set's mask is every core thread's; core 0
// waits for it and stops the group.
int many_cores() {
  auto sigs = coil::signal_set::create({SIGUSR1});
  if (!sigs) return 1;
  coil::cores_options opts;
  opts.cpus = {0, 0};  // two cores, wherever this runs
  opts.pin = false;
  auto r = coil::cores::run(opts, [&sigs](unsigned core) -> coil::task<coil::result<void>> {
    return [](unsigned core, coil::signal_set& sigs) -> coil::task<coil::result<void>> {
      if (core == 0) {
        auto sig = co_await sigs.wait();
        if (!sig) co_return coil::fail(sig.error());
        coil::cores::stop();  // every core's tasks are cancelled
        co_return {};
      }
      ::kill(::getpid(), SIGUSR1);  // any thread may send it; core 0 receives it
      co_await coil::sleep_for(1h);   // ends when the group stops
      co_return {};
    }(core, *sigs);
  });
  return r ? 0 : 1;
}
// doc-end: cores

}  // namespace

int main() {
  check(one_core() == 0, "one core");
  check(many_cores() == 0, "cores");
  return example::exit_code();
}
