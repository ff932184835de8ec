// Observability: per-opcode counters, cancel and queueing counters, and the
// listing of pending operations (opcode, fd, age, task name), on both drivers.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

struct pipe_pair {
  int r = -1, w = -1;
  pipe_pair() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    r = p[0];
    w = p[1];
  }
  ~pipe_pair() {
    ::close(r);
    ::close(w);
  }
};

op_awaiter<ops::read> read_pipe(int fd, char* buf, uint32_t len) {
  return op_awaiter<ops::read>(ops::read{fd, buf, len, ops::current_position});
}

task<result<size_t>> reader(int fd, const char* name) {
  if (name != nullptr) co_await set_task_name(name);
  char buf[8];
  co_return co_await read_pipe(fd, buf, sizeof buf);
}

std::vector<pending_op_info> pending(runtime& rt) {
  std::vector<pending_op_info> v(rt.pending_ops({}));
  v.resize(rt.pending_ops(v));
  return v;
}

std::string dump(runtime& rt) {
  char* text = nullptr;
  size_t len = 0;
  std::FILE* f = ::open_memstream(&text, &len);
  rt.dump_in_flight(f);
  std::fclose(f);
  std::string s(text, len);
  std::free(text);
  return s;
}

TEST(Observability, PerOpcodeCountsAreExact) {
  pipe_pair p;
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  const driver_stats before = (*rt)->stats().io;
  (*rt)->block_on([&]() -> task<void> {
    for (int i = 0; i < 3; ++i) CO_ASSERT_OK(co_await nop());
    auto w = co_await op_awaiter<ops::write>(ops::write{p.w, "abcd", 4, ops::current_position});
    CO_ASSERT_TRUE(w && *w == 4);
    char buf[4];
    auto r = co_await read_pipe(p.r, buf, 4);
    CO_ASSERT_TRUE(r && *r == 4);
  }());
  const driver_stats s = (*rt)->stats().io;
  auto delta = [&](uint8_t op) {
    return op_counts{s.of(op).pushed - before.of(op).pushed, s.of(op).completed - before.of(op).completed};
  };
  EXPECT_EQ(delta(IORING_OP_NOP).pushed, 3u);
  EXPECT_EQ(delta(IORING_OP_NOP).completed, 3u);
  EXPECT_EQ(delta(IORING_OP_WRITE).pushed, 1u);
  EXPECT_EQ(delta(IORING_OP_WRITE).completed, 1u);
  EXPECT_EQ(delta(IORING_OP_READ).pushed, 1u);
  EXPECT_EQ(delta(IORING_OP_READ).completed, 1u);
  EXPECT_EQ(delta(IORING_OP_ASYNC_CANCEL).pushed, 0u);
  uint64_t pushed = 0, completed = 0;
  for (const op_counts& c : s.by_opcode) {
    pushed += c.pushed;
    completed += c.completed;
  }
  EXPECT_EQ(pushed, s.pushed);
  EXPECT_EQ(completed, s.completed);
  EXPECT_EQ(s.pushed - before.pushed, 5u);
  EXPECT_EQ(s.cancels, 0u);
  EXPECT_STREQ(opcode_name(IORING_OP_READ), "read");
  EXPECT_STREQ(opcode_name(IORING_OP_ASYNC_CANCEL), "async_cancel");
  EXPECT_STREQ(opcode_name(255), "unknown");
}

TEST(Observability, ListsAPendingPipeReadWithItsFdAndTaskName) {
  pipe_pair p;
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  runtime& r = **rt;
  (*rt)->block_on([&]() -> task<void> {
    EXPECT_EQ(r.pending_ops({}), 0u);
    auto h = r.spawn(reader(p.r, "conn 42"));
    co_await yield();
    co_await yield();  // epoll tries the read at a flush, then waits for readiness
    auto ops = pending(r);
    CO_ASSERT_TRUE(ops.size() == 1);
    EXPECT_EQ(ops[0].opcode, IORING_OP_READ);
    EXPECT_EQ(ops[0].fd, p.r);
    EXPECT_TRUE(ops[0].in_flight);
    EXPECT_STREQ(ops[0].task, "conn 42");
    const std::string text = dump(r);
    EXPECT_NE(text.find("1 operations pending"), std::string::npos) << text;
    EXPECT_NE(text.find("read"), std::string::npos) << text;
    EXPECT_NE(text.find("fd " + std::to_string(p.r)), std::string::npos) << text;
    EXPECT_NE(text.find("task \"conn 42\""), std::string::npos) << text;

    const driver_stats before = r.stats().io;
    h.cancel();
    auto got = co_await h;
    EXPECT_TRUE(test::fails_with(got, std::errc::operation_canceled));
    const driver_stats after = r.stats().io;
    EXPECT_EQ(after.cancels - before.cancels, 1u);
    EXPECT_EQ(after.of(IORING_OP_READ).completed - before.of(IORING_OP_READ).completed, 1u);
    EXPECT_EQ(r.pending_ops({}), 0u);
    EXPECT_NE(dump(r).find("0 operations pending"), std::string::npos);
  }());
}

