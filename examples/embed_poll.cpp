// coil inside someone else's event loop: a plain poll(2) loop owns the
// thread, watches stdin, and drives a coil runtime through its one fd.
//   embed_poll [ticks]      (type lines on stdin meanwhile)
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

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
  const int ticks = argc > 1 ? std::atoi(argv[1]) : 8;
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
    const int ms = wait_ns < 0 ? -1 : static_cast<int>((wait_ns + 999'999) / 1'000'000);
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
