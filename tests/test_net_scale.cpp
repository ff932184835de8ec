// Descriptor pressure and scale: accept under RLIMIT_NOFILE=64 (EMFILE is
// backpressure, nothing is lost), and 10,000 concurrent connections.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "test_net_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using net::tcp_stream;

std::string tag(size_t i) {
  char b[16];
  std::snprintf(b, sizeof(b), "conn-%04zu", i);
  return b;
}

TEST(NetScale, AcceptUnderFdLimitTreatsEmfileAsBackpressure) {
  constexpr size_t clients = 200;
  constexpr size_t msg = 9;  // "conn-0000"
  test::fd_limit limit;
  auto lb = test::listen_loopback({.backlog = 512});
  // Connect every client first (the kernel completes the handshakes into the
  // backlog), parking their descriptors above the coming limit.
  std::vector<unique_fd> conns;
  for (size_t i = 0; i < clients; ++i) {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::connect(fd.get(), lb.addr.native(), lb.addr.size()), 0) << std::strerror(errno);
    ASSERT_EQ(::send(fd.get(), tag(i).data(), msg, MSG_NOSIGNAL), static_cast<ssize_t>(msg));
    unique_fd high(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 1000));
    ASSERT_TRUE(high.valid()) << std::strerror(errno);
    conns.push_back(std::move(high));
  }

  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  ASSERT_TRUE(limit.lower_to(64));
  size_t accepted = 0, emfile = 0, served = 0;
  size_t open_now = 0, open_max = 0;
  auto handler = [&](tcp_stream s) -> task<void> {
    ++open_now;
    open_max = std::max(open_max, open_now);
    std::array<std::byte, msg> b{};
    auto r = co_await s.recv_exact(b);
    EXPECT_TRUE(r) << r.error().message();
    auto slow = co_await sleep_for(5ms);  // hold the descriptor a while
    EXPECT_TRUE(slow);
    auto w = co_await s.send_all(b);
    EXPECT_TRUE(w);
    if (r && w) ++served;
    auto c = co_await s.close();
    EXPECT_TRUE(c);
    --open_now;
  };
  (*rt)->block_on([&]() -> task<void> {
    std::vector<join_handle<void>> handlers;
    while (accepted < clients) {
      auto s = co_await lb.listener.accept();
      if (!s) {
        if (s.error() == std::errc::too_many_files_open || s.error() == std::errc::too_many_files_open_in_system) {
          ++emfile;
          auto z = co_await sleep_for(1ms);  // descriptors free up as handlers finish
          EXPECT_TRUE(z);
          continue;
        }
        ADD_FAILURE() << "accept: " << s.error().message();
        co_return;
      }
      ++accepted;
      handlers.push_back(runtime::current()->spawn(handler(std::move(*s))));
    }
    for (auto& h : handlers) co_await std::move(h);
  }());
  rt->reset();
  limit.restore();

  EXPECT_EQ(accepted, clients);
  EXPECT_EQ(served, clients);
  EXPECT_GT(emfile, 0u) << "the limit was never reached; the test proves nothing";
  EXPECT_LE(open_max, 64u);
  for (size_t i = 0; i < clients; ++i) {
    char back[msg];
    ASSERT_EQ(::recv(conns[i].get(), back, msg, MSG_WAITALL), static_cast<ssize_t>(msg));
    EXPECT_EQ(std::string(back, msg), tag(i));
  }
}

// Clients in a child process, so each side needs only 10,000 descriptors.
TEST(NetScale, TenThousandConcurrentConnectionsEchoEach) {
  constexpr size_t total = 10'000;
  constexpr size_t wave = 1'000;  // connects in flight at once (the backlog is finite)
  test::fd_limit limit;
  if (!limit.raise_to(total + 512)) GTEST_SKIP() << "cannot raise RLIMIT_NOFILE to " << total + 512;
  auto lb = test::listen_loopback({.backlog = 4096});
  // The default ring: its CQ holds 512, but socket ops are not bounded by it
  // (10,000 recvs wait at once on each side).
  const runtime_options opts;
  int report[2], go[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Client side: connect in waves, echo once each, keep every connection
    // open until the parent has seen them all.
    lb.listener.release().reset();
    size_t echoed = 0;
    std::vector<tcp_stream> held;
    held.reserve(total);
    auto rt = runtime::create(opts);
    if (!rt) ::_exit(2);
    auto client = [&](size_t i) -> task<result<tcp_stream>> {
      auto s = co_await tcp_stream::connect(lb.addr);
      if (!s) co_return fail(s.error());
      const std::string t = tag(i);
      auto w = co_await s->send_all(test::bytes_of(t));
      if (!w) co_return fail(w.error());
      std::array<std::byte, 9> b{};
      auto r = co_await s->recv_exact(b);
      if (!r) co_return fail(r.error());
      if (test::text_of(b) == t) ++echoed;
      co_return std::move(*s);
    };
    (*rt)->block_on([&]() -> task<void> {
      for (size_t base = 0; base < total; base += wave) {
        std::vector<join_handle<result<tcp_stream>>> hs;
        for (size_t i = base; i < base + wave; ++i) hs.push_back(runtime::current()->spawn(client(i)));
        for (auto& h : hs) {
          auto s = co_await std::move(h);
          if (s) held.push_back(std::move(*s));
        }
      }
    }());
    size_t open = 0;
    for (auto& s : held) open += test::fd_is_open(s.fd()) ? 1 : 0;
    const size_t counts[2] = {echoed, open};
    if (::write(report[1], counts, sizeof(counts)) != sizeof(counts)) ::_exit(3);
    char c;
    (void)::read(go[0], &c, 1);
    ::_exit(0);
  }
  ::close(report[1]);
  ::close(go[0]);

  std::vector<tcp_stream> held;
  held.reserve(total);
  test::run(
      [&]() -> task<void> {
        auto serve = [&](tcp_stream s) -> task<void> {
          std::array<std::byte, 9> b{};
          auto r = co_await s.recv_exact(b);
          CO_ASSERT_OK(r);
          auto w = co_await s.send_all(b);
          CO_ASSERT_OK(w);
          held.push_back(std::move(s));  // stays open, no operation pending
        };
        std::vector<join_handle<void>> hs;
        for (size_t i = 0; i < total; ++i) {
          auto s = co_await lb.listener.accept();
          CO_ASSERT_OK(s);
          hs.push_back(runtime::current()->spawn(serve(std::move(*s))));
        }
        for (auto& h : hs) co_await std::move(h);
      }(),
      opts);
  size_t counts[2] = {0, 0};
  EXPECT_EQ(::read(report[0], counts, sizeof(counts)), static_cast<ssize_t>(sizeof(counts)));
  size_t open = 0;
  for (auto& s : held) open += test::fd_is_open(s.fd()) ? 1 : 0;
  // Every connection was open on both sides at the same moment.
  EXPECT_EQ(held.size(), total);
  EXPECT_EQ(open, total);
  EXPECT_EQ(counts[0], total) << "echoes the clients saw";
  EXPECT_EQ(counts[1], total) << "connections the clients held open";
  EXPECT_EQ(::write(go[1], "x", 1), 1);
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ::close(report[0]);
  ::close(go[1]);
  held.clear();
}

}  // namespace
}  // namespace coil
