// coil::block: blocking forms of operations and tasks on a thread without a
// runtime, through the same code path as co_await.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_net_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;

TEST(Block, FilesWithoutARuntime) {
  test::temp_dir dir;
  const std::string path = dir.file("data");
  auto f = block(file::create(path.c_str()));
  ASSERT_TRUE(f) << f.error().message();
  const std::string text = "blocking forms share the async path";
  auto w = block(f->write_at(test::as_bytes(text), 0));
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(*w, text.size());
  std::vector<char> back(text.size());
  auto r = block(f->read_at(test::as_writable(back), 0));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(std::string(back.begin(), back.end()), text);
  auto closed = block(f->close());
  EXPECT_TRUE(closed) << closed.error().message();
  // The private runtime is not left current between calls.
  EXPECT_EQ(runtime::current(), nullptr);
  // Errors come back as values.
  auto missing = block(file::open(dir.file("missing").c_str()));
  EXPECT_TRUE(test::fails_with(missing, std::errc::no_such_file_or_directory));
  file bad{unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC))};
  char one;
  auto wrong = block(bad.write_at(std::as_bytes(std::span(&one, 1)), 0));
  EXPECT_TRUE(test::fails_with(wrong, std::errc::bad_file_descriptor));
}

TEST(Block, TasksTimersAndTimeouts) {
  auto v = block([]() -> task<int> { co_return 7; }());
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 7);
  auto nothing = block([]() -> task<void> { co_return; }());
  EXPECT_TRUE(nothing);
  const auto t0 = std::chrono::steady_clock::now();
  auto slept = block(sleep_for(20ms));
  EXPECT_TRUE(slept);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  auto timed = block(with_timeout(wait_readable(p[0]), 20ms));
  EXPECT_TRUE(test::fails_with(timed, std::errc::timed_out));
  ::close(p[0]);
  ::close(p[1]);
}

// A blocking client talks to a server on another thread's runtime.
TEST(Block, SocketsWithoutARuntime) {
  auto listener = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
  ASSERT_TRUE(listener);
  auto addr = listener->local_address();
  ASSERT_TRUE(addr);
  std::thread server([&] {
    test::run([](net::tcp_listener& l) -> task<void> {
      auto s = co_await l.accept();
      CO_ASSERT_OK(s);
      std::array<std::byte, 64> buf;
      for (;;) {
        auto n = co_await s->recv(buf);
        if (!n || *n == 0) break;
        auto sent = co_await s->send_all(std::span(buf).first(*n));
        if (!sent) break;
      }
    }(*listener));
  });
  auto s = block(net::tcp_stream::connect(*addr));
  ASSERT_TRUE(s) << s.error().message();
  const std::string msg = "ping through block()";
  auto sent = block(s->send_all(test::bytes_of(msg)));
  EXPECT_TRUE(sent);
  std::vector<char> back(msg.size());
  auto got = block(s->recv_exact(test::as_writable(back)));
  EXPECT_TRUE(got) << got.error().message();
  EXPECT_EQ(std::string(back.begin(), back.end()), msg);
  // Single operations make their own system calls: send(2), then a recv(2)
  // that blocks until the echo.
  auto sent_one = block(s->send(test::bytes_of("!")));
  EXPECT_TRUE(sent_one && *sent_one == 1u);
  char bang = 0;
  auto in = block(s->recv(std::as_writable_bytes(std::span(&bang, 1))));
  EXPECT_TRUE(in && *in == 1u);
  EXPECT_EQ(bang, '!');
  // A recv that nothing answers, bounded.
  char one;
  auto quiet = block(with_timeout(s->recv(std::as_writable_bytes(std::span(&one, 1))), 20ms));
  EXPECT_TRUE(test::fails_with(quiet, std::errc::timed_out));
  auto closed = block(s->close());
  EXPECT_TRUE(closed);
  server.join();
}

