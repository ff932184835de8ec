// Linked operations (rt/link.hpp): chains of ops awaited as one, on io_uring
// as IOSQE_IO_LINK chains, on epoll run in order by the chain itself.
#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "test_net_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

std::vector<std::byte> pattern(size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
  return v;
}

TEST(Link, WriteThenFsyncPutsTheDataOnDisk) {
  test::temp_dir dir;
  const std::string path = dir.path() + "/linked";
  test::run([](std::string path) -> task<void> {
    auto f = co_await file::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC);
    CO_ASSERT_OK(f);
    const auto data = pattern(8192, 7);
    auto [w, s] = co_await link(f->write_at(data, 0), f->fdatasync());
    CO_ASSERT_OK(w);
    EXPECT_EQ(*w, data.size());
    CO_EXPECT_OK(s);
    std::vector<std::byte> back(data.size());
    auto r = co_await f->read_at(back, 0);
    CO_ASSERT_OK(r);
    EXPECT_EQ(*r, data.size());
    EXPECT_EQ(back, data);
  }(path));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 8192);
}

// A read of a bad descriptor fails; in a soft chain the write after it never
// runs, in a hard chain it does.
task<void> chain_after_failure(std::string path, bool hard) {
  auto f = co_await file::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC);
  CO_ASSERT_OK(f);
  std::vector<std::byte> buf(16);
  const auto data = pattern(100, 3);
  const ops::read bad{-1, buf.data(), static_cast<uint32_t>(buf.size()), 0};
  if (hard) {
    auto [r, w] = co_await hard_link(bad, f->write_at(data, 0));
    EXPECT_TRUE(test::fails_with(r, std::errc::bad_file_descriptor));
    CO_ASSERT_OK(w);
    EXPECT_EQ(*w, data.size());
  } else {
    auto [r, w, s] = co_await link(bad, f->write_at(data, 0), f->fsync());
    EXPECT_TRUE(test::fails_with(r, std::errc::bad_file_descriptor));
    EXPECT_TRUE(test::fails_with(w, std::errc::operation_canceled));
    EXPECT_TRUE(test::fails_with(s, std::errc::operation_canceled));
  }
}

TEST(Link, AFailureCancelsTheRestOfASoftChain) {
  test::temp_dir dir;
  const std::string path = dir.file("f");
  test::run(chain_after_failure(path, false));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0) << "the write after the failed read ran";
}

TEST(Link, AHardChainKeepsGoingAfterAFailure) {
  test::temp_dir dir;
  const std::string path = dir.file("f");
  test::run(chain_after_failure(path, true));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 100);
}

TEST(Link, RecvWithALinkTimeout) {
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    std::vector<std::byte> buf(16);
    {
      // Nothing to read: the timeout fires and the recv times out.
      auto [n, t] = co_await link(b.recv(buf), link_timeout(20ms));
      EXPECT_TRUE(test::fails_with(n, std::errc::timed_out));
      EXPECT_TRUE(test::fails_with(t, std::errc::timed_out));
    }
    {
      // In a soft chain the op after a timed-out one is cancelled: the
      // reply is never sent.
      const auto reply = test::bytes_of("reply");
      auto [n, t, s] = co_await link(b.recv(buf), link_timeout(10ms), b.send(reply));
      EXPECT_TRUE(test::fails_with(n, std::errc::timed_out));
      EXPECT_TRUE(test::fails_with(t, std::errc::timed_out));
      EXPECT_TRUE(test::fails_with(s, std::errc::operation_canceled));
    }
    // Data in time: the recv gives it, the timeout is cancelled, and the
    // op after it runs.
    auto sent = co_await a.send_all(test::bytes_of("hello"));
    CO_ASSERT_OK(sent);
    const auto reply = test::bytes_of("world");
    auto [n, t, s] = co_await link(b.recv(buf), link_timeout(10s), b.send(reply));
    CO_ASSERT_OK(n);
    EXPECT_EQ(test::text_of(std::span(buf).first(*n)), "hello");
    CO_EXPECT_OK(t);
    CO_ASSERT_OK(s);
    EXPECT_EQ(*s, reply.size());
    std::vector<std::byte> got(16);
    auto m = co_await a.recv(got);
    CO_ASSERT_OK(m);
    EXPECT_EQ(test::text_of(std::span(got).first(*m)), "world");
  }());
}

TEST(Link, ALinkTimeoutMustFollowAnOp) {
  // Checked at compile time; here the shape a timed op gives.
  using timed = link_awaiter<ops::recv, ops::link_timeout>;
  static_assert(std::is_same_v<timed::results, std::tuple<result<size_t>, result<void>>>);
  SUCCEED();
}

// Two recvs that wait for data that never comes, as one chain.
task<void> wait_linked(net::unix_stream& s, bool hard, int& finished) {
  std::vector<std::byte> x(8), y(8);
  if (hard) {
    auto [r1, r2] = co_await hard_link(s.recv(x), s.recv(y));
    EXPECT_TRUE(test::fails_with(r1, std::errc::operation_canceled));
    EXPECT_TRUE(test::fails_with(r2, std::errc::operation_canceled));
  } else {
    auto [r1, r2] = co_await link(s.recv(x), s.recv(y));
    EXPECT_TRUE(test::fails_with(r1, std::errc::operation_canceled));
    EXPECT_TRUE(test::fails_with(r2, std::errc::operation_canceled));
  }
  ++finished;
}

