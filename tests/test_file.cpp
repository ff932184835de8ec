// coil::file against real files, pipes and devices on a real io_uring.
// Every test checks the data as well as the result, and reads files back
// through plain POSIX calls where that makes the check independent of coil.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::as_writable;



// Deterministic bytes with no short period, so a misplaced offset shows.
std::vector<char> pattern(size_t n, uint32_t seed) {
  std::vector<char> v(n);
  uint32_t x = seed * 0x9E3779B9u + 0x7F4A7C15u;
  for (char& c : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x >> 24);
  }
  return v;
}

// Compares without printing megabytes on failure.
::testing::AssertionResult same_bytes(std::span<const char> got, std::span<const char> want) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "size " << got.size() << ", expected " << want.size();
  }
  auto [g, w] = std::mismatch(got.begin(), got.end(), want.begin());
  if (g == got.end()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "first difference at byte " << (g - got.begin()) << ": got "
                                       << int(static_cast<unsigned char>(*g)) << ", expected "
                                       << int(static_cast<unsigned char>(*w));
}

using test::fails_with;

std::vector<char> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::vector<char>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << path;
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

struct pipe_pair {
  file r, w;
};
pipe_pair make_pipe() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  return {file(unique_fd(fds[0])), file(unique_fd(fds[1]))};
}

// Wakes reads blocked on an eventfd if the test is still stuck after
// `after`, so a regression fails the test instead of hanging it.
class rescuer {
 public:
  rescuer(const test::blocking_eventfd& ev, std::chrono::milliseconds after)
      : thread_([this, &ev, after] {
          std::unique_lock lock(mutex_);
          if (cv_.wait_for(lock, after, [this] { return done_; })) return;
          rescued_ = true;
          ev.wake(1 << 20);
        }) {}
  ~rescuer() { finish(); }
  // Stops the watchdog; true if it had to step in.
  bool finish() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return rescued_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  bool rescued_ = false;
  std::thread thread_;  // last: starts once the members it uses exist
};

// ---- round trips --------------------------------------------------------------

TEST(FileIo, WriteReadRoundTripSizes) {
  test::temp_dir dir;
  for (size_t size : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, (size_t{1} << 20) + 3}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string path = dir.file("rt" + std::to_string(size));
    const auto data = pattern(size, static_cast<uint32_t>(size));
    test::run([&]() -> task<void> {
      auto f = co_await file::create(path.c_str());
      CO_ASSERT_OK(f);
      auto w = co_await f->write_at(as_bytes(data), 0);
      CO_ASSERT_OK(w);
      EXPECT_EQ(*w, size);
      std::vector<char> back(size + 16, '\x5a');  // room to see an overlong read
      auto r = co_await f->read_at(as_writable(back), 0);
      CO_ASSERT_OK(r);
      EXPECT_EQ(*r, size);
      EXPECT_TRUE(same_bytes(std::span(back).first(size), data));
      EXPECT_TRUE(std::all_of(back.begin() + static_cast<ptrdiff_t>(size), back.end(), [](char c) { return c == '\x5a'; }));
      auto sz = co_await f->size();
      CO_ASSERT_OK(sz);
      EXPECT_EQ(*sz, size);
    }());
    EXPECT_TRUE(same_bytes(slurp(path), data));  // independent of coil
  }
}

TEST(FileIo, OffsetsHolesAndOverwrites) {
  test::temp_dir dir;
  const std::string path = dir.file("offsets");
  const auto a = pattern(100, 1), b = pattern(5000, 2), c = pattern(333, 3);
  test::run([&]() -> task<void> {
    auto f = co_await file::create(path.c_str());
    CO_ASSERT_OK(f);
    // Out of order, leaving a hole between 100 and 4096.
    auto wb = co_await f->write_at(as_bytes(b), 4096);
    auto wa = co_await f->write_at(as_bytes(a), 0);
    auto wc = co_await f->write_at(as_bytes(c), 4096 + 1000);  // overwrites the middle of b
    CO_ASSERT_OK(wa);
    CO_ASSERT_OK(wb);
    CO_ASSERT_OK(wc);
    EXPECT_EQ(*wa + *wb + *wc, a.size() + b.size() + c.size());

    std::vector<char> hole(4096 - 100, '\x11');
    auto rh = co_await f->read_at(as_writable(hole), 100);
    CO_ASSERT_OK(rh);
    EXPECT_EQ(*rh, hole.size());
    EXPECT_TRUE(std::all_of(hole.begin(), hole.end(), [](char ch) { return ch == 0; }));

    std::vector<char> mid(10);  // straddles the end of c and the rest of b
    auto rm = co_await f->read_at(as_writable(mid), 4096 + 1000 + 333 - 5);
    CO_ASSERT_OK(rm);
    EXPECT_EQ(*rm, 10u);
    std::vector<char> want(10);  // copies, not insert: g++ 12 -O3 warns falsely on the growth
    std::copy(c.end() - 5, c.end(), want.begin());
    std::copy(b.begin() + 1333, b.begin() + 1338, want.begin() + 5);
    EXPECT_TRUE(same_bytes(mid, want));
  }());
  std::vector<char> want(4096 + b.size(), 0);
  std::copy(a.begin(), a.end(), want.begin());
  std::copy(b.begin(), b.end(), want.begin() + 4096);
  std::copy(c.begin(), c.end(), want.begin() + 4096 + 1000);
  EXPECT_TRUE(same_bytes(slurp(path), want));
}

TEST(FileIo, VectoredScatterGather) {
  test::temp_dir dir;
  const std::string path = dir.file("vec");
  // Pieces of unrelated sizes from separate buffers, one of them empty.
  const auto p0 = pattern(1, 10), p1 = pattern(7, 11), p2 = pattern(4096, 12), p3 = pattern(300, 13);
  std::vector<char> all;
  for (const auto* p : {&p0, &p1, &p2, &p3}) all.insert(all.end(), p->begin(), p->end());
  constexpr uint64_t base = 123;
  test::run([&]() -> task<void> {
    auto f = co_await file::create(path.c_str());
    CO_ASSERT_OK(f);
    const iovec out[] = {{const_cast<char*>(p0.data()), p0.size()},
                         {const_cast<char*>(p1.data()), p1.size()},
                         {nullptr, 0},
                         {const_cast<char*>(p2.data()), p2.size()},
                         {const_cast<char*>(p3.data()), p3.size()}};
    auto w = co_await f->writev_at(out, base);
    CO_ASSERT_OK(w);
    EXPECT_EQ(*w, all.size());

    // Scatter into differently cut buffers, plus room past the end of file.
    std::vector<char> s0(5, '#'), s1(4000, '#'), s2(all.size() - 4005 + 50, '#');
    const iovec in[] = {{s0.data(), s0.size()}, {s1.data(), s1.size()}, {s2.data(), s2.size()}};
    auto r = co_await f->readv_at(in, base);
    CO_ASSERT_OK(r);
    EXPECT_EQ(*r, all.size());
    EXPECT_TRUE(same_bytes(s0, std::span(all).subspan(0, 5)));
    EXPECT_TRUE(same_bytes(s1, std::span(all).subspan(5, 4000)));
    EXPECT_TRUE(same_bytes(std::span(s2).first(all.size() - 4005), std::span(all).subspan(4005)));
    EXPECT_TRUE(std::all_of(s2.end() - 50, s2.end(), [](char ch) { return ch == '#'; }));

    // A vector read starting mid-file at an odd offset.
    std::vector<char> t0(3), t1(9);
    const iovec in2[] = {{t0.data(), t0.size()}, {t1.data(), t1.size()}};
    auto r2 = co_await f->readv_at(in2, base + 6);
    CO_ASSERT_OK(r2);
    EXPECT_EQ(*r2, 12u);
    std::vector<char> joined(t0);
    joined.insert(joined.end(), t1.begin(), t1.end());
    EXPECT_TRUE(same_bytes(joined, std::span(all).subspan(6, 12)));
  }());
  auto disk = slurp(path);
  ASSERT_EQ(disk.size(), base + all.size());
  EXPECT_TRUE(std::all_of(disk.begin(), disk.begin() + base, [](char ch) { return ch == 0; }));
  EXPECT_TRUE(same_bytes(std::span(disk).subspan(base), all));
}

