// mmap_space: reads copied out of a file mapping must answer exactly what the
// file_space would (bytes, end-of-file errors), batch per turn, survive the
// file being truncated under the mapping, and leave other SIGBUS faults alone.
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "coil/packet/blocking.hpp"
#include "packet_model.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace coil::packet;
using model::ec;
using model::make_file;
using model::pattern;
using model::read_concurrently;
using model::request;



std::unique_ptr<mmap_space> open_mmap(file_space& fs, mmap_space_options opts = {}) {
  auto ms = mmap_space::open(fs, opts);
  EXPECT_TRUE(ms) << ms.error().message();
  return ms ? std::move(*ms) : nullptr;
}

// Random reads, some past the end of the file or straddling it: every byte
// and every outcome equals what a plain file_space answers.
TEST(PacketMmap, AnswersExactlyWhatTheFileAnswers) {
  test::temp_dir dir;
  const auto data = pattern(3 * 4096 + 100, 1);
  for (const bool batch : {true, false}) {
    file_space fs(make_file(dir.file("f"), data));
    file_space plain(make_file(dir.file("g"), data));
    auto ms = open_mmap(fs, mmap_space_options{.batch = batch});
    ASSERT_TRUE(ms);
    EXPECT_EQ(ms->mapped_bytes(), data.size());
    std::mt19937 rng(7);
    std::vector<request> via_map, via_file;
    for (int i = 0; i < 64; ++i) {
      const uint64_t at = rng() % (data.size() + 300);
      const std::size_t len = 1 + rng() % (i % 8 == 0 ? 9000 : 200);
      via_map.push_back({at, std::vector<std::byte>(len), {}});
      via_file.push_back({at, std::vector<std::byte>(len), {}});
    }
    test::run(read_concurrently(*ms, via_map));
    test::run(read_concurrently(plain, via_file));
    uint64_t tails = 0, heads = 0;  // reads reaching past the end of file, reads starting before it
    for (std::size_t i = 0; i < via_map.size(); ++i) {
      const request& m = via_map[i];
      const request& f = via_file[i];
      ASSERT_EQ(std::vector<failed_range>(m.result.failures().begin(), m.result.failures().end()),
                std::vector<failed_range>(f.result.failures().begin(), f.result.failures().end()))
          << "read " << i << " at " << m.address;
      ASSERT_EQ(0, std::memcmp(m.buf.data(), data.data() + m.address, m.result.ok_prefix())) << "read " << i;
      tails += m.address + m.buf.size() > data.size();
      heads += m.address < data.size();
    }
    ASSERT_GT(tails, 0u);  // the random reads did cross the end of file
    // Only the parts past the mapping went to the kernel.
    EXPECT_EQ(ms->stats().forwarded, tails);
    EXPECT_EQ(ms->stats().mapped_reads, heads);
    EXPECT_EQ(fs.stats().fragments, tails);
    EXPECT_EQ(ms->stats().batches, batch ? 1u : 0u);  // one turn, one batch
    EXPECT_EQ(ms->stats().faults, 0u);
  }
}

// Without batching, or without a runtime at all, the copy happens inside
// submit: the packet is finished when start() returns.
TEST(PacketMmap, CopiesAtOnceWithoutBatchingOrWithoutARuntime) {
  test::temp_dir dir;
  const auto data = pattern(10000, 2);
  file_space fs(make_file(dir.file("f"), data));
  auto ms = open_mmap(fs);
  ASSERT_TRUE(ms);
  std::vector<std::byte> buf(5000);
  model::bare_packet p(direction::read, buf.data(), 3000, buf.size());
  ASSERT_EQ(runtime::current(), nullptr);
  EXPECT_TRUE(p.start(*ms));
  EXPECT_TRUE(p.result().all_ok());
  EXPECT_EQ(0, std::memcmp(buf.data(), data.data() + 3000, buf.size()));

  // The blocking form: same bytes, through a private runtime.
  std::vector<std::byte> again(5000);
  auto r = read_blocking(*ms, 3000, again);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->all_ok());
  EXPECT_EQ(again, buf);
}

