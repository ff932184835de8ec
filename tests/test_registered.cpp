// Registered (fixed) files and buffers, and SQPOLL: each works where the
// kernel allows it and degrades to plain operation elsewhere (the epoll
// driver runs the same code with the raw fd and buffer).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace coil;

std::string make_file(const test::temp_dir& dir, const std::string& text) {
  const std::string path = dir.file("data");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  return path;
}

TEST(Registered, FixedFileReadsAndWrites) {
  test::temp_dir dir;
  const std::string path = make_file(dir, "registered files skip the fd lookup");
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  test::run([&]() -> task<void> {
    auto& drv = runtime::current()->driver();
    auto slot = drv.register_file(fd);
    CO_ASSERT_OK(slot);
    char buf[10] = {};
    using fixed_read = ops::fixed<ops::read>;
    auto r = co_await op_awaiter<fixed_read>(fixed_read(ops::read{fd, buf, 10, 11}, *slot));
    CO_ASSERT_OK(r);
    EXPECT_EQ(std::string(buf, *r), "files skip");
    using fixed_write = ops::fixed<ops::write>;
    auto w = co_await op_awaiter<fixed_write>(fixed_write(ops::write{fd, "FILES", 5, 11}, *slot));
    CO_ASSERT_OK(w);
    EXPECT_EQ(*w, 5u);
    drv.unregister_file(*slot);
    if (drv.kind() == driver_kind::uring) {
      // The slot is empty now: the kernel refuses it even though fd is open.
      auto gone = co_await op_awaiter<fixed_read>(fixed_read(ops::read{fd, buf, 10, 0}, *slot));
      EXPECT_TRUE(test::fails_with(gone, std::errc::bad_file_descriptor));
    }
  }());
  char back[64] = {};
  ASSERT_GT(::pread(fd, back, sizeof back, 0), 0);
  EXPECT_STREQ(back, "registered FILES skip the fd lookup");
  ::close(fd);
}

TEST(Registered, FileSlotsAreReusedAndBadFdsRefused) {
  test::temp_dir dir;
  const std::string path = make_file(dir, "x");
  runtime_options opts;
  opts.uring.fixed_files = 2;
  test::run([&]() -> task<void> {
    auto& drv = runtime::current()->driver();
    auto bad = drv.register_file(-1);
    EXPECT_TRUE(test::fails_with(bad, std::errc::bad_file_descriptor));
    if (drv.kind() != driver_kind::uring) co_return;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    auto a = drv.register_file(fd);
    auto b = drv.register_file(fd);
    auto c = drv.register_file(fd);
    CO_ASSERT_OK(a);
    CO_ASSERT_OK(b);
    EXPECT_NE(*a, *b);
    EXPECT_TRUE(test::fails_with(c, std::errc::no_buffer_space)) << "a 2-slot table holds 2 files";
    drv.unregister_file(*a);
    auto d = drv.register_file(fd);
    CO_ASSERT_OK(d);
    EXPECT_EQ(*d, *a) << "a freed slot is reused";
    ::close(fd);
  }(), opts);
}

TEST(Registered, FixedBufferReadAndWrite) {
  test::temp_dir dir;
  std::string text(8192, '\0');
  for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
  const std::string path = make_file(dir, text);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<char> pool(64 * 1024);
  test::run([&]() -> task<void> {
    auto& drv = runtime::current()->driver();
    auto index = drv.register_buffer(pool.data(), pool.size());
    CO_ASSERT_OK(index);
    char* at = pool.data() + 4096;  // anywhere inside the registered buffer
    auto r = co_await op_awaiter<ops::read_fixed>(ops::read_fixed{{fd, at, 8192, 0}, *index});
    CO_ASSERT_OK(r);
    EXPECT_EQ(*r, 8192u);
    EXPECT_EQ(std::memcmp(at, text.data(), 8192), 0);
    std::memcpy(at, "FIXED", 5);
    auto w = co_await op_awaiter<ops::write_fixed>(ops::write_fixed{{fd, at, 5, 100}, *index});
    CO_ASSERT_OK(w);
    EXPECT_EQ(*w, 5u);
    if (drv.kind() == driver_kind::uring) {
      char outside[16];
      // A buffer outside the registered range is refused, not silently used.
      auto bad = co_await op_awaiter<ops::read_fixed>(ops::read_fixed{{fd, outside, 16, 0}, *index});
      EXPECT_FALSE(bad);
    }
    drv.unregister_buffer(*index);
  }());
  char back[5];
  ASSERT_EQ(::pread(fd, back, 5, 100), 5);
  EXPECT_EQ(std::string(back, 5), "FIXED");
  ::close(fd);
}

TEST(Registered, SqpollRingWorksOrFallsBack) {
  COIL_REQUIRE_URING();
  test::temp_dir dir;
  const std::string path = make_file(dir, "sqpoll");
  runtime_options opts;
  opts.uring.sqpoll = true;
  opts.uring.sqpoll_idle_ms = 10;
  bool active = false;
  int ok = 0;
  test::run([&]() -> task<void> {
    active = runtime::current()->driver().sqpoll_active();
    auto f = co_await file::open(path.c_str());
    CO_ASSERT_OK(f);
    for (int i = 0; i < 1000; ++i) {
      char buf[6];
      auto r = co_await f->read_at(std::as_writable_bytes(std::span(buf)), 0);
      if (r && *r == 6 && std::string(buf, 6) == "sqpoll") ++ok;
      if (i % 100 == 0) co_await sleep_for(std::chrono::milliseconds(15));  // let the SQ thread idle
    }
  }(), opts);
  EXPECT_EQ(ok, 1000);
  if (!active) GTEST_SKIP() << "kernel refused SQPOLL; the runtime fell back to a plain ring (checked above)";
}

}  // namespace

namespace {

// wait()'s own io_uring_enter, with the ring fd registered or not: a park
// that submits and has a deadline, then one with nothing to submit and no
// deadline that data written later by another thread ends.
TEST(Registered, ParksWithAndWithoutARegisteredRingFd) {
  COIL_REQUIRE_URING();
  for (const bool registered : {true, false}) {
    SCOPED_TRACE(registered ? "registered ring fd" : "plain ring fd");
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    runtime_options opts;
    opts.uring.register_ring_fd = registered;
    std::string got;
    uint64_t parks = 0;
    std::thread writer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      EXPECT_EQ(::write(sv[1], "late", 4), 4);
    });
    test::run([&]() -> task<void> {
      // The recv is submitted by a park that a deadline ends; the next park
      // has nothing to submit and no deadline.
      auto tick = []() -> task<void> { co_await sleep_for(std::chrono::milliseconds(5)); };
      auto ticker = runtime::current()->spawn(tick());
      char buf[8];
      auto r = co_await op_awaiter<ops::recv>(ops::recv{sv[0], buf, sizeof buf, 0});
      CO_ASSERT_OK(r);
      got.assign(buf, *r);
      co_await ticker;
      parks = runtime::current()->stats().parks;
    }(), opts);
    writer.join();
    EXPECT_EQ(got, "late");
    EXPECT_GE(parks, 2u);
    ::close(sv[0]);
    ::close(sv[1]);
  }
}

}  // namespace