TEST(FileIo, LargeWriteAllReadExact) {
  test::temp_dir dir;
  const std::string path = dir.file("big");
  const size_t size = size_t{64} << 20;
  const auto data = pattern(size, 64);
  test::run([&]() -> task<void> {
    auto f = co_await file::create(path.c_str());
    CO_ASSERT_OK(f);
    auto w = co_await f->write_all_at(as_bytes(data), 0);
    CO_ASSERT_OK(w);
    auto sz = co_await f->size();
    CO_ASSERT_OK(sz);
    EXPECT_EQ(*sz, size);
    std::vector<char> back(size);
    auto r = co_await f->read_exact_at(as_writable(back), 0);
    CO_ASSERT_OK(r);
    EXPECT_TRUE(same_bytes(back, data));
    // And an unaligned window in the middle.
    std::vector<char> win(3 << 20);
    auto r2 = co_await f->read_exact_at(as_writable(win), 12345677);
    CO_ASSERT_OK(r2);
    EXPECT_TRUE(same_bytes(win, std::span(data).subspan(12345677, win.size())));
  }());
  EXPECT_TRUE(same_bytes(slurp(path), data));
}

TEST(FileIo, ShortPositionalWritesAtFileSizeLimit) {
  // RLIMIT_FSIZE is the one way to get a short write on a regular file: a
  // write crossing the limit stops there and the next one fails with EFBIG.
  // write_all_at must continue at the right offset and report that error.
  test::temp_dir dir;
  const std::string path = dir.file("limit");
  const auto data = pattern(20000, 6);
  constexpr size_t limit = 8292;
  struct sigaction ign {}, old_sig {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ign, &old_sig), 0);
  rlimit old_lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_lim), 0);
  rlimit lim = old_lim;
  lim.rlim_cur = limit;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  result<size_t> first = 0;
  result<void> all;
  test::run([&]() -> task<void> {
    auto f = co_await file::create(path.c_str());
    CO_ASSERT_OK(f);
    first = co_await f->write_at(as_bytes(data), 0);
    all = co_await f->write_all_at(as_bytes(data), 4000);
  }());
  ::setrlimit(RLIMIT_FSIZE, &old_lim);
  ::sigaction(SIGXFSZ, &old_sig, nullptr);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(*first, limit);
  EXPECT_TRUE(fails_with(all, std::errc::file_too_large));
  std::vector<char> want(data.begin(), data.begin() + 4000);
  want.insert(want.end(), data.begin(), data.begin() + (limit - 4000));
  EXPECT_TRUE(same_bytes(slurp(path), want));
}

TEST(FileIo, ShortReadsAtEof) {
  test::temp_dir dir;
  const std::string path = dir.file("eof");
  const auto data = pattern(100, 5);
  spit(path, data);
  test::run([&]() -> task<void> {
    auto f = co_await file::open(path.c_str());
    CO_ASSERT_OK(f);
    std::vector<char> buf(50, '!');
    auto at_end = co_await f->read_at(as_writable(buf), 100);
    CO_ASSERT_OK(at_end);
    EXPECT_EQ(*at_end, 0u);
    auto past_end = co_await f->read_at(as_writable(buf), 1 << 30);
    CO_ASSERT_OK(past_end);
    EXPECT_EQ(*past_end, 0u);
    EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](char c) { return c == '!'; }));

    auto straddle = co_await f->read_at(as_writable(buf), 80);
    CO_ASSERT_OK(straddle);
    EXPECT_EQ(*straddle, 20u);
    EXPECT_TRUE(same_bytes(std::span(buf).first(20), std::span(data).subspan(80)));
    EXPECT_TRUE(std::all_of(buf.begin() + 20, buf.end(), [](char c) { return c == '!'; }));

    auto exact_over = co_await f->read_exact_at(as_writable(buf), 80);
    EXPECT_TRUE(fails_with(exact_over, errc::unexpected_eof));
    auto exact_past = co_await f->read_exact_at(as_writable(buf), 100);
    EXPECT_TRUE(fails_with(exact_past, errc::unexpected_eof));
    std::vector<char> tail(20);
    auto exact_to_end = co_await f->read_exact_at(as_writable(tail), 80);
    EXPECT_TRUE(exact_to_end) << exact_to_end.error().message();
    EXPECT_TRUE(same_bytes(tail, std::span(data).subspan(80)));
    // Zero bytes never fail, even at EOF.
    auto empty = co_await f->read_exact_at({}, 100);
    EXPECT_TRUE(empty);
  }());
}

TEST(FileIo, FilePositionReadWrite) {
  // read()/write() without an offset use and advance the file position, also
  // on regular files.
  test::temp_dir dir;
  const std::string path = dir.file("pos");
  test::run([&]() -> task<void> {
    auto f = co_await file::create(path.c_str());
    CO_ASSERT_OK(f);
    auto w1 = co_await f->write(as_bytes("hello "));
    auto w2 = co_await f->write(as_bytes("world"));
    CO_ASSERT_OK(w1);
    CO_ASSERT_OK(w2);
    EXPECT_EQ(*w1 + *w2, 11u);
    EXPECT_EQ(::lseek(f->fd(), 0, SEEK_CUR), 11);
    EXPECT_EQ(::lseek(f->fd(), 2, SEEK_SET), 2);
    std::vector<char> a(3), b(3);
    auto r1 = co_await f->read(as_writable(a));
    auto r2 = co_await f->read(as_writable(b));
    CO_ASSERT_OK(r1);
    CO_ASSERT_OK(r2);
    EXPECT_EQ(std::string(a.begin(), a.end()) + std::string(b.begin(), b.end()), "llo wo");
    // Positional reads neither use nor move the position.
    std::vector<char> c(2);
    auto r3 = co_await f->read_at(as_writable(c), 0);
    CO_ASSERT_OK(r3);
    EXPECT_EQ(std::string(c.begin(), c.end()), "he");
    EXPECT_EQ(::lseek(f->fd(), 0, SEEK_CUR), 8);
  }());
  auto disk = slurp(path);
  EXPECT_EQ(std::string(disk.begin(), disk.end()), "hello world");
}