TEST(PacketMmap, WritesGoToTheFileAndLaterReadsSeeThem) {
  test::temp_dir dir;
  const auto data = pattern(8192, 3);
  file_space fs(make_file(dir.file("f"), data));
  auto ms = open_mmap(fs);
  ASSERT_TRUE(ms);
  const auto fresh = pattern(300, 4);
  std::vector<std::byte> back(300);
  test::run([](mmap_space& ms, const std::vector<std::byte>& fresh, std::vector<std::byte>& back) -> task<void> {
    const outcome w = co_await write(ms, 4000, fresh);
    EXPECT_TRUE(w.all_ok()) << w.first_error().message();
    const outcome r = co_await read(ms, 4000, back);
    EXPECT_TRUE(r.all_ok()) << r.first_error().message();
  }(*ms, fresh, back));
  EXPECT_EQ(back, fresh);
  EXPECT_EQ(fs.stats().kernel_ops, 1u);  // the write; the read came from the mapping
  EXPECT_EQ(ms->stats().mapped_reads, 1u);
}

// The file shrinks under the mapping: reads of the lost pages would raise
// SIGBUS. They fail with unexpected_eof instead, as the file_space says, and
// once the file grows back the same reads see its new bytes.
TEST(PacketMmap, TruncationUnderTheMappingIsAnEndOfFileNotACrash) {
  test::temp_dir dir;
  const auto data = pattern(16 * 4096, 5);
  for (const bool batch : {true, false}) {
    file_space fs(make_file(dir.file("f"), data));
    auto ms = open_mmap(fs, mmap_space_options{.batch = batch});
    ASSERT_TRUE(ms);
    const int fd = ::open(dir.file("f").c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 2 * 4096), 0);

    std::vector<request> reqs{{20000, std::vector<std::byte>(100), {}},       // a lost page
                              {100, std::vector<std::byte>(100), {}},         // still there
                              {8000, std::vector<std::byte>(192), {}},        // crosses the new end on a page boundary
                              {5 * 4096, std::vector<std::byte>(3 * 4096), {}}};  // several lost pages
    test::run(read_concurrently(*ms, reqs));
    EXPECT_EQ(reqs[0].result.first_error(), ec(errc::unexpected_eof));
    EXPECT_EQ(reqs[0].result.failed_bytes(), 100u);
    EXPECT_TRUE(reqs[1].result.all_ok());
    EXPECT_EQ(0, std::memcmp(reqs[1].buf.data(), data.data() + 100, 100));
    EXPECT_EQ(reqs[2].result.ok_prefix(), 192u);  // [8000, 8192) is below the end
    EXPECT_EQ(0, std::memcmp(reqs[2].buf.data(), data.data() + 8000, 192));
    EXPECT_EQ(reqs[3].result.failed_bytes(), 3u * 4096);
    EXPECT_EQ(ms->stats().faults, 2u);

    // Grown back with other bytes: the repaired mapping serves them.
    const auto other = pattern(data.size(), 6);
    ASSERT_EQ(::pwrite(fd, other.data(), other.size(), 0), static_cast<ssize_t>(other.size()));
    ::close(fd);
    for (auto& r : reqs) std::fill(r.buf.begin(), r.buf.end(), std::byte{0});
    const uint64_t forwarded = ms->stats().forwarded;
    test::run(read_concurrently(*ms, reqs));
    for (auto& r : reqs) {
      EXPECT_TRUE(r.result.all_ok()) << r.address << ": " << r.result.first_error().message();
      EXPECT_EQ(0, std::memcmp(r.buf.data(), other.data() + r.address, r.buf.size())) << r.address;
    }
    EXPECT_EQ(ms->stats().forwarded, forwarded);  // all from the mapping again
    EXPECT_EQ(ms->stats().faults, 2u);
  }
}

