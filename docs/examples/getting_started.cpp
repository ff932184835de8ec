// Guide: getting-started.md. Counts the lines of a file (argv[1], or a
// three-line sample it writes itself).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "example_util.hpp"

// doc-begin: count_lines
#include <coil/coil.hpp>

// Counts the lines of a file, 64 KiB at a time. Every step gives a result:
// a value, or an error code.
coil::task<coil::result<size_t>> count_lines(const char* path) {
  auto f = co_await coil::file::open(path);
  if (!f) co_return coil::fail(f.error());
  std::vector<std::byte> chunk(64 * 1024);  // owned by the frame: valid across every await
  size_t lines = 0;
  for (uint64_t offset = 0;;) {
    auto n = co_await f->read_at(chunk, offset);  // may be short; 0 at end of file
    if (!n) co_return coil::fail(n.error());
    if (*n == 0) break;
    lines += std::count(chunk.begin(), chunk.begin() + *n, std::byte{'\n'});
    offset += *n;
  }
  co_return lines;  // f closes here
}
// doc-end: count_lines

int main(int argc, char** argv) {
  example::temp_dir dir;
  const std::string sample = dir.file("sample");
  if (std::FILE* out = std::fopen(sample.c_str(), "w")) {
    std::fputs("one\ntwo\nthree\n", out);
    std::fclose(out);
  }
  const char* path = argc > 1 ? argv[1] : sample.c_str();
  // doc-begin: main
  auto rt = coil::runtime::create();  // the calling thread's runtime
  if (!rt) {
    std::fprintf(stderr, "runtime: %s\n", rt.error().message().c_str());
    return 1;
  }
  auto lines = (*rt)->block_on(count_lines(path));
  if (!lines) {
    std::fprintf(stderr, "%s: %s\n", path, lines.error().message().c_str());
    return 1;
  }
  std::printf("%zu lines (driver: %s)\n", *lines, coil::to_string((*rt)->driver().kind()));
  // doc-end: main
  example::check(argc > 1 || *lines == 3, "count_lines");
  return example::exit_code();
}