TEST(Link, WhenAnyCancelsAWholeChain) {
  for (bool hard : {false, true}) {
    test::run([](bool hard) -> task<void> {
      auto p = net::unix_stream::pair();
      CO_ASSERT_OK(p);
      auto& [a, b] = *p;
      int finished = 0;
      auto r = co_await when_any(wait_linked(b, hard, finished), sleep_for(20ms));
      EXPECT_EQ(r.index(), 1u);
      EXPECT_EQ(finished, 1);
      EXPECT_EQ(runtime::current()->driver().in_flight(), 0u) << "a chain member is still pending";
      // Nothing of the chain consumed data sent afterwards.
      auto sent = co_await a.send_all(test::bytes_of("after"));
      CO_ASSERT_OK(sent);
      std::vector<std::byte> got(16);
      auto n = co_await b.recv(got);
      CO_ASSERT_OK(n);
      EXPECT_EQ(test::text_of(std::span(got).first(*n)), "after");
    }(hard));
  }
}

TEST(Link, CancellingTheTaskCancelsTheChain) {
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    auto& [a, b] = *p;
    int finished = 0;
    auto h = runtime::current()->spawn(wait_linked(b, true, finished));
    co_await yield();
    co_await yield();
    h.cancel();
    co_await std::move(h);
    EXPECT_EQ(finished, 1);
    EXPECT_EQ(runtime::current()->driver().in_flight(), 0u);
  }());
}

// A chain reading a pipe into its own frame, destroyed with the runtime.
task<void> read_pipe_linked(int fd, bool hard) {
  char x[64], y[64];
  const ops::read first{fd, x, sizeof x, ops::current_position};
  const ops::read second{fd, y, sizeof y, ops::current_position};
  if (hard) {
    auto r = co_await hard_link(first, second);
    (void)r;
  } else {
    auto r = co_await link(first, ops::nop{}, second);
    (void)r;
  }
  ADD_FAILURE() << "a chain on an empty pipe finished";
}

TEST(Link, DestroyingATaskMidChainNeverLetsTheKernelWriteFreedMemory) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  for (int iter = 0; iter < 200; ++iter) {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    auto starter = [](int fd) -> task<void> {
      for (int k = 0; k < 4; ++k) runtime::current()->spawn(read_pipe_linked(fd, k % 2 == 1)).detach();
      co_await yield();
      co_await yield();
    };
    (*rt)->block_on(starter(p[0]));
    EXPECT_GT((*rt)->driver().in_flight(), 0u);
    rt->reset();  // destroys 4 frames with chains in flight
  }
  // No chain read pipe data after its frame died: the byte is still there.
  ASSERT_EQ(::write(p[1], "z", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'z');
  ::close(p[0]);
  ::close(p[1]);
}

// Writes a block, then reads it back in the same chain: the read sees the
// write only if the chain ran in order.
task<void> write_then_read_back(const file& f, unsigned i, int& good) {
  const auto data = pattern(512, i);
  std::vector<std::byte> back(512);
  auto [w, r, n] = co_await link(f.write_at(data, i * 512ull), f.read_at(back, i * 512ull), ops::nop{});
  CO_ASSERT_OK(w);
  CO_ASSERT_OK(r);
  CO_ASSERT_OK(n);
  EXPECT_EQ(*r, data.size());
  if (back == data) ++good;
}

TEST(Link, ManyChainsOnASmallRing) {
  test::temp_dir dir;
  const std::string path = dir.file("f");
  runtime_options opts;
  opts.uring.entries = 4;  // chains of 3 SQEs: most turns find the SQ or the CQ bound short
  test::run(
      [](std::string path) -> task<void> {
        auto f = co_await file::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC);
        CO_ASSERT_OK(f);
        constexpr unsigned n = 200;
        int good = 0;
        std::vector<join_handle<void>> hs;
        for (unsigned i = 0; i < n; ++i) hs.push_back(runtime::current()->spawn(write_then_read_back(*f, i, good)));
        for (auto& h : hs) co_await std::move(h);
        EXPECT_EQ(good, static_cast<int>(n));
        auto& d = runtime::current()->driver();
        if (d.kind() == driver_kind::uring) {
          const auto st = d.stats();
          EXPECT_EQ(st.link_chains, n);
          EXPECT_GT(st.queued_for_space, 0u);
          EXPECT_LE(st.in_flight_max, d.ring_capacity());
          EXPECT_EQ(d.cq_overflow(), 0u);
        }
      }(path),
      opts);
}

TEST(Link, AChainThatCanNeverFitTheRingFails) {
  COIL_REQUIRE_URING();
  runtime_options opts;
  opts.uring.entries = 2;
  test::run(
      []() -> task<void> {
        auto [a, b, c] = co_await link(ops::nop{}, ops::nop{}, ops::nop{});
        EXPECT_TRUE(test::fails_with(a, std::errc::invalid_argument));
        EXPECT_TRUE(test::fails_with(b, std::errc::operation_canceled));
        EXPECT_TRUE(test::fails_with(c, std::errc::operation_canceled));
        // Two fit.
        auto [x, y] = co_await link(ops::nop{}, ops::nop{});
        CO_EXPECT_OK(x);
        CO_EXPECT_OK(y);
      }(),
      opts);
}

}  // namespace