// A file truncated and regrown over and over by another thread while this one
// reads through the mapping: no crash, every outcome is all-ok or end of
// file, and every byte is the file's (the pattern, or zeros while regrowing).
TEST(PacketMmap, ReadsRacingTruncationNeverCrashOrInventBytes) {
  test::temp_dir dir;
  const auto data = pattern(64 * 4096, 7);
  file_space fs(make_file(dir.file("f"), data));
  auto ms = open_mmap(fs);
  ASSERT_TRUE(ms);
  std::atomic<bool> stop{false};
  std::thread shrinker([&] {
    const int fd = ::open(dir.file("f").c_str(), O_RDWR | O_CLOEXEC);
    while (!stop.load()) {
      if (::ftruncate(fd, 4096) != 0) break;
      if (::pwrite(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) break;
    }
    ::close(fd);
  });
  uint64_t ok = 0, eof = 0;
  test::run([](mmap_space& ms, const std::vector<std::byte>& data, uint64_t& ok, uint64_t& eof) -> task<void> {
    std::mt19937 rng(8);
    for (int round = 0; round < 200; ++round) {
      std::vector<request> reqs;
      for (int i = 0; i < 32; ++i) reqs.push_back({4096 + rng() % (data.size() - 4096 - 200), std::vector<std::byte>(200), {}});
      co_await read_concurrently(ms, reqs);
      for (const request& r : reqs) {
        const outcome& o = r.result;
        if (o.all_ok()) {
          ++ok;
        } else {
          ++eof;
          for (const failed_range& f : o.failures()) EXPECT_EQ(f.error, ec(errc::unexpected_eof));
        }
        for (uint64_t b = 0; b < o.ok_prefix(); ++b) {
          const std::byte got = r.buf[b];
          if (got != data[r.address + b] && got != std::byte{0}) {
            ADD_FAILURE() << "byte " << r.address + b << " is neither the file's nor zero";
            co_return;
          }
        }
      }
    }
  }(*ms, data, ok, eof));
  stop = true;
  shrinker.join();
  EXPECT_EQ(ok + eof, 200u * 32);
  std::printf("mapped reads ok %llu, end of file %llu, faults %llu\n", static_cast<unsigned long long>(ok),
              static_cast<unsigned long long>(eof), static_cast<unsigned long long>(ms->stats().faults));
}

// Readers destroyed (runtime shutdown) before they ran, with their reads
// queued, or after the copy: nothing is left pointing at dead packets (ASan),
// and the space keeps working.
TEST(PacketMmap, PacketsDestroyedWhileQueuedLetGo) {
  test::temp_dir dir;
  const auto data = pattern(1 << 16, 9);
  file_space fs(make_file(dir.file("f"), data));
  auto ms = open_mmap(fs);
  ASSERT_TRUE(ms);
  for (int stage = 0; stage < 4; ++stage) {
    const int finished = model::cut_off_readers(*ms, stage);
    ASSERT_GE(finished, 0);
    if (stage < 2) {
      EXPECT_EQ(finished, 0) << "stage " << stage << ": the readers were meant to be cut off";
    }
  }
  EXPECT_EQ(ms->stats().mapped_reads, 8u * 2);  // stages 2 and 3 copied; 0 and 1 never did
  std::vector<std::byte> buf(100);
  auto r = read_blocking(*ms, 500, buf);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->all_ok());
  EXPECT_EQ(0, std::memcmp(buf.data(), data.data() + 500, 100));
}

TEST(PacketMmap, OpenRefusesWhatCannotBeMapped) {
  test::temp_dir dir;
  file_space wronly(make_file(dir.file("w"), pattern(100, 10), O_WRONLY));
  auto w = mmap_space::open(wronly);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), std::error_code(EACCES, std::system_category()));

  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[1]);
  file_space pipe_space{coil::file(unique_fd(p[0]))};
  auto pm = mmap_space::open(pipe_space);
  ASSERT_FALSE(pm);
  EXPECT_EQ(pm.error(), std::make_error_code(std::errc::invalid_argument));

  // An empty file maps nothing; reads go to the file and see its end.
  file_space empty(make_file(dir.file("e"), {}));
  auto e = open_mmap(empty);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->mapped_bytes(), 0u);
  std::vector<std::byte> buf(10);
  auto r = read_blocking(*e, 0, buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first_error(), ec(errc::unexpected_eof));
}