// ---- metadata, sync, allocation, close -------------------------------------------

TEST(FileMeta, FsyncAndFdatasync) {
  test::temp_dir dir;
  const std::string path = dir.file("sync");
  const auto data = pattern(10000, 9);
  test::run([&]() -> task<void> {
    auto f = co_await file::create(path.c_str());
    CO_ASSERT_OK(f);
    auto w = co_await f->write_all_at(as_bytes(data), 0);
    CO_ASSERT_OK(w);
    auto s1 = co_await f->fsync();
    EXPECT_TRUE(s1) << s1.error().message();
    auto s2 = co_await f->fdatasync();
    EXPECT_TRUE(s2) << s2.error().message();
    // A pipe has nothing to sync: the kernel says EINVAL.
    auto p = make_pipe();
    CO_EXPECT_FAIL(co_await p.w.fsync(), std::errc::invalid_argument);
    CO_EXPECT_FAIL(co_await p.w.fdatasync(), std::errc::invalid_argument);
  }());
  EXPECT_TRUE(same_bytes(slurp(path), data));
}

TEST(FileMeta, Fallocate) {
  test::temp_dir dir;
  const std::string path = dir.file("falloc");
  {
    // GTEST_SKIP cannot run inside a coroutine: probe the file system first.
    unique_fd probe(::open(dir.file("probe").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_TRUE(probe.valid());
    if (::fallocate(probe.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) != 0 && errno == EOPNOTSUPP) {
      GTEST_SKIP() << "no fallocate hole punching under " << dir.path();
    }
  }
  test::run([&]() -> task<void> {
    auto f = co_await file::create(path.c_str());
    CO_ASSERT_OK(f);
    auto a = co_await f->fallocate(0, 1 << 20);
    CO_ASSERT_OK(a);
    auto sz = co_await f->size();
    CO_ASSERT_OK(sz);
    EXPECT_EQ(*sz, 1u << 20);
    struct ::statx st {};
    auto s = co_await f->stat(&st);
    CO_ASSERT_OK(s);
    EXPECT_GE(st.stx_blocks * 512, 1u << 20);
    // Allocated space reads as zeros.
    std::vector<char> z(4096, '\x7f');
    auto rz = co_await f->read_exact_at(as_writable(z), 500000);
    CO_ASSERT_OK(rz);
    EXPECT_TRUE(std::all_of(z.begin(), z.end(), [](char c) { return c == 0; }));

    // KEEP_SIZE: blocks grow, the size does not.
    auto k = co_await f->fallocate(1 << 20, 1 << 20, FALLOC_FL_KEEP_SIZE);
    CO_ASSERT_OK(k);
    sz = co_await f->size();
    CO_ASSERT_OK(sz);
    EXPECT_EQ(*sz, 1u << 20);
    s = co_await f->stat(&st);
    CO_ASSERT_OK(s);
    EXPECT_GE(st.stx_blocks * 512, 2u << 20);

    // Punching a hole zeroes exactly that range.
    const auto data = pattern(64 << 10, 77);
    auto w = co_await f->write_all_at(as_bytes(data), 0);
    CO_ASSERT_OK(w);
    auto ph = co_await f->fallocate(4096, 8192, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
    CO_ASSERT_OK(ph);
    std::vector<char> back(data.size());
    auto rb = co_await f->read_exact_at(as_writable(back), 0);
    CO_ASSERT_OK(rb);
    auto want = data;
    std::fill(want.begin() + 4096, want.begin() + 4096 + 8192, 0);
    EXPECT_TRUE(same_bytes(back, want));

    // Bad arguments and unsupported targets.
    CO_EXPECT_FAIL(co_await f->fallocate(0, 0), std::errc::invalid_argument);
    auto p = make_pipe();
    CO_EXPECT_FAIL(co_await p.w.fallocate(0, 4096), std::errc::invalid_seek);
  }());
}

TEST(FileMeta, StatAndSize) {
  test::temp_dir dir;
  const std::string path = dir.file("stat");
  spit(path, pattern(12345, 1));
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  test::run([&]() -> task<void> {
    auto f = co_await file::open(path.c_str());
    CO_ASSERT_OK(f);
    struct ::statx st {};
    auto s = co_await f->stat(&st);
    CO_ASSERT_OK(s);
    EXPECT_TRUE(st.stx_mask & STATX_SIZE);
    EXPECT_EQ(st.stx_size, 12345u);
    EXPECT_TRUE(S_ISREG(st.stx_mode));
    EXPECT_EQ(st.stx_mode & 07777, 0640);
    struct stat ref {};
    EXPECT_EQ(::fstat(f->fd(), &ref), 0);
    EXPECT_EQ(st.stx_ino, ref.st_ino);
    auto sz = co_await f->size();
    CO_ASSERT_OK(sz);
    EXPECT_EQ(*sz, 12345u);

    auto d = co_await file::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY);
    CO_ASSERT_OK(d);
    auto ds = co_await d->stat(&st);
    CO_ASSERT_OK(ds);
    EXPECT_TRUE(S_ISDIR(st.stx_mode));

    auto p = make_pipe();
    auto ps = co_await p.r.stat(&st);
    CO_ASSERT_OK(ps);
    EXPECT_TRUE(S_ISFIFO(st.stx_mode));
  }());
}

TEST(FileMeta, AsyncClose) {
  test::temp_dir dir;
  const std::string path = dir.file("close");
  spit(path, pattern(10, 1));
  test::run([&]() -> task<void> {
    auto f = co_await file::open(path.c_str());
    CO_ASSERT_OK(f);
    const int fd = f->fd();
    CO_ASSERT_TRUE(fd_is_open(fd));
    auto c = f->close();
    EXPECT_FALSE(f->is_open()) << "the fd must leave the object before the close is even awaited";
    EXPECT_EQ(f->fd(), -1);
    auto r = co_await std::move(c);
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_FALSE(fd_is_open(fd)) << "fd " << fd << " still open after close";
    std::vector<char> buf(10);
    CO_EXPECT_FAIL(co_await f->read_at(as_writable(buf), 0), std::errc::bad_file_descriptor);
    // Closing again closes nothing.
    CO_EXPECT_FAIL(co_await f->close(), std::errc::bad_file_descriptor);
  }());
}

// file::close() takes the fd out of the object when the awaiter is created,
// so every path on which the close never reaches the kernel (awaiter
// dropped, task already cancelled, no runtime) must close the fd itself.
TEST(FileMeta, CloseNotAwaitedDoesNotLeak) {
  test::temp_dir dir;
  const std::string path = dir.file("leak");
  spit(path, pattern(10, 1));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  {
    file f{unique_fd(fd)};
    auto c = f.close();  // dropped without awaiting (e.g. an early return)
  }
  EXPECT_FALSE(fd_is_open(fd)) << "fd " << fd << " leaked";
  if (fd_is_open(fd)) ::close(fd);
}

TEST(FileMeta, CloseInCancelledTaskDoesNotLeak) {
  test::temp_dir dir;
  const std::string path = dir.file("leak");
  spit(path, pattern(10, 1));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  file f{unique_fd(fd)};
  result<void> got;
  test::run([&]() -> task<void> {
    auto closer = [](file& f, result<void>& got) -> task<void> { got = co_await f.close(); };
    auto h = runtime::current()->spawn(closer(f, got));
    h.cancel();  // before it ever runs: the close fails early
    co_await h;
  }());
  EXPECT_TRUE(fails_with(got, std::errc::operation_canceled));
  EXPECT_FALSE(f.is_open());
  EXPECT_FALSE(fd_is_open(fd)) << "fd " << fd << " leaked: released from the file, never closed";
  if (fd_is_open(fd)) ::close(fd);
}

TEST(FileMeta, CloseWithoutRuntimeDoesNotLeak) {
  ASSERT_EQ(runtime::current(), nullptr);
  test::temp_dir dir;
  const std::string path = dir.file("leak");
  spit(path, pattern(10, 1));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  file f{unique_fd(fd)};
  result<void> got;
  auto body = [](file& f, result<void>& got) -> test::foreign_coro { got = co_await f.close(); };
  auto c = body(f, got);
  ASSERT_TRUE(c.done());
  EXPECT_TRUE(fails_with(got, errc::no_runtime));
  // Either the file keeps its fd (the close never happened) or it is closed.
  EXPECT_TRUE(f.is_open() || !fd_is_open(fd)) << "fd " << fd << " leaked";
  if (!f.is_open() && fd_is_open(fd)) ::close(fd);
}

// A close queued for ring room and cancelled before it reaches the kernel
// completes with -ECANCELED; the awaiter then closes the descriptor itself,
// so the file ends closed and the fd does not leak.
TEST(FileMeta, CloseQueuedBehindFullRingThenCancelledDoesNotLeak) {
  COIL_REQUIRE_URING();
  // The ring is full of reads that never finish, so the close waits in user
  // space; its task is cancelled before the close reaches the kernel.
  test::temp_dir dir;
  const std::string path = dir.file("leak");
  spit(path, pattern(10, 1));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  file f{unique_fd(fd)};
  test::blocking_eventfd ev;
  result<void> got;
  runtime_options opts;
  opts.uring.entries = 2;
  test::run([&]() -> task<void> {
    runtime* rt = runtime::current();
    auto reader = [](const file& r) -> task<void> {
      uint64_t v;
      (void)co_await test::blocking_eventfd::read(r, v);
    };
    std::vector<join_handle<void>> readers;
    for (uint32_t i = 0; i < rt->driver().ring_capacity(); ++i) readers.push_back(rt->spawn(reader(ev.f)));
    auto closer = [](file& f, result<void>& got) -> task<void> { got = co_await f.close(); };
    auto h = rt->spawn(closer(f, got));
    co_await yield();
    co_await yield();
    EXPECT_FALSE(h.done());
    EXPECT_GT(rt->stats().io.queued_for_space, 0u);
    h.cancel();
    co_await h;
    for (auto& r : readers) r.cancel();
    for (auto& r : readers) co_await r;
  }(), opts);
  EXPECT_FALSE(f.is_open());
  EXPECT_FALSE(got) << "the close cannot have run: the ring was full";
  EXPECT_FALSE(fd_is_open(fd)) << "fd " << fd << " leaked: taken from the file, never closed";
  if (fd_is_open(fd)) ::close(fd);
}

// ---- pipes and character devices ----------------------------------------------

TEST(FilePipe, ReadWriteShortReadAndEof) {
  test::run([&]() -> task<void> {
    auto p = make_pipe();
    auto w = co_await p.w.write(as_bytes("ping"));
    CO_ASSERT_OK(w);
    EXPECT_EQ(*w, 4u);
    std::vector<char> buf(64, '.');
    auto r = co_await p.r.read(as_writable(buf));  // short: only what is there
    CO_ASSERT_OK(r);
    EXPECT_EQ(*r, 4u);
    EXPECT_EQ(std::string(buf.begin(), buf.begin() + 4), "ping");
    EXPECT_EQ(buf[4], '.');

    auto w2 = co_await p.w.write(as_bytes("tail"));
    CO_ASSERT_OK(w2);
    auto c = co_await p.w.close();
    CO_ASSERT_OK(c);
    auto exact = co_await p.r.read_exact_at(as_writable(buf), ops::current_position);
    EXPECT_TRUE(fails_with(exact, errc::unexpected_eof));
    EXPECT_EQ(std::string(buf.begin(), buf.begin() + 4), "tail");  // it got what there was
    auto eof = co_await p.r.read(as_writable(buf));
    CO_ASSERT_OK(eof);
    EXPECT_EQ(*eof, 0u);
  }());
}

// (when_all cannot take task<void>: it would build a std::tuple<void, ...>.)
task<result<void>> pipe_writer(const file& w, std::span<const char> data) {
  auto s = co_await sleep_for(5ms);  // the reader is already waiting when data arrives
  if (!s) co_return s;
  co_return co_await w.write_all_at(std::as_bytes(data), ops::current_position);
}
task<result<void>> pipe_reader(const file& r, std::span<char> into) {
  co_return co_await r.read_exact_at(std::as_writable_bytes(into), ops::current_position);
}

TEST(FilePipe, ConcurrentTransferLargerThanPipeBuffer) {
  // 4 MiB through a 64 KiB pipe: both sides must make partial progress and
  // resume many times, and write_all_at/read_exact_at must loop correctly.
  const auto data = pattern(4 << 20, 31);
  std::vector<char> got(data.size());
  result<void> wr, rd;
  test::run([&]() -> task<void> {
    auto p = make_pipe();
    std::tie(rd, wr) = co_await when_all(pipe_reader(p.r, got), pipe_writer(p.w, data));
  }());
  EXPECT_TRUE(wr) << wr.error().message();
  EXPECT_TRUE(rd) << rd.error().message();
  EXPECT_TRUE(same_bytes(got, data));
}

TEST(FilePipe, WriteWithoutReaderIsEpipe) {
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ign, &old), 0);
  test::run([&]() -> task<void> {
    auto p = make_pipe();
    auto c = co_await p.r.close();
    CO_ASSERT_OK(c);
    CO_EXPECT_FAIL(co_await p.w.write(as_bytes("x")), std::errc::broken_pipe);
    CO_EXPECT_FAIL(co_await p.w.write_all_at(as_bytes("xyz"), ops::current_position),
                           std::errc::broken_pipe);
  }());
  ::sigaction(SIGPIPE, &old, nullptr);
}

