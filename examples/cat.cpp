// cat FILE...
//
// Writes each FILE to standard output, in order. Both sides use the file
// position (read()/write() rather than offsets), so FILE may be a pipe or a
// device and standard output may be a terminal or a pipe.
#include <unistd.h>

#include <cstdio>
#include <span>
#include <vector>

#include "coil/coil.hpp"

namespace {

void report(const char* path, const std::error_code& ec) {
  std::fprintf(stderr, "cat: %s: %s\n", path, ec.message().c_str());
}

// A pipe or terminal may take less than offered: loop until all of it is out.
coil::task<coil::result<void>> write_all(const coil::file& out, std::span<const std::byte> data) {
  while (!data.empty()) {
    auto n = co_await out.write(data);
    if (!n) co_return coil::fail(n.error());
    if (*n == 0) co_return coil::fail(coil::errc::write_zero);
    data = data.subspan(*n);
  }
  co_return {};
}

coil::task<int> cat(std::span<char*> paths) {
  // Our own duplicate of fd 1: closing it leaves the process's stdout alone.
  coil::file out{coil::unique_fd(::dup(STDOUT_FILENO))};
  if (!out.is_open()) {
    report("stdout", coil::errno_code(errno));
    co_return 1;
  }
  std::vector<std::byte> buf(128 << 10);
  int status = 0;
  for (const char* path : paths) {
    auto in = co_await coil::file::open(path);
    if (!in) {
      report(path, in.error());
      status = 1;  // like cat(1): carry on with the next file
      continue;
    }
    for (;;) {
      auto n = co_await in->read(buf);
      if (!n) {
        report(path, n.error());
        status = 1;
        break;
      }
      if (*n == 0) break;  // end of file
      auto w = co_await write_all(out, std::span(buf).first(*n));
      if (!w) {
        report("stdout", w.error());
        co_return 1;
      }
    }
  }
  co_return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cat FILE...\n");
    return 2;
  }
  auto rt = coil::runtime::create();
  if (!rt) {
    report("runtime", rt.error());
    return 1;
  }
  return (*rt)->block_on(cat(std::span(argv + 1, static_cast<size_t>(argc - 1))));
}