// remap() picks up a file that grew: the new bytes come from the mapping.
TEST(PacketMmap, RemapFollowsAGrownFile) {
  test::temp_dir dir;
  auto data = pattern(5000, 11);
  file_space fs(make_file(dir.file("f"), data));
  auto ms = open_mmap(fs);
  ASSERT_TRUE(ms);
  const auto more = pattern(9000, 12);
  ASSERT_EQ(::pwrite(fs.file().fd(), more.data(), more.size(), 5000), static_cast<ssize_t>(more.size()));
  std::vector<std::byte> buf(2000);
  auto before = read_blocking(*ms, 6000, buf);  // past the mapping: the file answers
  ASSERT_TRUE(before);
  EXPECT_TRUE(before->all_ok());
  EXPECT_EQ(0, std::memcmp(buf.data(), more.data() + 1000, buf.size()));
  EXPECT_EQ(ms->stats().forwarded, 1u);
  ASSERT_TRUE(ms->remap());
  EXPECT_EQ(ms->mapped_bytes(), 14000u);
  std::fill(buf.begin(), buf.end(), std::byte{0});
  auto after = read_blocking(*ms, 6000, buf);
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->all_ok());
  EXPECT_EQ(0, std::memcmp(buf.data(), more.data() + 1000, buf.size()));
  EXPECT_EQ(ms->stats().forwarded, 1u);
  EXPECT_EQ(ms->stats().mapped_reads, 1u);
}

// A SIGBUS that is not a guarded copy (the program's own mapping of a
// truncated file) still kills the process: coil's handler passes it on.
TEST(PacketMmapDeathTest, OtherSigbusFaultsStillKill) {
  test::temp_dir dir;
  file_space fs(make_file(dir.file("f"), pattern(8192, 13)));
  auto ms = open_mmap(fs);  // installs the handler
  ASSERT_TRUE(ms);
  EXPECT_DEATH(
      {
        const int fd = ::open(dir.file("f").c_str(), O_RDWR | O_CLOEXEC);
        auto* p = static_cast<volatile char*>(::mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 0));
        if (::ftruncate(fd, 0) != 0) ::_exit(0);
        std::fprintf(stderr, "read %d\n", p[4096]);
        ::_exit(0);
      },
      "");
}

sigjmp_buf own_handler_jump;
void own_sigbus_handler(int) { siglongjmp(own_handler_jump, 1); }

// A handler the program installed before coil's still gets its faults. Runs
// in a fresh process (threadsafe death test) so coil's handler is installed
// after the program's.
TEST(PacketMmapDeathTest, TheProgramsOwnHandlerStillGetsItsFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  test::temp_dir dir;
  EXPECT_EXIT(
      {
        struct sigaction sa {};
        sa.sa_handler = own_sigbus_handler;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGBUS, &sa, nullptr);
        file_space fs(make_file(dir.file("f"), pattern(8192, 14)));
        auto ms = mmap_space::open(fs);
        if (!ms) ::_exit(1);
        const int fd = ::open(dir.file("f").c_str(), O_RDWR | O_CLOEXEC);
        auto* p = static_cast<volatile char*>(::mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 0));
        if (::ftruncate(fd, 0) != 0) ::_exit(2);
        if (sigsetjmp(own_handler_jump, 1) == 0) {
          std::fprintf(stderr, "read %d\n", p[4096]);
          ::_exit(3);
        }
        // The program's handler ran; coil's still guards its copies.
        std::vector<std::byte> buf(10);
        auto r = read_blocking(**ms, 5000, buf);
        ::_exit(r && r->first_error() == make_error_code(errc::unexpected_eof) ? 42 : 4);
      },
      ::testing::ExitedWithCode(42), "");
}

}  // namespace