TEST(FilePipe, TimedOutReadIsCancelledAndConsumesNothing) {
  test::run([&]() -> task<void> {
    auto p = make_pipe();
    std::vector<char> buf(16, '.');
    const auto t0 = std::chrono::steady_clock::now();
    auto r = co_await with_timeout(p.r.read(as_writable(buf)), 20ms);
    EXPECT_TRUE(fails_with(r, std::errc::timed_out));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
    // The cancelled read must not have taken data written afterwards.
    auto w = co_await p.w.write(as_bytes("abc"));
    CO_ASSERT_OK(w);
    std::vector<char> again(16);
    auto r2 = co_await with_timeout(p.r.read(as_writable(again)), 2s);
    CO_ASSERT_OK(r2);
    EXPECT_EQ(std::string(again.begin(), again.begin() + static_cast<ptrdiff_t>(*r2)), "abc");
    EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](char c) { return c == '.'; }));
  }());
}

TEST(FilePipe, CancelPendingRead) {
  auto p = make_pipe();
  result<size_t> got = 0;
  test::run([&]() -> task<void> {
    auto reader = [](const file& r, result<size_t>& got) -> task<void> {
      std::vector<char> buf(8);
      got = co_await r.read(as_writable(buf));
    };
    auto h = runtime::current()->spawn(reader(p.r, got));
    co_await nop();  // the read is now with the kernel
    EXPECT_FALSE(h.done());
    h.cancel();
    co_await h;
  }());
  EXPECT_TRUE(fails_with(got, std::errc::operation_canceled));
  ASSERT_EQ(::write(p.w.fd(), "xyz", 3), 3);
  char buf[8] = {};
  EXPECT_EQ(::read(p.r.fd(), buf, sizeof buf), 3);
  EXPECT_STREQ(buf, "xyz");
}