TEST(Observability, TheNameCoversAwaitedSubtasksAndCanBeSetFromOutside) {
  pipe_pair p;
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  runtime& r = **rt;
  (*rt)->block_on([&]() -> task<void> {
    auto outer = [](int fd) -> task<result<size_t>> { co_return co_await reader(fd, nullptr); };
    auto named = r.spawn(outer(p.r));
    named.set_task_name("outer");
    auto unnamed = r.spawn(reader(p.r, nullptr));
    co_await yield();
    co_await yield();
    auto ops = pending(r);
    CO_ASSERT_TRUE(ops.size() == 2);
    EXPECT_STREQ(ops[0].task, "outer");
    EXPECT_EQ(ops[1].task, nullptr);
    EXPECT_EQ(dump(r).find("task \"\""), std::string::npos);
    named.cancel();
    unnamed.cancel();
    (void)co_await named;
    (void)co_await unnamed;
  }());
}

TEST(Observability, AgeGrowsWhileTheOperationWaits) {
  pipe_pair p;
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  runtime& r = **rt;
  (*rt)->block_on([&]() -> task<void> {
    auto h = r.spawn(reader(p.r, "slow"));
    co_await yield();
    co_await yield();
    auto young = pending(r);
    CO_ASSERT_TRUE(young.size() == 1);
    co_await sleep_for(50ms);
    auto old = pending(r);
    CO_ASSERT_TRUE(old.size() == 1);
    // The coarse clock ticks every few ms; 50 ms of sleep must show.
    EXPECT_GE(old[0].age_ms, young[0].age_ms + 30);
    EXPECT_EQ(::write(p.w, "x", 1), 1);
    auto got = co_await h;
    EXPECT_TRUE(got && *got == 1);
  }());
}

TEST(Observability, QueuedForRoomAndInFlightAreTold) {
  COIL_REQUIRE_URING();
  test::blocking_eventfd ev;  // positional reads: bounded by the ring, unlike pipe reads
  auto blocked = [](const file& f) -> task<result<size_t>> {
    co_await set_task_name("many");
    uint64_t v;
    co_return co_await test::blocking_eventfd::read(f, v);
  };
  runtime_options o;
  o.uring.entries = 4;  // CQ 8: 7 ops in flight, 1 slot kept for cancels
  auto rt = runtime::create(o);
  ASSERT_TRUE(rt);
  runtime& r = **rt;
  (*rt)->block_on([&]() -> task<void> {
    std::vector<join_handle<result<size_t>>> hs;
    for (int i = 0; i < 10; ++i) hs.push_back(r.spawn(blocked(ev.f)));
    co_await yield();
    auto ops = pending(r);
    CO_ASSERT_TRUE(ops.size() == 10);
    std::size_t in_flight = 0;
    for (const auto& op : ops) in_flight += op.in_flight;
    EXPECT_EQ(in_flight, 7u);
    EXPECT_FALSE(ops.back().in_flight);  // listed in push order: the last ones wait
    const driver_stats s = r.stats().io;
    EXPECT_EQ(s.queued_for_space, 3u);
    EXPECT_EQ(s.in_flight_max, 7u);
    for (auto& h : hs) h.cancel();
    for (auto& h : hs) (void)co_await h;
    EXPECT_EQ(r.stats().io.cancels, 10u);
    EXPECT_EQ(r.pending_ops({}), 0u);
  }());
  const driver_stats s = r.stats().io;
  EXPECT_EQ(s.of(IORING_OP_READ).pushed, 10u);
  EXPECT_EQ(s.of(IORING_OP_READ).completed, 10u);
  EXPECT_EQ(s.of(IORING_OP_ASYNC_CANCEL).pushed, 0u);  // the driver's own cancels are not ops
}

