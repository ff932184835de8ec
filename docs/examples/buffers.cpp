// Guide: buffers.md. Where buffers live, vectored I/O, and what cancellation
// and frame destruction do to an operation that is in flight.
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include <coil/coil.hpp>

#include "example_util.hpp"

using namespace std::chrono_literals;

namespace {

using example::check;

// doc-begin: frame_buffer
// The buffer is a local of the coroutine, so it lives in the frame: valid
// for as long as any operation of this task can use it.
coil::task<coil::result<size_t>> read_header(const coil::file& f) {
  std::array<std::byte, 64> header;
  auto n = co_await f.read_at(header, 0);
  if (!n) co_return coil::fail(n.error());
  co_return *n;
}
// doc-end: frame_buffer

// doc-begin: vectored
// One readv: both buffers and the iovec array itself must stay valid until
// the operation has been awaited.
coil::task<coil::result<size_t>> read_two(const coil::file& f, std::span<std::byte> a, std::span<std::byte> b) {
  const iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  co_return co_await f.readv_at(iov, 0);
}
// doc-end: vectored

coil::task<void> reader(int fd, std::array<char, 8>& buf) {
  coil::file pipe_end{coil::unique_fd(::dup(fd))};
  (void)co_await pipe_end.read(std::as_writable_bytes(std::span(buf)));
}

// doc-begin: destroyed
// Destroying a frame whose read is in flight cancels the read and waits for
// the kernel to let go before the frame's memory is freed.
coil::task<void> destroy_mid_read(int pipe_read_end) {
  std::array<char, 8> buf{};
  {
    coil::task_group g;
    g.spawn(reader(pipe_read_end, buf));
    co_await coil::yield();  // the child starts and its read reaches the kernel
    co_await coil::yield();
  }  // ~task_group destroys the child's frame: cancel, then wait for the completion
  // No byte written to the pipe from now on can land in the dead frame.
}
// doc-end: destroyed

// doc-begin: cancel_race
coil::task<void> cancel_is_a_request(coil::file& pipe_read_end, coil::file& pipe_write_end) {
  std::array<std::byte, 8> buf{};
  auto h = coil::runtime::current()->spawn(
      [](coil::file& f, std::span<std::byte> b) -> coil::task<coil::result<size_t>> {
        co_return co_await f.read(b);
      }(pipe_read_end, buf));
  co_await coil::yield();
  auto w = co_await pipe_write_end.write(std::as_bytes(std::span("x", 1)));
  check(w && *w == 1, "pipe write");
  h.cancel();
  auto r = co_await h;
  // Either the read was cancelled, or it had already completed: then it
  // returns its real result and the byte is in buf.
  check(r ? (*r == 1 && buf[0] == std::byte{'x'}) : r.error() == std::errc::operation_canceled, "cancel race");
  if (!r) {
    auto n = co_await pipe_read_end.read(buf);  // the byte is still in the pipe
    check(n && *n == 1, "byte kept");
  }
}
// doc-end: cancel_race

// doc-begin: partial
// A write_all_at stopped by an error says how far it got: exactly that
// prefix of buf is in the file, so a retry starts where it stopped.
coil::task<coil::result<void>> write_retrying(const coil::file& f, std::span<const std::byte> buf, uint64_t offset) {
  for (int attempt = 1;; ++attempt) {
    coil::transfer_result w = co_await f.write_all_at(buf, offset);
    if (w || attempt == 100) co_return w;  // converts to result<void>
    std::printf("%zu of %zu bytes written (%s); retrying the rest\n", w.bytes_done(), buf.size(),
                w.error().message().c_str());
    buf = buf.subspan(w.bytes_done());
    offset += w.bytes_done();
  }
}
// doc-end: partial

// Under injected EIO (and short writes), the retries still write every byte.
coil::task<void> partial_writes(const char* path) {
  auto f = co_await coil::file::create(path);
  if (!f) co_return check(false, "create");
  std::vector<std::byte> data(256 * 1024);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7);
  auto w = co_await write_retrying(*f, data, 0);
  check(static_cast<bool>(w), "write_retrying");
  std::vector<std::byte> back(data.size());
  coil::runtime::current()->driver().faults()->pause(true);
  auto r = co_await f->read_exact_at(back, 0);
  check(r && back == data, "every byte written once, in place");
  check(coil::runtime::current()->driver().faults()->stats().eio > 0, "an error was injected");
}

coil::task<void> run_all(const char* path) {
  auto f = co_await coil::file::create(path);
  if (!f) {
    check(false, "create");
    co_return;
  }
  std::vector<char> data(100, 'a');
  auto w = co_await f->write_all_at(std::as_bytes(std::span(data)), 0);
  check(static_cast<bool>(w), "write");
  auto n = co_await read_header(*f);
  check(n && *n == 64, "read_header");
  std::array<std::byte, 10> a, b;
  auto v = co_await read_two(*f, a, b);
  check(v && *v == 20, "readv");

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) co_return;
  co_await destroy_mid_read(p[0]);
  check(::write(p[1], "z", 1) == 1, "write after destroy");
  char c = 0;
  check(::read(p[0], &c, 1) == 1 && c == 'z', "byte not taken by a dead read");
  coil::file rd{coil::unique_fd(p[0])}, wr{coil::unique_fd(p[1])};
  co_await cancel_is_a_request(rd, wr);
}

}  // namespace

int main() {
  example::temp_dir dir;
  auto rt = coil::runtime::create();
  if (!rt || !dir.ok()) return 1;
  (*rt)->block_on(run_all(dir.file("data").c_str()));
  rt->reset();  // one runtime per thread
  coil::runtime_options faulty;
  faulty.faults = {.enabled = true, .seed = 7, .eio = 0.1, .short_io = 0.85};
  auto frt = coil::runtime::create(faulty);
  if (!frt) return 1;
  (*frt)->block_on(partial_writes(dir.file("partial").c_str()));
  return example::exit_code();
}
