// copy_file SRC DST [--qd N] [--bs N]
//
// Copies SRC to DST with N chunks in flight: N worker tasks each take the next
// unclaimed chunk, read it, write it at the same offset, and repeat. Then DST
// is fsynced and the throughput printed. Sizes accept a k or m suffix.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "coil/coil.hpp"

namespace {

struct options {
  const char* src = nullptr;
  const char* dst = nullptr;
  size_t queue_depth = 8;
  size_t block_size = 1 << 20;
};

// "4096", "64k", "1m"; at least 1 and at most max.
bool parse_size(const char* s, size_t max, size_t& out) {
  if (!std::isdigit(static_cast<unsigned char>(*s))) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0) return false;
  if (*end == 'k' || *end == 'K') {
    v <<= 10;
    ++end;
  } else if (*end == 'm' || *end == 'M') {
    v <<= 20;
    ++end;
  }
  if (*end != '\0' || v == 0 || v > max) return false;
  out = static_cast<size_t>(v);
  return true;
}

bool parse_args(int argc, char** argv, options& o) {
  std::vector<const char*> paths;
  for (int i = 1; i < argc; ++i) {
    const bool qd = std::strcmp(argv[i], "--qd") == 0, bs = std::strcmp(argv[i], "--bs") == 0;
    if (qd || bs) {
      if (i + 1 == argc) return false;
      if (!parse_size(argv[++i], qd ? 4096 : size_t{1} << 30, qd ? o.queue_depth : o.block_size)) return false;
    } else {
      paths.push_back(argv[i]);
    }
  }
  if (paths.size() != 2) return false;
  o.src = paths[0];
  o.dst = paths[1];
  return true;
}

int report(const char* what, const char* path, const std::error_code& ec) {
  std::fprintf(stderr, "copy_file: %s %s: %s\n", what, path, ec.message().c_str());
  return 1;
}

// Shared by the workers. One thread runs them all, so plain fields suffice.
struct copy_job {
  const coil::file& src;
  const coil::file& dst;
  uint64_t size;
  size_t block_size;
  uint64_t next = 0;  // offset of the first chunk nobody has claimed
  std::error_code read_error, write_error;
  bool failed() const { return read_error || write_error; }
};

coil::task<void> worker(copy_job& job) {
  std::vector<std::byte> buf(job.block_size);
  while (!job.failed() && job.next < job.size) {
    const uint64_t offset = job.next;
    const size_t len = static_cast<size_t>(std::min<uint64_t>(job.block_size, job.size - offset));
    job.next += len;
    const auto chunk = std::span(buf).first(len);
    auto r = co_await job.src.read_exact_at(chunk, offset);  // unexpected_eof if SRC shrank
    if (!r) {
      job.read_error = r.error();
      co_return;
    }
    auto w = co_await job.dst.write_all_at(chunk, offset);
    if (!w) {
      job.write_error = w.error();
      co_return;
    }
  }
}

coil::task<int> copy(const options& o) {
  auto src = co_await coil::file::open(o.src, O_RDONLY);
  if (!src) co_return report("open", o.src, src.error());
  struct ::statx src_st {}, dst_st {};
  auto st = co_await src->stat(&src_st);
  if (!st) co_return report("stat", o.src, st.error());
  // Opening DST truncates it: refuse when it is SRC under another name.
  auto dst_exists = co_await coil::stat(o.dst, &dst_st);
  if (dst_exists && dst_st.stx_ino == src_st.stx_ino && dst_st.stx_dev_major == src_st.stx_dev_major &&
      dst_st.stx_dev_minor == src_st.stx_dev_minor) {
    std::fprintf(stderr, "copy_file: %s and %s are the same file\n", o.src, o.dst);
    co_return 1;
  }
  auto dst = co_await coil::file::open(o.dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!dst) co_return report("create", o.dst, dst.error());

  const uint64_t size = src_st.stx_size;
  if (size > 0) {
    // Reserving the space up front avoids fragmentation. Best effort: not
    // every file system (or device) can, and the copy works without it.
    (void)co_await dst->fallocate(0, size);
  }

  const auto start = std::chrono::steady_clock::now();
  copy_job job{*src, *dst, size, o.block_size};
  const uint64_t chunks = (size + o.block_size - 1) / o.block_size;
  std::vector<coil::join_handle<void>> workers;
  for (uint64_t i = 0; i < std::min<uint64_t>(o.queue_depth, chunks); ++i) {
    workers.push_back(coil::runtime::current()->spawn(worker(job)));
  }
  for (auto& w : workers) co_await w;
  if (job.read_error) co_return report("read", o.src, job.read_error);
  if (job.write_error) co_return report("write", o.dst, job.write_error);

  auto sync = co_await dst->fsync();
  if (!sync) co_return report("fsync", o.dst, sync.error());
  // close can report a late write error (e.g. on NFS), so check it too.
  auto closed = co_await dst->close();
  if (!closed) co_return report("close", o.dst, closed.error());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const double mib = static_cast<double>(size) / (1 << 20);
  std::printf("copied %.1f MiB in %.3f s: %.1f MiB/s (qd %zu, bs %zu)\n", mib, secs, secs > 0 ? mib / secs : 0.0,
              o.queue_depth, o.block_size);
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (!parse_args(argc, argv, o)) {
    std::fprintf(stderr, "usage: copy_file SRC DST [--qd N (1-4096)] [--bs N[k|m] (up to 1g)]\n");
    return 2;
  }
  auto rt = coil::runtime::create();
  if (!rt) {
    std::fprintf(stderr, "copy_file: starting the runtime: %s\n", rt.error().message().c_str());
    return 1;
  }
  return (*rt)->block_on(copy(o));
}