TEST(FilePipe, RuntimeDestroyedWithReadInFlight) {
  auto p = make_pipe();
  bool finished = false;
  {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    auto reader = [](const file& r, bool& finished) -> task<void> {
      char buf[32];
      (void)co_await r.read(std::as_writable_bytes(std::span(buf)));
      finished = true;
    };
    auto h = (*rt)->spawn(reader(p.r, finished));
    (*rt)->block_on([]() -> task<void> { (void)co_await nop(); }());
    EXPECT_FALSE(h.done());
    rt->reset();  // cancels the read and waits for the kernel to let go of buf
    EXPECT_FALSE(h.valid());
  }
  EXPECT_FALSE(finished);
  ASSERT_EQ(::write(p.w.fd(), "late", 4), 4);
  char buf[8] = {};
  EXPECT_EQ(::read(p.r.fd(), buf, sizeof buf), 4);  // nothing swallowed the data
  EXPECT_STREQ(buf, "late");
}

task<void> timed_read(const file& r, int& timed_out) {
  uint64_t v;
  auto n = co_await with_timeout(test::blocking_eventfd::read(r, v), 10ms);
  if (!n && n.error() == std::errc::timed_out) ++timed_out;
}

TEST(FilePipe, TimeoutsFireWhenRingIsFullOfBlockedReads) {
  COIL_REQUIRE_URING();
  // As many never-ending reads as the CQ holds: cancelling them must still be
  // possible (the driver keeps CQ room for cancel requests).
  test::blocking_eventfd ev;
  runtime_options opts;
  opts.uring.entries = 2;
  rescuer rescue(ev, 3s);
  int timed_out = 0;
  uint32_t readers = 0;
  const auto t0 = std::chrono::steady_clock::now();
  test::run([&]() -> task<void> {
    runtime* rt = runtime::current();
    readers = rt->driver().ring_capacity();
    std::vector<join_handle<void>> hs;
    for (uint32_t i = 0; i < readers; ++i) hs.push_back(rt->spawn(timed_read(ev.f, timed_out)));
    for (auto& h : hs) co_await h;
  }(), opts);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(rescue.finish()) << "timeouts did not fire; the reads were woken by the watchdog";
  EXPECT_EQ(timed_out, int(readers));
  EXPECT_LT(took, 2s);
}

TEST(FilePipe, RuntimeDestroyedWithRingFullOfBlockedReads) {
  COIL_REQUIRE_URING();
  test::blocking_eventfd ev;
  rescuer rescue(ev, 3s);
  int finished = 0;
  const auto t0 = std::chrono::steady_clock::now();
  {
    runtime_options opts;
    opts.uring.entries = 2;
    auto rt = runtime::create(opts);
    ASSERT_TRUE(rt);
    auto reader = [](const file& r, int& finished) -> task<void> {
      uint64_t v;
      (void)co_await test::blocking_eventfd::read(r, v);
      ++finished;
    };
    std::vector<join_handle<void>> hs;
    for (uint32_t i = 0; i < (*rt)->driver().ring_capacity(); ++i) hs.push_back((*rt)->spawn(reader(ev.f, finished)));
    (*rt)->block_on([]() -> task<void> { co_await yield(); }());  // all reads pushed and submitted
    EXPECT_GT((*rt)->driver().in_flight(), 0u);
    rt->reset();
  }
  EXPECT_FALSE(rescue.finish()) << "runtime destruction hung until the watchdog woke the reads";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(finished, 0);
}

// Reads at a pipe's current position wait on the writer, so io_uring keeps
// them outside its in-flight bound: 16 idle ones on a ring that bounds 3 ops
// must not hold back a file read (bounded, it waited behind them forever).
TEST(FilePipe, IdlePipeReadsNeverHoldBackOtherOps) {
  test::temp_dir dir;
  const std::string path = dir.file("data");
  spit(path, pattern(64, 5));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  file f{unique_fd(fd)};
  auto p = make_pipe();
  runtime_options opts;
  opts.uring.entries = 2;  // CQ 4: 3 bounded ops in flight
  test::run(
      [&]() -> task<void> {
        runtime* rt = runtime::current();
        auto idle = [](const file& r) -> task<void> {
          char buf[8];
          (void)co_await r.read(std::as_writable_bytes(std::span(buf)));
        };
        std::vector<join_handle<void>> idles;
        for (int i = 0; i < 16; ++i) idles.push_back(rt->spawn(idle(p.r)));
        co_await yield();
        std::array<std::byte, 64> got{};
        auto n = co_await with_timeout(f.read_at(got, 0), 5s);
        EXPECT_TRUE(n && *n == 64) << (n ? "short" : n.error().message());
        const auto want = pattern(64, 5);
        EXPECT_EQ(std::memcmp(got.data(), want.data(), 64), 0);
        if (rt->driver().kind() == driver_kind::uring) {
          EXPECT_EQ(rt->stats().io.queued_for_space, 0u);
        }
        for (auto& h : idles) h.cancel();
        for (auto& h : idles) co_await h;
      }(),
      opts);
}

