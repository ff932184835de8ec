// scatter: many small object reads from one file, a fraction of them adjacent
// to the previous one (--locality), the rest at random object-aligned offsets.
// Four implementations read the same offset sequence into the same object
// slots in one run: coil's packet layer on a file_space (kernel reads,
// coalescing), a plain pread loop, raw io_uring with one read SQE per object
// (batched submission, no coalescing), and coil's packet layer on an
// mmap_space (copies out of a mapping of the file). The file is warmed into the page cache first,
// so the numbers measure the per-read path, not the device.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "benches.hpp"
#include "coil/packet/file_space.hpp"
#include "coil/packet/mmap_space.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/time.hpp"
#include "raw_ring.hpp"

namespace coil_bench {
namespace {

struct scatter_config {
  std::string path;
  uint64_t file_size = uint64_t{1} << 30;
  bool file_size_given = false;
  uint64_t reads = 100'000;  // objects per round
  uint64_t size = 64;        // bytes per object
  double locality = 0.5;     // chance that a read follows the previous one
  uint64_t qd = 256;         // reads in flight (coil tasks, io_uring SQEs)
  double seconds = 3;
  int cpu = -1;
  std::string only;  // run one implementation (for profiling); ratios need all of them
  bool mmap_batch = true;  // mmap_space_options::batch
};

struct scatter_result : measured {
  uint64_t reads = 0;
  uint64_t kernel_ops = 0;
  uint64_t errors = 0;  // failed or short reads, wrong bytes
  std::string failure;
  double reads_per_s() const noexcept { return seconds > 0 ? static_cast<double>(reads) / seconds : 0; }
  double ops_per_read() const noexcept { return reads > 0 ? static_cast<double>(kernel_ops) / static_cast<double>(reads) : 0; }
};

// The workload: object i is read from offsets[i] into slot i of the output.
struct workload {
  std::vector<uint64_t> offsets;
  uint64_t adjacent = 0;  // reads that follow the previous one
};

workload make_workload(const scatter_config& cfg) {
  workload w;
  w.offsets.resize(cfg.reads);
  const uint64_t objects = cfg.file_size / cfg.size;
  const auto threshold = static_cast<uint64_t>(cfg.locality * 18446744073709551615.0);
  rng r(0x5ca7);
  uint64_t prev = r.below(objects);
  for (uint64_t i = 0; i < cfg.reads; ++i) {
    uint64_t obj;
    if (i > 0 && prev + 1 < objects && r.next() < threshold) {
      obj = prev + 1;
      ++w.adjacent;
    } else {
      obj = r.below(objects);
    }
    w.offsets[i] = obj * cfg.size;
    prev = obj;
  }
  return w;
}

// Reads every object once with pread and compares the slots: the check is
// outside the timed part and proves each implementation read the right bytes.
uint64_t count_wrong(int fd, const scatter_config& cfg, const workload& w, const std::vector<std::byte>& out,
                     uint64_t rounds_done) {
  if (rounds_done == 0) return 0;  // never finished a round: slots are partial
  std::vector<std::byte> want(cfg.size);
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < cfg.reads; ++i) {
    const ssize_t n = ::pread(fd, want.data(), cfg.size, static_cast<off_t>(w.offsets[i]));
    if (n != static_cast<ssize_t>(cfg.size) || std::memcmp(want.data(), out.data() + i * cfg.size, cfg.size) != 0) {
      ++wrong;
    }
  }
  return wrong;
}

// ---- coil: packets on a file_space ---------------------------------------------------

struct coil_shared {
  const scatter_config* cfg;
  const workload* w;
  std::byte* out;
  uint64_t next = 0;  // the next object to read
  uint64_t reads = 0;
  uint64_t errors = 0;
  bool stop = false;
};

// Each reader takes the next object in sequence, so the reads a turn starts
// are consecutive in the workload, as if one caller issued them in order.
// Unbatched reads from a mapping finish without suspending, so those readers
// yield every 64 reads to let the clock run.
template <class Space>
coil::task<void> coil_reader(Space& space, coil_shared& s) {
  const bool finishes_inline = std::is_same_v<Space, coil::packet::mmap_space> && !s.cfg->mmap_batch;
  const uint64_t size = s.cfg->size;
  uint64_t until_yield = 64;
  while (!s.stop) {
    const uint64_t i = s.next;
    s.next = i + 1 == s.cfg->reads ? 0 : i + 1;  // no division: the baselines wrap the same way
    const coil::packet::outcome o =
        co_await coil::packet::read(space, s.w->offsets[i], std::span(s.out + i * size, size));
    s.errors += !o.all_ok();
    ++s.reads;
    if (finishes_inline && --until_yield == 0) {
      until_yield = 64;
      co_await coil::yield();
    }
  }
}

template <class Space>
coil::task<void> coil_main(const scatter_config& cfg, Space& space, coil_shared& s, progress* prog, measured& m) {
  coil::runtime& rt = *coil::runtime::current();
  std::vector<coil::join_handle<void>> readers;
  readers.reserve(cfg.qd);
  const run_clock clock;
  for (uint64_t i = 0; i < cfg.qd; ++i) readers.push_back(rt.spawn(coil_reader(space, s)));
  co_await stop_after(cfg.seconds, s.stop, prog, s.reads, "reads/s");
  for (auto& h : readers) co_await h;
  clock.stop(m);
}

// coil's packet layer over a file_space (kernel reads, coalesced), or over an
// mmap_space on top of it (copies out of a mapping of the file).
template <bool mapped>
scatter_result run_coil(const scatter_config& cfg, const workload& w, std::vector<std::byte>& out, int fd,
                        progress* prog) {
  scatter_result r;
  auto rt = coil::runtime::create();
  if (!rt) {
    r.failure = "runtime::create: " + rt.error().message();
    return r;
  }
  int own = ::dup(fd);
  if (own < 0) {
    r.failure = std::string("dup: ") + std::strerror(errno);
    return r;
  }
  coil::packet::file_space fs{coil::file(coil::unique_fd(own))};
  coil_shared s{&cfg, &w, out.data()};
  if constexpr (mapped) {
    coil::packet::mmap_space_options opts;
    opts.batch = cfg.mmap_batch;
    auto ms = coil::packet::mmap_space::open(fs, opts);
    if (!ms) {
      r.failure = "mmap_space::open: " + ms.error().message();
      return r;
    }
    (*rt)->block_on(coil_main(cfg, **ms, s, prog, r));
  } else {
    (*rt)->block_on(coil_main(cfg, fs, s, prog, r));
  }
  r.reads = s.reads;
  r.errors = s.errors;
  r.kernel_ops = fs.stats().kernel_ops;
  return r;
}

// ---- baselines ---------------------------------------------------------------------

// The baselines' clock: redraws the progress line, says when time is up.
class deadline {
 public:
  deadline(const run_clock& c, double seconds, progress* prog) noexcept
      : start_(c.start_ns()), end_(start_ + static_cast<int64_t>(seconds * 1e9)), prog_(prog) {}
  bool passed(uint64_t reads) const noexcept {
    const int64_t now = now_ns();
    if (prog_ != nullptr) {
      const double elapsed = static_cast<double>(now - start_) * 1e-9;
      prog_->update(elapsed, static_cast<double>(reads) / elapsed, "reads/s");
    }
    return now >= end_;
  }

