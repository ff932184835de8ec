// Consumer smoke test for an installed coil: a kernel round trip (nop) and a
// whole-file read, the example from README.md. Exits 0 when both work.
#include <coil/coil.hpp>

#include <cstdio>
#include <span>
#include <string>

// Reads a whole file (README.md shows this function).
coil::task<coil::result<std::string>> read_file(const char* path) {
  auto f = co_await coil::file::open(path);
  if (!f) co_return coil::fail(f.error());
  auto size = co_await f->size();
  if (!size) co_return coil::fail(size.error());
  std::string data(*size, '\0');
  auto read = co_await f->read_exact_at(std::as_writable_bytes(std::span(data)), 0);
  if (!read) co_return coil::fail(read.error());
  co_return data;
}

coil::task<int> smoke(const char* path) {
  if (auto r = co_await coil::nop(); !r) {
    std::fprintf(stderr, "nop: %s\n", r.error().message().c_str());
    co_return 1;
  }
  auto data = co_await read_file(path);
  if (!data) {
    std::fprintf(stderr, "read_file(%s): %s\n", path, data.error().message().c_str());
    co_return 1;
  }
  if (data->empty()) {
    std::fprintf(stderr, "read_file(%s): read nothing\n", path);
    co_return 1;
  }
  std::printf("coil consumer: nop ok, read %zu bytes from %s\n", data->size(), path);
  co_return 0;
}

int main(int argc, char** argv) {
  auto rt = coil::runtime::create();
  if (!rt) {
    std::fprintf(stderr, "runtime::create: %s\n", rt.error().message().c_str());
    return 1;
  }
  // Reads its own executable unless told otherwise: a file that surely exists.
  return (*rt)->block_on(smoke(argc > 1 ? argv[1] : argv[0]));
}