TEST(FileDevice, DevZeroAndDevNull) {
  test::run([&]() -> task<void> {
    auto zero = co_await file::open("/dev/zero");
    CO_ASSERT_OK(zero);
    std::vector<char> buf(8192, '\xaa');
    auto r = co_await zero->read(as_writable(buf));
    CO_ASSERT_OK(r);
    // One read may stop at a page: with RWF_NOWAIT (the epoll driver's first
    // try) the kernel returns what it has when another task wants the CPU.
    EXPECT_GT(*r, 0u);
    EXPECT_LE(*r, buf.size());
    EXPECT_TRUE(std::all_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*r), [](char c) { return c == 0; }));
    std::vector<char> big(1 << 20, '\xaa');
    auto rx = co_await zero->read_exact_at(as_writable(big), ops::current_position);
    CO_ASSERT_OK(rx);
    EXPECT_TRUE(std::all_of(big.begin(), big.end(), [](char c) { return c == 0; }));

    auto null = co_await file::open("/dev/null", O_RDWR);
    CO_ASSERT_OK(null);
    const auto data = pattern(1 << 20, 4);
    auto w = co_await null->write(as_bytes(data));
    CO_ASSERT_OK(w);
    EXPECT_EQ(*w, data.size());
    auto wa = co_await null->write_all_at(as_bytes(data), ops::current_position);
    EXPECT_TRUE(wa);
    auto rn = co_await null->read(as_writable(buf));
    CO_ASSERT_OK(rn);
    EXPECT_EQ(*rn, 0u);
    CO_EXPECT_FAIL(co_await null->read_exact_at(as_writable(buf), ops::current_position),
                           errc::unexpected_eof);

    // /dev/full: every write fails with ENOSPC.
    auto full = co_await file::open("/dev/full", O_WRONLY);
    CO_ASSERT_OK(full);
    CO_EXPECT_FAIL(co_await full->write(as_bytes(data)), std::errc::no_space_on_device);
    CO_EXPECT_FAIL(co_await full->write_all_at(as_bytes(data), ops::current_position),
                           std::errc::no_space_on_device);
  }());
}

TEST(FileDevice, HugeBuffersAreClampedNotTruncated) {
  // One transfer is capped at 0x7ffff000 bytes. A 4 GiB + 10 buffer must
  // not wrap to 10 bytes in the 32-bit SQE length. The buffer is a read-only
  // anonymous mapping that /dev/null never touches, so it costs no memory.
  const size_t huge = (size_t{4} << 30) + 10;
  void* mem = ::mmap(nullptr, huge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(mem, MAP_FAILED) << std::strerror(errno);
  const std::span<const std::byte> buf(static_cast<const std::byte*>(mem), huge);
  test::run([&]() -> task<void> {
    auto null = co_await file::open("/dev/null", O_WRONLY);
    CO_ASSERT_OK(null);
    auto w = co_await null->write(buf);
    CO_ASSERT_OK(w);
    EXPECT_EQ(*w, 0x7ffff000u);
    auto all = co_await null->write_all_at(buf, ops::current_position);  // three rounds
    EXPECT_TRUE(all) << all.error().message();
  }());
  ::munmap(mem, huge);
}

// ---- concurrency -----------------------------------------------------------------

task<void> read_and_check(const file& f, uint64_t offset, size_t len, const std::vector<char>& data, int& ok) {
  std::vector<char> buf(len);
  auto r = co_await f.read_exact_at(as_writable(buf), offset);
  if (!r) {
    ADD_FAILURE() << "read at " << offset << ": " << r.error().message();
    co_return;
  }
  if (same_bytes(buf, std::span(data).subspan(offset, len))) ++ok;
  else ADD_FAILURE() << "wrong bytes at offset " << offset;
}

void thousand_reads(const runtime_options& opts, bool expect_queueing) {
  test::temp_dir dir;
  const std::string path = dir.file("many");
  constexpr int tasks = 1000;
  const auto data = pattern(tasks * 4096 + 64, 1000);
  spit(path, data);
  int ok = 0;
  runtime_stats stats;
  test::run([&]() -> task<void> {
    auto f = co_await file::open(path.c_str());
    CO_ASSERT_OK(f);
    runtime* rt = runtime::current();
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < tasks; ++i) {
      // Different lengths and unaligned offsets, all inside the file.
      const uint64_t off = uint64_t(i) * 4096 + uint64_t(i % 61);
      hs.push_back(rt->spawn(read_and_check(*f, off, 1 + size_t(i * 7919) % 4096, data, ok)));
    }
    for (auto& h : hs) co_await h;
    stats = rt->stats();
  }(), opts);
  EXPECT_EQ(ok, tasks);
  if (test::default_driver() == driver_kind::uring) {
    EXPECT_GT(stats.io.in_flight_max, 1u) << "reads never overlapped";
  }  // epoll completes page-cache hits inline
  EXPECT_GE(stats.tasks_spawned, uint64_t(tasks));
  if (expect_queueing) {
    EXPECT_GT(stats.io.queued_for_space, 0u);
  }
}

TEST(FileConcurrent, ThousandSpawnedReads) { thousand_reads({}, false); }

TEST(FileConcurrent, ThousandSpawnedReadsOnTinyRing) {
  COIL_REQUIRE_URING();
  runtime_options opts;
  opts.uring.entries = 4;  // far fewer slots than operations: most wait in user space
  thousand_reads(opts, true);
}

task<void> write_block(const file& f, uint64_t offset, std::span<const char> data, int& ok) {
  auto w = co_await f.write_all_at(std::as_bytes(data), offset);
  if (w) ++ok;
  else ADD_FAILURE() << "write at " << offset << ": " << w.error().message();
}

TEST(FileConcurrent, ConcurrentWritesToDisjointRanges) {
  test::temp_dir dir;
  const std::string path = dir.file("cw");
  const auto data = pattern(512 * 1000, 77);
  int ok = 0;
  test::run([&]() -> task<void> {
    auto f = co_await file::create(path.c_str());
    CO_ASSERT_OK(f);
    std::vector<join_handle<void>> hs;
    for (size_t i = 0; i < 1000; ++i) {  // in reverse, so completion order cannot hide a bug
      const size_t off = (999 - i) * 512;
      hs.push_back(runtime::current()->spawn(write_block(*f, off, std::span(data).subspan(off, 512), ok)));
    }
    for (auto& h : hs) co_await h;
  }());
  EXPECT_EQ(ok, 1000);
  EXPECT_TRUE(same_bytes(slurp(path), data));
}