 private:
  int64_t start_, end_;
  progress* prog_;
};

scatter_result run_pread(const scatter_config& cfg, const workload& w, std::vector<std::byte>& out, int fd,
                         progress* prog) {
  scatter_result r;
  const run_clock clock;
  const deadline until(clock, cfg.seconds, prog);
  uint64_t i = 0;
  do {
    // The clock every 64 reads: well under 1% of a pread.
    for (int k = 0; k < 64; ++k, i = i + 1 == cfg.reads ? 0 : i + 1) {
      const ssize_t n = ::pread(fd, out.data() + i * cfg.size, cfg.size, static_cast<off_t>(w.offsets[i]));
      r.errors += n != static_cast<ssize_t>(cfg.size);
    }
    r.reads += 64;
  } while (!until.passed(r.reads));
  clock.stop(r);
  r.kernel_ops = r.reads;
  return r;
}

// Raw io_uring, one read SQE per object: qd SQEs per io_uring_enter, which
// waits for all of them (page-cache reads complete inline anyway).
scatter_result run_uring(const scatter_config& cfg, const workload& w, std::vector<std::byte>& out, int fd,
                         progress* prog) {
  scatter_result r;
  io_uring ring;
  unsigned entries = 256;
  while (entries < cfg.qd) entries *= 2;
  if (int e = setup_raw_ring(ring, entries); e < 0) {
    r.failure = std::string("io_uring_queue_init: ") + std::strerror(-e);
    return r;
  }
  const auto qd = static_cast<unsigned>(cfg.qd);
  std::vector<io_uring_cqe*> cqes(qd);
  uint64_t i = 0;
  const run_clock clock;
  const deadline until(clock, cfg.seconds, prog);
  do {
    for (unsigned k = 0; k < qd; ++k, i = i + 1 == cfg.reads ? 0 : i + 1) {
      io_uring_prep_read(io_uring_get_sqe(&ring), fd, out.data() + i * cfg.size, static_cast<unsigned>(cfg.size),
                         w.offsets[i]);
    }
    if (int ret = io_uring_submit_and_wait(&ring, qd); ret < 0) {
      r.failure = std::string("io_uring_submit_and_wait: ") + std::strerror(-ret);
      break;
    }
    for (unsigned got = 0; got < qd;) {
      unsigned n = io_uring_peek_batch_cqe(&ring, cqes.data(), qd - got);
      if (n == 0) {
        io_uring_cqe* c = nullptr;
        if (io_uring_wait_cqe(&ring, &c) < 0) break;
        continue;
      }
      for (unsigned k = 0; k < n; ++k) r.errors += cqes[k]->res != static_cast<int>(cfg.size);
      io_uring_cq_advance(&ring, n);
      got += n;
    }
    r.reads += qd;
  } while (!until.passed(r.reads));
  clock.stop(r);
  io_uring_queue_exit(&ring);
  r.kernel_ops = r.reads;
  return r;
}

// ---- arguments (scatter's --size is the object size, so it parses its own) -----------------

bool parse_scatter(int argc, char** argv, scatter_config& cfg) {
  for (int i = 2; i < argc; ++i) {
    const std::string name = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "coil-bench scatter: %s needs a value\n", name.c_str());
      return false;
    }
    const char* v = argv[++i];
    char* end = nullptr;
    bool ok = true;
    if (name == "--file") {
      cfg.path = v;
    } else if (name == "--only") {
      cfg.only = v;
      ok = cfg.only == "coil" || cfg.only == "coil-mmap" || cfg.only == "pread" || cfg.only == "uring";
    } else if (name == "--seconds") {
      ok = parse_seconds(v, cfg.seconds, 86'400);
    } else if (name == "--locality") {
      const double d = std::strtod(v, &end);
      ok = end != v && *end == '\0' && d >= 0 && d <= 1;
      cfg.locality = d;
    } else if (name == "--mmap-batch") {
      ok = std::strcmp(v, "0") == 0 || std::strcmp(v, "1") == 0;
      cfg.mmap_batch = v[0] == '1';
    } else if (name == "--reads") {
      ok = parse_u64(v, cfg.reads, 1, 100'000'000);  // one offset each, allocated up front
    } else if (name == "--size") {
      ok = parse_u64(v, cfg.size, 1, 1 << 20);
    } else if (name == "--qd") {
      ok = parse_u64(v, cfg.qd, 1, 4096);
    } else if (name == "--file-size") {
      ok = parse_u64(v, cfg.file_size, 1, uint64_t{1} << 40);
      cfg.file_size_given = true;
    } else if (name == "--cpu") {
      uint64_t n = 0;
      ok = parse_u64(v, n, 0, CPU_SETSIZE - 1);
      cfg.cpu = static_cast<int>(n);
    } else {
      std::fprintf(stderr, "coil-bench scatter: unknown option %s\n", name.c_str());
      return false;
    }
    if (!ok) {
      std::fprintf(stderr, "coil-bench scatter: bad value for %s: '%s'\n", name.c_str(), v);
      print_usage(stderr);
      return false;
    }
  }
  if (cfg.size > (1 << 20) || cfg.file_size < cfg.size * 2) {
    std::fprintf(stderr, "coil-bench scatter: --size must be at most 1M and the file at least two objects\n");
    return false;
  }
  return true;
}

}  // namespace