TEST(Observability, BatchingFactorIsSubmissionsPerSystemCall) {
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  runtime& r = **rt;
  (*rt)->block_on([&]() -> task<void> {
    std::vector<join_handle<result<void>>> hs;
    for (int i = 0; i < 100; ++i) hs.push_back(r.spawn([]() -> task<result<void>> { co_return co_await nop(); }()));
    for (auto& h : hs) (void)co_await h;
  }());
  const driver_stats s = r.stats().io;
  if (s.enter_calls == 0) {
    EXPECT_EQ(s.batching_factor(), 0.0);  // epoll runs nops inline: no epoll_wait at all
  } else {
    EXPECT_DOUBLE_EQ(s.batching_factor(), static_cast<double>(s.submitted) / static_cast<double>(s.enter_calls));
  }
  if (r.driver().kind() == driver_kind::uring) {
    // 100 nops pushed in one turn go out in one io_uring_enter.
    EXPECT_GE(s.batching_factor(), 50.0);
  }
  EXPECT_EQ(s.of(IORING_OP_NOP).completed, 100u);
}

}  // namespace

namespace {

// This thread's time in I/O wait (delay accounting), in clock ticks; -1 when
// the kernel does not keep it.
long blkio_ticks_of_this_thread() {
  std::FILE* f = std::fopen("/proc/thread-self/stat", "r");
  if (f == nullptr) return -1;
  char line[1024] = {};
  const bool got = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  if (!got) return -1;
  const char* p = std::strrchr(line, ')');
  if (p == nullptr) return -1;
  // Fields after the command name start at field 3; delayacct_blkio_ticks is 42.
  long value = -1;
  int field = 2;
  for (char* tok = std::strtok(const_cast<char*>(p + 1), " "); tok != nullptr; tok = std::strtok(nullptr, " ")) {
    if (++field == 42) {
      value = std::strtol(tok, nullptr, 10);
      break;
    }
  }
  return value;
}

// A runtime parked on a socket shows as idle, not as I/O wait (which
// monitoring reads as a slow disk): 300 ms parked in a recv add no blkio
// ticks to the thread.
TEST(Observability, ParkedOnASocketIsNotIoWait) {
  COIL_REQUIRE_URING();
  // Delay accounting on for this test, back as it was whatever happens.
  struct delayacct_on {
    const char* knob = "/proc/sys/kernel/task_delayacct";
    bool turned_on = false;
    static bool write(const char* path, char v) {
      std::FILE* f = std::fopen(path, "w");
      if (f == nullptr) return false;
      const bool wrote = std::fputc(v, f) != EOF;
      return std::fclose(f) == 0 && wrote;
    }
    bool enable() {
      char was = '1';
      if (std::FILE* f = std::fopen(knob, "r")) {
        was = static_cast<char>(std::fgetc(f));
        std::fclose(f);
      }
      if (was != '0') return true;
      turned_on = write(knob, '1');
      return turned_on;
    }
    ~delayacct_on() {
      if (turned_on) (void)write(knob, '0');
    }
  } delayacct;
  if (!delayacct.enable()) GTEST_SKIP() << "cannot turn on delay accounting";
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  bool supported = false;
  long before = -1, after = -1;
  std::thread writer([&] {
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(::write(sv[1], "x", 1), 1);
  });
  // Delay accounting covers threads started after it is on.
  std::thread parked([&] {
    test::run([&]() -> task<void> {
      supported = runtime::current()->driver().parks_without_iowait();
      before = blkio_ticks_of_this_thread();
      char c;
      auto r = co_await op_awaiter<ops::recv>(ops::recv{sv[0], &c, 1, 0});
      CO_ASSERT_OK(r);
      after = blkio_ticks_of_this_thread();
    }());
  });
  parked.join();
  writer.join();
  ::close(sv[0]);
  ::close(sv[1]);
  if (!supported) GTEST_SKIP() << "the kernel has no IORING_ENTER_NO_IOWAIT (6.15+)";
  ASSERT_GE(before, 0);
  EXPECT_LE(after - before, 3) << "ticks of I/O wait while parked on a socket (300 ms is 30)";
}

}  // namespace