task<void> open_read_close(std::string path, std::string want, int& ok) {
  auto f = co_await file::open(path.c_str());
  if (!f) {
    ADD_FAILURE() << path << ": " << f.error().message();
    co_return;
  }
  std::string got(want.size() + 8, '\0');
  auto n = co_await f->read_at(std::as_writable_bytes(std::span(got)), 0);
  auto c = co_await f->close();
  if (n && c && got.substr(0, *n) == want) ++ok;
  else ADD_FAILURE() << path << ": wrong content or failed close";
}

TEST(FileConcurrent, ManyConcurrentOpensGetTheRightFiles) {
  // Each fd an open yields must be the file that open asked for, and every fd
  // must be closed at the end.
  test::temp_dir dir;
  constexpr int files = 300;
  for (int i = 0; i < files; ++i) {
    const std::string s = "file number " + std::to_string(i);
    spit(dir.file(std::to_string(i)), std::vector<char>(s.begin(), s.end()));
  }
  int ok = 0;
  int fds_before = 0;
  test::run([&]() -> task<void> {
    fds_before = test::open_fds();
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < files; ++i) {
      hs.push_back(runtime::current()->spawn(
          open_read_close(dir.file(std::to_string(i)), "file number " + std::to_string(i), ok)));
    }
    for (auto& h : hs) co_await h;
    EXPECT_EQ(test::open_fds(), fds_before);
  }());
  EXPECT_EQ(ok, files);
}

// ---- error paths -----------------------------------------------------------------

TEST(FileErrors, OpenMissingFile) {
  test::temp_dir dir;
  const std::string path = dir.file("does-not-exist");
  auto f = test::run([&]() -> task<result<file>> { co_return co_await file::open(path.c_str()); }());
  ASSERT_FALSE(f);
  const std::error_code ec = f.error();
  EXPECT_TRUE(ec == std::errc::no_such_file_or_directory);
  EXPECT_FALSE(ec == std::errc::permission_denied);
  EXPECT_EQ(ec.value(), ENOENT);
  EXPECT_EQ(&ec.category(), &std::system_category());
  EXPECT_EQ(ec.message(), std::strerror(ENOENT));
  EXPECT_NE(ec.message().find("No such file"), std::string::npos) << ec.message();
}

TEST(FileErrors, OpenFlagsErrors) {
  test::temp_dir dir;
  const std::string existing = dir.file("exists");
  spit(existing, pattern(3, 3));
  const std::string under_file = existing + "/child";
  const std::string missing_parent = dir.file("no/such/dir/f");
  test::run([&]() -> task<void> {
    CO_EXPECT_FAIL(co_await file::open(dir.path().c_str(), O_WRONLY), std::errc::is_a_directory);
    CO_EXPECT_FAIL(co_await file::open(dir.path().c_str(), O_RDWR), std::errc::is_a_directory);
    CO_EXPECT_FAIL(co_await file::open(existing.c_str(), O_RDWR | O_CREAT | O_EXCL),
                           std::errc::file_exists);
    CO_EXPECT_FAIL(co_await file::open(under_file.c_str()), std::errc::not_a_directory);
    CO_EXPECT_FAIL(co_await file::open(existing.c_str(), O_RDONLY | O_DIRECTORY),
                           std::errc::not_a_directory);
    CO_EXPECT_FAIL(co_await file::create(missing_parent.c_str()), std::errc::no_such_file_or_directory);
    const std::string too_long(PATH_MAX + 10, 'a');
    CO_EXPECT_FAIL(co_await file::open(too_long.c_str()), std::errc::filename_too_long);
    // A directory can be opened read-only, and a failed open leaves no fd.
    auto d = co_await file::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY);
    EXPECT_TRUE(d && d->is_open());
  }());
}

TEST(FileErrors, WrongAccessMode) {
  // Running as root, a mode-0000 file is still writable (CAP_DAC_OVERRIDE),
  // so EACCES cannot be provoked here. A write through an O_RDONLY descriptor
  // is refused by the fd itself: EBADF, whoever the caller is.
  test::temp_dir dir;
  const std::string path = dir.file("ro");
  const auto data = pattern(100, 8);
  spit(path, data);
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  test::run([&]() -> task<void> {
    auto ro = co_await file::open(path.c_str(), O_RDONLY);
    CO_ASSERT_OK(ro);
    const auto junk = pattern(10, 9);
    CO_EXPECT_FAIL(co_await ro->write_at(as_bytes(junk), 0), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await ro->write_all_at(as_bytes(junk), 0), std::errc::bad_file_descriptor);
    const iovec iov[] = {{const_cast<char*>(junk.data()), junk.size()}};
    CO_EXPECT_FAIL(co_await ro->writev_at(iov, 0), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await ro->fallocate(0, 4096), std::errc::bad_file_descriptor);

    auto wo = co_await file::open(path.c_str(), O_WRONLY);
    CO_ASSERT_OK(wo);
    std::vector<char> buf(10);
    CO_EXPECT_FAIL(co_await wo->read_at(as_writable(buf), 0), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await wo->read_exact_at(as_writable(buf), 0), std::errc::bad_file_descriptor);
  }());
  EXPECT_TRUE(same_bytes(slurp(path), data));  // nothing was written
}

TEST(FileErrors, DefaultConstructedFile) {
  test::run([&]() -> task<void> {
    file f;
    EXPECT_FALSE(f.is_open());
    EXPECT_EQ(f.fd(), -1);
    std::vector<char> buf(10);
    CO_EXPECT_FAIL(co_await f.read_at(as_writable(buf), 0), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await f.read(as_writable(buf)), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await f.write_at(as_bytes(buf), 0), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await f.read_exact_at(as_writable(buf), 0), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await f.fsync(), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await f.fallocate(0, 1), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await f.size(), std::errc::bad_file_descriptor);
    CO_EXPECT_FAIL(co_await f.close(), std::errc::bad_file_descriptor);
  }());
}

TEST(FileErrors, InvalidOffsetsAndVectors) {
  test::temp_dir dir;
  const std::string path = dir.file("off");
  spit(path, pattern(100, 8));
  test::run([&]() -> task<void> {
    auto f = co_await file::open(path.c_str(), O_RDWR);
    CO_ASSERT_OK(f);
    std::vector<char> buf(10);
    // Offsets are unsigned in the API; the kernel takes them as loff_t, so 2^63
    // is negative, and an offset whose end overflows loff_t is refused too.
    constexpr uint64_t negative = uint64_t{1} << 63;
    constexpr uint64_t near_max = uint64_t(INT64_MAX) - 4;
    CO_EXPECT_FAIL(co_await f->read_at(as_writable(buf), negative), std::errc::invalid_argument);
    CO_EXPECT_FAIL(co_await f->write_at(as_bytes(buf), negative), std::errc::invalid_argument);
    CO_EXPECT_FAIL(co_await f->read_at(as_writable(buf), near_max), std::errc::invalid_argument);
    CO_EXPECT_FAIL(co_await f->write_at(as_bytes(buf), near_max), std::errc::invalid_argument);
    CO_EXPECT_FAIL(co_await f->read_exact_at(as_writable(buf), negative), std::errc::invalid_argument);
    CO_EXPECT_FAIL(co_await f->fallocate(negative, 10), std::errc::invalid_argument);
    // More iovecs than IOV_MAX.
    std::vector<iovec> iov(IOV_MAX + 1, iovec{buf.data(), 1});
    CO_EXPECT_FAIL(co_await f->readv_at(iov, 0), std::errc::invalid_argument);
    CO_EXPECT_FAIL(co_await f->writev_at(iov, 0), std::errc::invalid_argument);
  }());
  EXPECT_EQ(slurp(path).size(), 100u);
}

