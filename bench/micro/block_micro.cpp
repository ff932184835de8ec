// Blocking forms: a 4 KiB read from the page cache through coil::block
// (an operation on the thread's private runtime) against pread(2). Each runs
// on a thread of its own: coil-micro's main thread owns a runtime, where
// block() refuses. Wall time (UseRealTime): the calling thread only waits.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "coil/fs/file.hpp"
#include "coil/rt/block.hpp"
#include "micro.hpp"

namespace coil_micro {
namespace {

// A 64 KiB file in the page cache, removed at exit. Benchmarks run one at a
// time, so the first call (from a benchmark's thread) races with nothing.
std::string data_path;
void remove_data_file() { ::unlink(data_path.c_str()); }
const std::string& data_file() {
  if (data_path.empty()) {
    char tmpl[] = "/tmp/coil-micro-block-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) std::abort();
    std::vector<char> bytes(64 * 1024, 'b');
    if (::pwrite(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) std::abort();
    ::close(fd);
    data_path = tmpl;
    std::atexit(remove_data_file);
  }
  return data_path;
}

void BM_block_read_4k(benchmark::State& state) {
  std::thread t([&] {
    auto f = coil::block(coil::file::open(data_file().c_str()));
    if (!f) {
      state.SkipWithError("open failed");
      return;
    }
    std::vector<std::byte> buf(4096);
    uint64_t off = 0;
    for (auto _ : state) {
      auto r = coil::block(f->read_at(buf, off));
      if (!r || *r != buf.size()) {
        state.SkipWithError("read failed");
        break;
      }
      off = (off + 4096) % (64 * 1024);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  });
  t.join();
}
BENCHMARK(BM_block_read_4k)->UseRealTime();

void BM_pread_4k(benchmark::State& state) {
  std::thread t([&] {
    const int fd = ::open(data_file().c_str(), O_RDONLY | O_CLOEXEC);
    std::vector<char> buf(4096);
    off_t off = 0;
    for (auto _ : state) {
      if (::pread(fd, buf.data(), buf.size(), off) != static_cast<ssize_t>(buf.size())) {
        state.SkipWithError("pread failed");
        break;
      }
      off = (off + 4096) % (64 * 1024);
    }
    ::close(fd);
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  });
  t.join();
}
BENCHMARK(BM_pread_4k)->UseRealTime();

}  // namespace
}  // namespace coil_micro
