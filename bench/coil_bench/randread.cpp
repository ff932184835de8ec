// randread: random block-aligned reads over one file, QD operations in
// flight. With a warm page cache this measures the submission path (the copy
// out of the page cache is the same for all three implementations); with
// --direct it measures the device.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "benches.hpp"
#include "coil/fs/direct_file.hpp"
#include "coil/fs/file.hpp"
#include "coil/rt/runtime.hpp"
#include "raw_ring.hpp"

namespace coil_bench {
namespace {

// Opens the data file for one run; failure is reported in the result.
int open_data(const randread_config& cfg, randread_result& out) {
  const int flags = O_RDONLY | O_CLOEXEC | (cfg.direct ? O_DIRECT : 0);
  int fd = ::open(cfg.path.c_str(), flags);
  if (fd < 0) {
    out.failure = "open " + cfg.path + (cfg.direct ? " (O_DIRECT)" : "") + ": " + std::strerror(errno);
  }
  return fd;
}

// Every reader gets its own buffer, aligned for O_DIRECT either way so the
// buffered and direct runs differ only in the open flag.
std::vector<aligned_buffer> make_buffers(const randread_config& cfg, randread_result& out) {
  std::vector<aligned_buffer> bufs;
  bufs.reserve(cfg.qd);
  for (uint64_t i = 0; i < cfg.qd; ++i) {
    bufs.push_back(make_aligned_buffer(cfg.bs));
    if (!bufs.back()) {
      out.failure = "out of memory for buffers";
      bufs.clear();
      break;
    }
  }
  return bufs;
}

uint64_t block_count(const randread_config& cfg) { return cfg.file_size / cfg.bs; }

// ---- coil -------------------------------------------------------------------------

struct read_shared {
  bool stop = false;
  uint64_t reads = 0;
  uint64_t errors = 0;
};

// F: coil::file, or coil::direct_file (--direct with --driver: checks
// alignment, then io_uring or Linux AIO).
template <class F>
coil::task<void> reader(const F& f, std::span<std::byte> buf, uint64_t blocks, uint64_t seed, read_shared& s) {
  rng r(seed);
  while (!s.stop) {
    const uint64_t off = r.below(blocks) * buf.size();
    auto n = co_await f.read_at(buf, off);
    if (!n || *n != buf.size()) ++s.errors;
    ++s.reads;
  }
}

template <class F>
coil::task<void> randread_main(const randread_config& cfg, const F& f, std::vector<aligned_buffer>& bufs,
                               progress* prog, read_shared& s, measured& m) {
  coil::runtime& rt = *coil::runtime::current();
  std::vector<coil::join_handle<void>> readers;
  readers.reserve(cfg.qd);
  const run_clock clock;
  for (uint64_t i = 0; i < cfg.qd; ++i) {
    readers.push_back(rt.spawn(reader(f, {bufs[i].get(), cfg.bs}, block_count(cfg), i + 1, s)));
  }
  co_await stop_after(cfg.seconds, s.stop, prog, s.reads, "IOPS");
  for (auto& h : readers) co_await h;
  clock.stop(m);
}

}  // namespace

randread_result run_randread_coil(const randread_config& cfg, progress* prog) {
  randread_result out;
  int fd = open_data(cfg, out);
  if (fd < 0) return out;
  coil::unique_fd owned(fd);
  auto bufs = make_buffers(cfg, out);
  if (bufs.empty()) return out;
  coil::runtime_options ro;
  if (cfg.driver == "uring") ro.driver = coil::driver_kind::uring;
  if (cfg.driver == "epoll") ro.driver = coil::driver_kind::epoll;
  if (cfg.submit_batch) {
    ro.uring.submit_batch = *cfg.submit_batch;
    ro.aio.submit_batch = *cfg.submit_batch;
  }
  if (cfg.device_submit_batch) ro.uring.device_submit_batch = *cfg.device_submit_batch;
  if (cfg.inline_reads) ro.uring.inline_reads = *cfg.inline_reads;
  auto rt = coil::runtime::create(ro);
  if (!rt) {
    out.failure = "runtime::create: " + rt.error().message();
    return out;
  }
  read_shared s;
  if (cfg.direct && !cfg.driver.empty()) {
    const auto engine = cfg.driver == "aio" ? coil::dio_engine::aio : coil::dio_engine::uring;
    auto f = coil::direct_file::adopt(std::move(owned), {.engine = engine});
    if (!f) {
      out.failure = "direct_file: " + f.error().message();
      return out;
    }
    (*rt)->block_on(randread_main(cfg, *f, bufs, prog, s, out));
  } else {
    coil::file f{std::move(owned)};
    (*rt)->block_on(randread_main(cfg, f, bufs, prog, s, out));
  }
  out.reads = s.reads;
  out.errors = s.errors;
  out.stats = (*rt)->stats();
  return out;
}

// ---- raw liburing -------------------------------------------------------------------

randread_result run_randread_uring(const randread_config& cfg, progress* prog) {
  randread_result out;
  int fd = open_data(cfg, out);
  if (fd < 0) return out;
  coil::unique_fd owned(fd);
  auto bufs = make_buffers(cfg, out);
  if (bufs.empty()) return out;
  io_uring ring;
  unsigned entries = 256;  // coil's default SQ size, grown to fit the queue depth
  while (entries < cfg.qd) entries *= 2;
  if (int r = setup_raw_ring(ring, entries); r < 0) {
    out.failure = std::string("io_uring_queue_init: ") + std::strerror(-r);
    return out;
  }
  const uint64_t blocks = block_count(cfg);
  rng r(1);
  unsigned queued = 0;  // SQEs not yet submitted, for --submit-batch
  const unsigned batch = cfg.submit_batch.value_or(0);
  // user_data is the slot index: the buffer to read into and to reuse.
  auto queue_read = [&](uint64_t slot) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_read(sqe, fd, bufs[slot].get(), static_cast<unsigned>(cfg.bs), r.below(blocks) * cfg.bs);
    io_uring_sqe_set_data64(sqe, slot);
    if (batch != 0 && ++queued >= batch) {
      (void)io_uring_submit(&ring);
      queued = 0;
    }
  };
  for (uint64_t slot = 0; slot < cfg.qd; ++slot) queue_read(slot);
  std::vector<io_uring_cqe*> cqes(cfg.qd);
  uint64_t in_flight = cfg.qd;
  bool stopping = false;
  const run_clock clock;
  const int64_t start = clock.start_ns();
  const int64_t end = start + static_cast<int64_t>(cfg.seconds * 1e9);
  while (in_flight > 0) {
    // One system call per batch: submits every read queued since the last one.
    queued = 0;
    if (int ret = io_uring_submit_and_wait(&ring, 1); ret < 0 && ret != -EINTR) {
      out.failure = std::string("io_uring_submit_and_wait: ") + std::strerror(-ret);
      break;
    }
    const unsigned n = io_uring_peek_batch_cqe(&ring, cqes.data(), static_cast<unsigned>(cfg.qd));
    for (unsigned i = 0; i < n; ++i) {
      out.errors += cqes[i]->res != static_cast<int>(cfg.bs);
      ++out.reads;
      if (stopping) {
        --in_flight;
      } else {
        queue_read(cqes[i]->user_data);
      }
    }
    io_uring_cq_advance(&ring, n);
    if (!stopping) {
      const int64_t now = now_ns();
      if (prog != nullptr) {
        const double elapsed = static_cast<double>(now - start) * 1e-9;
        prog->update(elapsed, static_cast<double>(out.reads) / elapsed, "IOPS");
      }
      stopping = now >= end;
    }
  }
  clock.stop(out);
  io_uring_queue_exit(&ring);
  return out;
}