struct free_deleter {
  void operator()(void* p) const { std::free(p); }
};

TEST(FileErrors, DirectIoMisalignedBuffer) {
  test::temp_dir dir;
  const std::string path = dir.file("direct");
  const auto data = pattern(16384, 12);
  spit(path, data);
  std::unique_ptr<char, free_deleter> mem(static_cast<char*>(std::aligned_alloc(4096, 3 * 4096)));
  ASSERT_TRUE(mem);
  char* aligned = mem.get();
  // Older tmpfs refuses O_DIRECT; tmpfs since 6.6 accepts it but, having no
  // device, enforces no alignment. Skip unless the kernel checks alignment.
  unique_fd probe(::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  if (!probe && errno == EINVAL) GTEST_SKIP() << "no O_DIRECT under " << dir.path();
  ASSERT_TRUE(probe.valid()) << std::strerror(errno);
  if (::pread(probe.get(), aligned + 1, 4096, 0) >= 0) {
    GTEST_SKIP() << "O_DIRECT under " << dir.path() << " has no alignment rules";
  }
  test::run([&]() -> task<void> {
    auto f = co_await file::open(path.c_str(), O_RDONLY | O_DIRECT);
    CO_ASSERT_OK(f);
    // Aligned: works and reads the right bytes.
    auto ok = co_await f->read_at(std::as_writable_bytes(std::span(aligned, 8192)), 4096);
    CO_ASSERT_OK(ok);
    EXPECT_EQ(*ok, 8192u);
    EXPECT_TRUE(same_bytes(std::span(aligned, 8192), std::span(data).subspan(4096, 8192)));
    // Misaligned buffer, offset or length: EINVAL from the kernel.
    auto bad_buf = co_await f->read_at(std::as_writable_bytes(std::span(aligned + 1, 4096)), 0);
    EXPECT_TRUE(fails_with(bad_buf, std::errc::invalid_argument));
    auto bad_off = co_await f->read_at(std::as_writable_bytes(std::span(aligned, 4096)), 1);
    EXPECT_TRUE(fails_with(bad_off, std::errc::invalid_argument));
    auto bad_len = co_await f->read_at(std::as_writable_bytes(std::span(aligned, 4097)), 0);
    EXPECT_TRUE(fails_with(bad_len, std::errc::invalid_argument));
  }());
}

TEST(FileErrors, NoRuntimeOnThisThread) {
  ASSERT_EQ(runtime::current(), nullptr);
  test::temp_dir dir;
  const std::string path = dir.file("nort");
  spit(path, pattern(100, 8));
  file f{unique_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC))};
  ASSERT_TRUE(f.is_open());
  std::vector<char> buf(10, '.');
  result<size_t> r1 = 0;
  result<void> r2, r3, r4;
  result<file> r5;
  auto body = [&]() -> test::foreign_coro {
    r1 = co_await f.read_at(as_writable(buf), 0);
    r2 = co_await f.read_exact_at(as_writable(buf), 0);  // a coil::task awaited from a foreign coroutine
    r3 = co_await f.fsync();
    r4 = co_await sleep_for(1ms);
    r5 = co_await file::open(path.c_str());
  };
  auto c = body();
  ASSERT_TRUE(c.done()) << "without a runtime nothing may suspend";
  EXPECT_TRUE(fails_with(r1, errc::no_runtime));
  EXPECT_TRUE(fails_with(r2, errc::no_runtime));
  EXPECT_TRUE(fails_with(r3, errc::no_runtime));
  EXPECT_TRUE(fails_with(r4, errc::no_runtime));
  EXPECT_TRUE(fails_with(r5, errc::no_runtime));
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](char ch) { return ch == '.'; }));
  EXPECT_EQ(r1.error().category().name(), std::string("coil"));
  EXPECT_EQ(r1.error().message(), "no coil runtime on this thread");
  EXPECT_TRUE(f.is_open());
}

TEST(FileErrors, NoRuntimeOnOtherThreadWhileThisOneHasOne) {
  test::temp_dir dir;
  const std::string path = dir.file("nort2");
  spit(path, pattern(100, 8));
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  file f{unique_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC))};
  result<size_t> got = 0;
  bool done = false;
  std::thread([&] {
    done = runtime::current() == nullptr;
    auto body = [&]() -> test::foreign_coro {
      std::vector<char> buf(10);
      got = co_await f.read_at(as_writable(buf), 0);
    };
    auto c = body();
    done = done && c.done();
  }).join();
  EXPECT_TRUE(done);
  EXPECT_TRUE(fails_with(got, errc::no_runtime));
  // The owning thread still works.
  auto n = (*rt)->block_on([&]() -> task<result<size_t>> {
    std::vector<char> buf(10);
    co_return co_await f.read_at(as_writable(buf), 0);
  }());
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 10u);
}

TEST(FileErrors, ErrorCodesCompareAndRead) {
  const std::error_code eof = errc::unexpected_eof;
  EXPECT_TRUE(eof == errc::unexpected_eof);
  EXPECT_FALSE(eof == errc::write_zero);
  EXPECT_FALSE(eof == std::errc::io_error);
  EXPECT_EQ(eof.message(), "unexpected end of file");
  EXPECT_EQ(std::string(eof.category().name()), "coil");
  const std::error_code wz = errc::write_zero;
  EXPECT_EQ(wz.message(), "write made no progress");
  // coil codes that have a portable meaning also match the std condition.
  EXPECT_TRUE(std::error_code(errc::misaligned) == std::errc::invalid_argument);
  EXPECT_TRUE(std::error_code(errc::unsupported_op) == std::errc::operation_not_supported);
  // Kernel codes stay in the system category and compare to std::errc.
  const std::error_code enoent = errno_code(ENOENT);
  EXPECT_TRUE(enoent == std::errc::no_such_file_or_directory);
  EXPECT_FALSE(enoent == errc::unexpected_eof);
  EXPECT_FALSE(from_kernel(-EBADF));
  EXPECT_TRUE(from_kernel(-EBADF).error() == std::errc::bad_file_descriptor);
  for (int e = 1; e <= 8; ++e) {
    const std::error_code c = static_cast<errc>(e);
    EXPECT_FALSE(c.message().empty());
    EXPECT_NE(c.message(), "unknown coil error") << e;
  }
}

}  // namespace
}  // namespace coil