// recv_from adds the sender's address to the result: its blocking form too.
TEST(Block, DatagramsKeepTheirSender) {
  auto a = net::udp_socket::bind(net::socket_address::ipv4_loopback(0));
  auto b = net::udp_socket::bind(net::socket_address::ipv4_loopback(0));
  ASSERT_TRUE(a && b);
  auto a_addr = a->local_address();
  auto b_addr = b->local_address();
  ASSERT_TRUE(a_addr && b_addr);
  auto sent = block(a->send_to(test::bytes_of("datagram"), *b_addr));
  ASSERT_TRUE(sent) << sent.error().message();
  EXPECT_EQ(*sent, 8u);
  char buf[4];
  net::socket_address from;
  auto got = block(b->recv_from(std::as_writable_bytes(std::span(buf)), from));
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->size, 4u);
  EXPECT_TRUE(got->truncated);
  EXPECT_EQ(from, *a_addr);
  EXPECT_EQ(std::string(buf, 4), "data");
}

TEST(Block, RefusedWhileTheThreadRunsItsOwnRuntime) {
  auto warm = block(nop());  // the private runtime exists
  ASSERT_TRUE(warm);
  {
    auto rt = runtime::create();  // still allowed: the private one is not current
    ASSERT_TRUE(rt) << rt.error().message();
    auto inside = (*rt)->block_on([]() -> task<bool> {
      auto r = block(nop());
      co_return !r && r.error() == errc::in_runtime;
    }());
    EXPECT_TRUE(inside);
    auto beside = block(nop());
    EXPECT_TRUE(test::fails_with(beside, errc::in_runtime));
  }
  auto after = block(nop());
  EXPECT_TRUE(after) << after.error().message();
}

// A descriptor that waited in the private runtime and was closed outside
// any call: its number, reused, is waited on afresh (the epoll driver would
// otherwise trust a registration the close removed).
TEST(Block, ClosedOutsideACallAndReused) {
  auto pair = net::unix_stream::pair();
  ASSERT_TRUE(pair);
  auto& [a, b] = *pair;
  char c = 0;
  auto waited = block(with_timeout(a.recv(std::as_writable_bytes(std::span(&c, 1))), 10ms));
  EXPECT_TRUE(test::fails_with(waited, std::errc::timed_out));  // a is registered now
  const int number = a.fd();
  a = net::unix_stream();  // closed here, outside block()
  auto again = net::unix_stream::pair();
  ASSERT_TRUE(again);
  auto& [x, y] = *again;
  net::unix_stream* reader = x.fd() == number ? &x : y.fd() == number ? &y : nullptr;
  if (reader == nullptr) GTEST_SKIP() << "the number was not reused";
  net::unix_stream* writer = reader == &x ? &y : &x;
  std::thread later([&] {
    std::this_thread::sleep_for(10ms);
    EXPECT_EQ(::send(writer->fd(), "z", 1, MSG_NOSIGNAL), 1);
  });
  auto got = block(with_timeout(reader->recv(std::as_writable_bytes(std::span(&c, 1))), 5s));
  later.join();
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(c, 'z');
  (void)b;
}

// Each thread gets its own private runtime, gone when the thread ends.
TEST(Block, ManyThreadsEachWithTheirOwn) {
  test::temp_dir dir;
  const std::string path = dir.file("shared");
  {
    auto f = block(file::create(path.c_str()));
    ASSERT_TRUE(f);
    const std::string text(4096, 'k');
    ASSERT_TRUE(block(f->write_at(test::as_bytes(text), 0)));
  }
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto f = block(file::open(path.c_str()));
      if (!f) return;
      for (int i = 0; i < 50; ++i) {
        std::vector<char> buf(4096);
        auto r = block(f->read_at(test::as_writable(buf), 0));
        if (!r || *r != buf.size() || buf[4095] != 'k') return;
      }
      ok.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
}

}  // namespace
}  // namespace coil