// ---- plain pread ------------------------------------------------------------------------

randread_result run_randread_pread(const randread_config& cfg, progress* prog) {
  randread_result out;
  int fd = open_data(cfg, out);
  if (fd < 0) return out;
  coil::unique_fd owned(fd);
  aligned_buffer buf = make_aligned_buffer(cfg.bs);
  const uint64_t blocks = block_count(cfg);
  rng r(1);
  const run_clock clock;
  const int64_t start = clock.start_ns();
  const int64_t end = start + static_cast<int64_t>(cfg.seconds * 1e9);
  for (;;) {
    // Reading the clock every 64 reads keeps its cost below 1% of a pread.
    for (int i = 0; i < 64; ++i) {
      const ssize_t n = ::pread(fd, buf.get(), cfg.bs, static_cast<off_t>(r.below(blocks) * cfg.bs));
      out.errors += n != static_cast<ssize_t>(cfg.bs);
    }
    out.reads += 64;
    const int64_t now = now_ns();
    if (prog != nullptr) {
      const double elapsed = static_cast<double>(now - start) * 1e-9;
      prog->update(elapsed, static_cast<double>(out.reads) / elapsed, "IOPS");
    }
    if (now >= end) break;
  }
  clock.stop(out);
  return out;
}

// ---- a peer library -----------------------------------------------------------------------

randread_result run_randread_peer(const randread_config& cfg, const std::string& impl) {
  randread_result out;
  if (cfg.direct || !cfg.driver.empty() || cfg.submit_batch || cfg.device_submit_batch || cfg.inline_reads) {
    out.failure = impl + " runs buffered reads with its own defaults (no --direct, --driver or batch options)";
    return out;
  }
  std::string text;
  out.failure = run_peer(impl, {"randread", cfg.path, std::to_string(cfg.bs), std::to_string(cfg.qd),
                                std::to_string(cfg.seconds)},
                         text);
  if (!out.failure.empty()) return out;
  unsigned long long reads = 0, errors = 0;
  if (std::sscanf(text.c_str(), "%llu %llu %lf %lf", &reads, &errors, &out.seconds, &out.cpu_seconds) != 4) {
    out.failure = "coil-peer-" + impl + " printed no result: " + text;
    return out;
  }
  out.reads = reads;
  out.errors = errors;
  return out;
}

}  // namespace coil_bench