scatter_step_result run_scatter_step(const std::string& path, uint64_t file_size, const char* impl, double seconds,
                                     progress* prog) {
  scatter_config cfg;
  cfg.path = path;
  cfg.file_size = file_size;
  cfg.seconds = seconds;
  scatter_step_result out;
  if (file_size < cfg.size * 2) {
    out.failure = "the data file is too small";
    return out;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    out.failure = "open " + path + ": " + std::strerror(errno);
    return out;
  }
  coil::unique_fd owned(fd);
  const workload w = make_workload(cfg);
  std::vector<std::byte> slots(cfg.reads * cfg.size);
  std::memset(slots.data(), 0, slots.size());
  scatter_result r = std::strcmp(impl, "pread") == 0 ? run_pread(cfg, w, slots, fd, prog)
                                                     : run_coil<true>(cfg, w, slots, fd, prog);
  if (r.failure.empty()) r.errors += count_wrong(fd, cfg, w, slots, r.reads / cfg.reads);
  out.seconds = r.seconds;
  out.cpu_seconds = r.cpu_seconds;
  out.reads = r.reads;
  out.errors = r.errors;
  out.failure = r.failure;
  return out;
}

int cmd_scatter(int argc, char** argv) {
  scatter_config cfg;
  if (!parse_scatter(argc, argv, cfg)) return 2;
  if (cfg.cpu >= 0 && !pin_to_cpu(cfg.cpu)) {
    std::fprintf(stderr, "coil-bench: cannot pin to CPU %d: %s\n", cfg.cpu, std::strerror(errno));
    return 1;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const bool own_file = cfg.path.empty();
  if (own_file) cfg.path = default_data_path();
  // A file the user named is never replaced; --file-size applies when creating it.
  auto size = ensure_data_file(cfg.path, own_file || cfg.file_size_given ? std::optional(cfg.file_size) : std::nullopt,
                               own_file);
  if (!size) return 1;
  cfg.file_size = *size;
  if (cfg.file_size < cfg.size * 2) {
    std::fprintf(stderr, "coil-bench scatter: %s is too small\n", cfg.path.c_str());
    return 2;
  }
  std::fprintf(stderr, "  warming the page cache (reading %s once)\n", cfg.path.c_str());
  if (!warm_page_cache(cfg.path)) std::fprintf(stderr, "coil-bench: warming failed: %s\n", std::strerror(errno));
  const int fd = ::open(cfg.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "coil-bench: open %s: %s\n", cfg.path.c_str(), std::strerror(errno));
    return 1;
  }
  coil::unique_fd owned(fd);
  const workload w = make_workload(cfg);
  std::printf("scatter: %s (%s), %llu reads of %llu bytes per round, %.1f%% adjacent to the previous one, "
              "%llu in flight\n",
              cfg.path.c_str(), human_bytes(cfg.file_size).c_str(), static_cast<unsigned long long>(cfg.reads),
              static_cast<unsigned long long>(cfg.size), 100.0 * static_cast<double>(w.adjacent) / static_cast<double>(cfg.reads),
              static_cast<unsigned long long>(cfg.qd));
  std::vector<std::byte> out(cfg.reads * cfg.size);
  std::memset(out.data(), 0, out.size());  // fault the pages in before timing
  using runner = scatter_result (*)(const scatter_config&, const workload&, std::vector<std::byte>&, int, progress*);
  const std::pair<const char*, runner> impls[] = {
      {"coil", run_coil<false>}, {"pread", run_pread}, {"uring", run_uring}, {"coil-mmap", run_coil<true>}};
  double rate[4] = {};
  int status = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    if (!cfg.only.empty() && cfg.only != impls[k].first) continue;
    std::memset(out.data(), 0, out.size());
    scatter_result r;
    {
      progress prog(std::string("scatter ") + impls[k].first, cfg.seconds);
      r = impls[k].second(cfg, w, out, fd, &prog);
    }
    if (!r.failure.empty()) {
      std::fprintf(stderr, "coil-bench: scatter %s: %s\n", impls[k].first, r.failure.c_str());
      return 1;
    }
    r.errors += count_wrong(fd, cfg, w, out, r.reads / cfg.reads);
    rate[k] = r.reads_per_s();
    std::printf("scatter %s: %.2f s: %s reads/s, %.3f kernel ops per read, %.0f ns of CPU time per read, errors %llu\n",
                impls[k].first, r.seconds, human(r.reads_per_s()).c_str(), r.ops_per_read(),
                r.reads > 0 ? 1e9 * r.cpu_seconds / static_cast<double>(r.reads) : 0.0,
                static_cast<unsigned long long>(r.errors));
    json_object j;
    j.add("bench", "scatter").add("impl", impls[k].first).add("reads_per_s", r.reads_per_s());
    j.add("kernel_ops_per_read", r.ops_per_read()).add("seconds", r.seconds).add("cpu_seconds", r.cpu_seconds);
    j.add("errors", r.errors);
    std::printf("%s\n", j.str().c_str());
    if (r.errors != 0) status = 1;
  }
  if (!cfg.only.empty()) return status;
  json_object sum;
  sum.add("bench", "scatter").add("impl", "ratios").add("coil_vs_pread", rate[0] / rate[1]);
  sum.add("coil_vs_uring", rate[0] / rate[2]).add("coil_mmap_vs_pread", rate[3] / rate[1]);
  sum.add("coil_mmap_vs_uring", rate[3] / rate[2]).add("reads", cfg.reads).add("size", cfg.size);
  sum.add("locality", cfg.locality).add("qd", cfg.qd).add("file_size", cfg.file_size);
  std::printf("%s\n", sum.str().c_str());
  return status;
}

}  // namespace coil_bench
