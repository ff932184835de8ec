// coil inside someone else's event loop: a plain poll(2) loop owns the
// thread, watches stdin, and drives a coil runtime through its one fd.
//   embed_poll [ticks]      (type lines on stdin meanwhile)
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "args.hpp"
#include "coil/coil.hpp"

using namespace std::chrono_literals;

// Work on coil's side: timers and file reads, all async.
coil::task<void> ticker(int ticks, bool& done) {
  for (int i = 1; i <= ticks; ++i) {
    co_await coil::sleep_for(250ms);
    char buf[64] = {};
    auto f = co_await coil::file::open("/proc/loadavg");
    if (f) {
      auto n = co_await f->read_at(std::as_writable_bytes(std::span(buf, sizeof buf - 1)), 0);
      if (n && *n > 0) buf[*n - 1] = '\0';
    }
    std::printf("coil: tick %d/%d, loadavg %s\n", i, ticks, buf);
  }
  done = true;
}

int main(int argc, char** argv) {
  const auto ticks_arg = argc == 1   ? std::optional<long long>(8)
                         : argc == 2 ? parse_count(argv[1], 1, 10'000)
                                     : std::nullopt;
  if (!ticks_arg) return usage("embed_poll [TICKS (1-10000, default 8)]");
  const int ticks = static_cast<int>(*ticks_arg);
  auto rt = coil::runtime::create();
  if (!rt) {
    std::fprintf(stderr, "embed_poll: %s\n", rt.error().message().c_str());
    return 1;
  }
  auto fd = (*rt)->embed_fd();
  if (!fd) {
    std::fprintf(stderr, "embed_poll: %s\n", fd.error().message().c_str());
    return 1;
  }
  bool done = false;
  auto h = (*rt)->spawn(ticker(ticks, done));
  std::printf("host: driving coil (%s driver) from poll(2); type lines\n", coil::to_string((*rt)->driver().kind()));
  bool stdin_open = true;
  while (!done) {
    const int64_t wait_ns = (*rt)->poll_once();  // run what is ready; how long may we sleep?
    if (done) break;
    pollfd fds[2] = {{*fd, POLLIN, 0}, {stdin_open ? STDIN_FILENO : -1, POLLIN, 0}};
    const int ms = coil::poll_timeout_ms(wait_ns);  // rounded up, saturated
    if (::poll(fds, 2, ms) < 0) continue;
    if (fds[1].revents & (POLLIN | POLLHUP)) {
      char line[256];
      const ssize_t n = ::read(STDIN_FILENO, line, sizeof line);
      if (n <= 0) {
        stdin_open = false;
      } else {
        std::printf("host: read %zd bytes from stdin\n", n);
      }
    }
  }
  std::printf("host: coil finished\n");
  return 0;
}
