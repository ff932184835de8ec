// io_uring's kernel worker threads (iou-wrk-*) stay within the configured
// cap even when thousands of buffered writes block at once.
#include <dirent.h>
#include <fcntl.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace coil;

// Counts this process's threads named iou-wrk-*.
unsigned iou_workers() {
  unsigned n = 0;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string path = std::string("/proc/self/task/") + e->d_name + "/comm";
    if (std::FILE* f = std::fopen(path.c_str(), "re")) {
      char comm[64] = {};
      if (std::fgets(comm, sizeof comm, f) != nullptr && std::strncmp(comm, "iou-wrk", 7) == 0) ++n;
      std::fclose(f);
    }
  }
  ::closedir(d);
  return n;
}

TEST(IoWq, TwoThousandBufferedWritesStayWithinTheWorkerCap) {
  COIL_REQUIRE_URING();
  test::temp_dir dir;
  runtime_options opts;
  opts.uring.entries = 4096;
  opts.uring.iowq_max_workers[0] = 1;
  opts.uring.iowq_max_workers[1] = 1;
  unsigned peak = 0, cap = 0;
  int ok = 0;
  test::run([&]() -> task<void> {
    auto* rt = runtime::current();
    cap = rt->driver().iowq_max_workers()[0];
    std::vector<file> files;
    for (int i = 0; i < 2000; ++i) {
      std::string name = "f";  // appends: g++ 12 -O3 warns falsely (-Wrestrict) on "f" + string
      name += std::to_string(i);
      auto f = co_await file::create(dir.file(name).c_str());
      if (!f) {
        ADD_FAILURE() << f.error().message();
        co_return;
      }
      files.push_back(std::move(*f));
    }
    static char block[64 * 1024];
    std::memset(block, 'w', sizeof block);
    std::vector<join_handle<void>> hs;
    for (auto& f : files) {
      hs.push_back(rt->spawn([](file& f, int& ok) -> task<void> {
        // Appends and syncs: buffered writes that go to io-wq workers.
        auto w = co_await f.write_all_at(std::as_bytes(std::span(block)), 0);
        auto s = co_await f.fdatasync();
        if (w && s) ++ok;
      }(f, ok)));
    }
    for (int i = 0; i < 50 && ok < 2000; ++i) {
      co_await sleep_for(std::chrono::milliseconds(2));
      peak = std::max(peak, iou_workers());
    }
    for (auto& h : hs) co_await h;
  }(), opts);
  EXPECT_EQ(cap, 1u) << "kernel refused IORING_REGISTER_IOWQ_MAX_WORKERS";
  EXPECT_EQ(ok, 2000);
  // One worker per class (bounded, unbounded). The kernel's own default here
  // is 4 per CPU, so without the cap the fdatasyncs spawn more.
  EXPECT_LE(peak, 2u) << "iou-wrk threads exceeded the cap";
}

}  // namespace
