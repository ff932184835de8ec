// AIO under the runtime (the driver's AIO backend): batching, capacity,
// frames destroyed mid-read, runtime teardown with requests in flight,
// errors, and the facade without a runtime.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "coil/fs/direct_file.hpp"
#include "coil/io/dma_buffer.hpp"
#include "coil/io/driver.hpp"
#include "coil/io/op_completion.hpp"
#include "coil/rt/time.hpp"
#include "coil/rt/when.hpp"
#include "test_aio_util.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using aio_test::direct_dir;
using aio_test::pattern;
using aio_test::same;

constexpr std::size_t block = 4096;
constexpr std::size_t mid_len = 64 * block;  // one read in DestroyingAFrameMidRead

// The current runtime's AIO backend counters.
aio_stats aio_now() { return runtime::current()->driver().aio_counters(); }

runtime_options with_aio(aio_options a) {
  runtime_options o;
  o.aio = a;
  return o;
}

direct_file adopt(const std::string& path, int flags, dio_engine engine) {
  auto f = direct_file::adopt(unique_fd(::open(path.c_str(), flags | O_DIRECT | O_CLOEXEC, 0644)), {.engine = engine});
  EXPECT_TRUE(f) << path << ": " << f.error().message();
  return f ? std::move(*f) : direct_file{};
}

dma_buffer buffer(std::size_t n) {
  auto b = dma_buffer::allocate(n);
  EXPECT_TRUE(b) << b.error().message();
  return b ? std::move(*b) : dma_buffer{};
}

// runtime::pending_ops lists AIO requests too: the io_uring opcode doing the
// same, the file's fd, queued or in flight, and the waiting task's name.
TEST(AioRuntime, PendingRequestsAreListedWithTheirTask) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  constexpr std::size_t n = 4;
  ASSERT_TRUE(aio_test::write_file(dir.file("listed"), pattern(n * block, 3)));
  direct_file f = adopt(dir.file("listed"), O_RDWR, dio_engine::aio);
  dma_buffer buf = buffer(n * block);
  test::run([&]() -> task<void> {
    runtime& rt = *runtime::current();
    std::vector<join_handle<void>> hs;
    for (std::size_t i = 0; i < n; ++i) {
      hs.push_back(rt.spawn([](const direct_file& f, std::span<std::byte> b, std::size_t i) -> task<void> {
        co_await set_task_name(i % 2 == 0 ? "reader" : "writer");
        if (i % 2 == 0) {
          auto r = co_await f.read_at(b, i * block);
          EXPECT_TRUE(r && *r == block);
        } else {
          auto w = co_await f.write_at(b, i * block);
          EXPECT_TRUE(w && *w == block);
        }
      }(f, buf.subspan(i * block, block), i)));
    }
    co_await yield();  // each task has pushed its request; none is reaped before the next park
    pending_op_info ops[16];
    const std::size_t listed = rt.pending_ops(ops);
    std::size_t reads = 0, writes = 0;
    for (std::size_t k = 0; k < std::min(listed, std::size(ops)); ++k) {
      if (ops[k].fd != f.fd()) continue;  // not the file's
      EXPECT_NE(ops[k].age_ms, pending_op_info::unknown_age);
      if (ops[k].opcode == IORING_OP_READ) {
        ++reads;
        EXPECT_STREQ(ops[k].task, "reader");
      } else {
        EXPECT_EQ(ops[k].opcode, IORING_OP_WRITE);
        ++writes;
        EXPECT_STREQ(ops[k].task, "writer");
      }
    }
    EXPECT_EQ(reads, n / 2);
    EXPECT_EQ(writes, n / 2);
    for (auto& h : hs) co_await h;
    EXPECT_EQ(rt.pending_ops({}), 0u);
  }());
}

// With submit_batch 0 (the default is 1, like fio).
TEST(AioRuntime, ReadsOfOneTurnGoOutInOneSubmit) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  constexpr std::size_t n = 32;
  const auto data = pattern(n * block, 11);
  ASSERT_TRUE(aio_test::write_file(dir.file("batch"), data));
  direct_file f = adopt(dir.file("batch"), O_RDONLY, dio_engine::aio);
  dma_buffer buf = buffer(n * block);
  std::vector<int> done(n, 0);
  uint64_t submit_calls = 0;
  test::run([&]() -> task<void> {
    runtime& rt = *runtime::current();
    std::vector<join_handle<void>> hs;
    for (std::size_t i = 0; i < n; ++i) {
      hs.push_back(rt.spawn([](const direct_file& f, std::span<std::byte> b, std::size_t i, int& d) -> task<void> {
        auto r = co_await f.read_at(b, i * block);
        EXPECT_TRUE(r && *r == block) << i;
        ++d;
      }(f, buf.subspan(i * block, block), i, done[i])));
    }
    for (auto& h : hs) co_await h;
    submit_calls = aio_now().submit_calls;
  }(), with_aio({.submit_batch = 0}));
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(done[i], 1) << i;
  EXPECT_TRUE(same(buf.span(), data));
  // All 32 tasks pushed in the same loop turn: one io_submit for all.
  EXPECT_EQ(submit_calls, 1u);
}

TEST(AioRuntime, OneParkWaitsForAioAndTheRingTogether) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  const auto data = pattern(64 * block, 12);
  ASSERT_TRUE(aio_test::write_file(dir.file("both"), data));
  direct_file f = adopt(dir.file("both"), O_RDONLY, dio_engine::aio);
  dma_buffer buf = buffer(64 * block);
  bool read_ok = false, slept = false;
  test::run([&]() -> task<void> {
    // Sequential reads park the runtime with only the AIO eventfd read in
    // the main driver; a timer runs meanwhile on the same park.
    auto reader = [&]() -> task<bool> {
      for (std::size_t i = 0; i < 64; ++i) {
        auto r = co_await f.read_at(buf.subspan(i * block, block), i * block);
        if (!r || *r != block) co_return false;
      }
      co_return true;
    };
    auto sleeper = []() -> task<bool> {
      auto r = co_await sleep_for(2ms);
      co_return r.has_value();
    };
    auto [r, s] = co_await when_all(reader(), sleeper());
    read_ok = r;
    slept = s;
  }());
  EXPECT_TRUE(read_ok);
  EXPECT_TRUE(slept);
  EXPECT_TRUE(same(buf.span(), data));
}

TEST(AioRuntime, MoreRequestsThanCapacityEachCompleteExactlyOnce) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  constexpr std::size_t n = 64;
  const auto data = pattern(n * block, 13);
  ASSERT_TRUE(aio_test::write_file(dir.file("cap"), data));
  direct_file f = adopt(dir.file("cap"), O_RDONLY, dio_engine::aio);
  dma_buffer buf = buffer(n * block);
  std::vector<int> done(n, 0);
  aio_stats st;
  test::run([&]() -> task<void> {
    runtime& rt = *runtime::current();
    std::vector<join_handle<void>> hs;
    for (std::size_t i = 0; i < n; ++i) {
      hs.push_back(rt.spawn([](const direct_file& f, std::span<std::byte> b, std::size_t i, int& d) -> task<void> {
        auto r = co_await f.read_at(b, i * block);
        EXPECT_TRUE(r && *r == block) << i;
        ++d;
      }(f, buf.subspan((n - 1 - i) * block, block), i, done[i])));
    }
    for (auto& h : hs) co_await h;
    st = aio_now();
  }(), with_aio({.capacity = 4}));
  EXPECT_EQ(st.in_flight_max, 4u);
  EXPECT_GT(st.queued_for_space, 0u);
  EXPECT_EQ(st.completed, n);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(done[i], 1) << i;
    EXPECT_TRUE(same(buf.subspan((n - 1 - i) * block, block), std::span(data).subspan(i * block, block))) << i;
  }
}

// A frame destroyed while its read is in flight: the destructor must return
// only after the kernel finished with the buffer. The buffer is heap memory
// owned by the frame, so a late write would land in freed (and, below,
// reused) memory; ASan checks every user-space access on the way.
TEST(AioRuntime, DestroyingAFrameMidReadWaitsForTheKernel) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  constexpr std::size_t len = mid_len;
  const auto data = pattern(16 * len, 14);
  ASSERT_TRUE(aio_test::write_file(dir.file("mid"), data));
  direct_file f = adopt(dir.file("mid"), O_RDONLY, dio_engine::aio);
  struct free_deleter {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  int in_flight_at_destroy = 0, intact_after = 0;
  constexpr int rounds = 1000;
  test::run([&]() -> task<void> {
    for (int i = 0; i < rounds; ++i) {
      bool landed = false;
      const std::size_t off = static_cast<std::size_t>(i % 16) * len;
      auto reader = [](const direct_file& f, uint64_t off, bool& landed,
                       std::span<const std::byte> want) -> task<void> {
        std::unique_ptr<std::byte, free_deleter> mem(static_cast<std::byte*>(std::aligned_alloc(4096, mid_len)));
        std::memset(mem.get(), 0, mid_len);
        // Declared after mem, so destroyed before it: by then the read
        // must have finished, and its bytes must be in mem.
        struct probe {
          std::byte* p;
          std::span<const std::byte> want;
          bool& landed;
          ~probe() { landed = std::memcmp(p, want.data(), mid_len) == 0; }
        } pr{mem.get(), want, landed};
        auto r = co_await f.read_at(std::span<std::byte>(mem.get(), mid_len), off);
        (void)r;
      };
      task<void> t = reader(f, off, landed, std::span(data).subspan(off, len));
      t.handle().resume();  // runs to the read and suspends there
      (void)co_await nop();  // submitted at push (submit_batch 1); give it a turn
      const bool was_in_flight = aio_now().in_flight == 1;
      in_flight_at_destroy += was_in_flight;
      t = task<void>();  // destroys the frame
      if (was_in_flight) {
        EXPECT_TRUE(landed) << "round " << i << ": the frame went away before the read finished";
      }
      EXPECT_EQ(aio_now().in_flight, 0u);
      // Reuse the freed memory: a late kernel write would show here.
      std::unique_ptr<std::byte, free_deleter> again(static_cast<std::byte*>(std::aligned_alloc(4096, len)));
      std::memset(again.get(), 0xa5, len);
      intact_after += std::all_of(again.get(), again.get() + len, [](std::byte b) { return b == std::byte{0xa5}; });
    }
  }());
  EXPECT_EQ(intact_after, rounds);
  // The point of the test is the in-flight case; O_DIRECT reads of 256 KiB
  // are slow enough that nearly every round hits it.
  EXPECT_GT(in_flight_at_destroy, rounds / 2) << "reads finished before the frames were destroyed";
}

// The facade's eventfd read can complete while the main driver waits for
// another op's cancellation (a frame destroyed mid-read): it must not be
// handed out with the other completions, as if it were the caller's.
TEST(AioRuntime, TheEventfdReadIsNeverHandedOut) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  const auto data = pattern(block, 21);
  ASSERT_TRUE(aio_test::write_file(dir.file("notify"), data));
  unique_fd fd(::open(dir.file("notify").c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  ASSERT_TRUE(fd);
  dma_buffer buf = buffer(block);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  unique_fd r(p[0]), w(p[1]);
  auto d = driver::create();
  ASSERT_TRUE(d);
  char c = 0;
  op_completion<ops::read> stuck{ops::read{r.get(), &c, 1, ops::current_position}};
  op_completion<dio_ops::read> rd{dio_ops::read{{fd.get(), buf.data(), static_cast<uint32_t>(block), 0}, true}};
  (*d)->push(stuck);
  (*d)->push(rd);  // submitted at push (submit_batch 1)
  intrusive_list<completion> out;
  ASSERT_TRUE((*d)->flush());
  (*d)->reap(out);  // arms the eventfd read
  ASSERT_TRUE((*d)->flush());  // and submits it
  EXPECT_TRUE(out.empty());
  std::this_thread::sleep_for(50ms);  // the AIO read completes meanwhile
  (*d)->cancel_and_wait(stuck, out);
  EXPECT_TRUE(out.empty()) << "the eventfd read came out of cancel_and_wait";
  for (int i = 0; i < 1000 && out.empty(); ++i) {
    ASSERT_TRUE((*d)->wait(-1));
    (*d)->reap(out);
  }
  ASSERT_EQ(out.pop_front(), &rd);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(rd.res, static_cast<int32_t>(block));
  EXPECT_TRUE(same(buf.span(), data));
}

TEST(AioRuntime, RuntimeDestroyedWithReadsInFlight) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  constexpr std::size_t len = 32 * block;
  const auto data = pattern(8 * len, 15);
  ASSERT_TRUE(aio_test::write_file(dir.file("rtgone"), data));
  direct_file f = adopt(dir.file("rtgone"), O_RDONLY, dio_engine::aio);
  int landed = 0, in_flight = 0;
  for (int round = 0; round < 50; ++round) {
    auto rt = runtime::create();
    ASSERT_TRUE(rt);
    std::vector<dma_buffer> bufs;
    for (int i = 0; i < 8; ++i) bufs.push_back(buffer(len));
    std::vector<int> finished(8, 0);
    for (int i = 0; i < 8; ++i) {
      (*rt)
          ->spawn([](const direct_file& f, std::span<std::byte> b, uint64_t off,
                     int& fin) -> task<void> {
            auto r = co_await f.read_at(b, off);
            fin = r && *r == b.size();
          }(f, bufs[static_cast<std::size_t>(i)].span(), static_cast<uint64_t>(i) * len,
                               finished[static_cast<std::size_t>(i)]))
          .detach();
    }
    (*rt)->block_on([]() -> task<void> {
      (void)co_await nop();
      (void)co_await nop();
    }());
    in_flight += static_cast<int>((*rt)->driver().aio_counters().in_flight);
    rt->reset();  // destroys the readers' frames mid-read, then the backend
    for (int i = 0; i < 8; ++i) {
      const auto u = static_cast<std::size_t>(i);
      // Whatever was submitted finished before its frame went away.
      landed += same(bufs[u].span(), std::span(data).subspan(u * len, len));
    }
  }
  EXPECT_GT(in_flight, 0) << "no read was in flight when a runtime went away";
  EXPECT_GE(landed, in_flight);
}

// The driver facade runs an op bound for AIO without a runtime: pushed,
// listed, waited for and reaped like any other completion.
TEST(AioRuntime, TheDriverFacadeRunsAioOpsWithoutARuntime) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  constexpr std::size_t len = 64 * block;
  const auto data = pattern(len, 16);
  ASSERT_TRUE(aio_test::write_file(dir.file("facade"), data));
  unique_fd fd(::open(dir.file("facade").c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  ASSERT_TRUE(fd);
  dma_buffer buf = buffer(len);
  auto d = driver::create();
  ASSERT_TRUE(d);
  op_completion<dio_ops::read> rd{dio_ops::read{{fd.get(), buf.data(), static_cast<uint32_t>(len), 0}, true}};
  ASSERT_NE(rd.ops->prep_iocb, nullptr);
  (*d)->push(rd);
  std::size_t listed = 0;
  (*d)->for_each_pending([&](completion& c, bool) { listed += &c == &rd; });
  EXPECT_EQ(listed, 1u);
  intrusive_list<completion> out;
  for (int i = 0; i < 1000 && out.empty(); ++i) {
    ASSERT_TRUE((*d)->wait(-1));
    (*d)->reap(out);
  }
  ASSERT_EQ(out.pop_front(), &rd);
  EXPECT_TRUE(out.empty()) << "the facade's own eventfd read is never handed out";
  ASSERT_TRUE(rd.result());
  EXPECT_EQ(*rd.result(), len);
  EXPECT_TRUE(same(buf.span(), data));
  EXPECT_EQ((*d)->aio_counters().completed, 1u);
  EXPECT_FALSE((*d)->has_pending_work());
}

TEST(AioRuntime, CancelledTaskStillGetsItsReadBack) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  constexpr std::size_t len = 64 * block;
  ASSERT_TRUE(aio_test::write_file(dir.file("cancel"), pattern(len, 17)));
  direct_file f = adopt(dir.file("cancel"), O_RDONLY, dio_engine::aio);
  dma_buffer buf = buffer(len);
  result<size_t> got = 0;
  test::run([&]() -> task<void> {
    auto h =
        runtime::current()->spawn([](const direct_file& f, std::span<std::byte> b, result<size_t>& got) -> task<void> {
          got = co_await f.read_at(b, 0);
        }(f, buf.span(), got));
    (void)co_await nop();
    (void)co_await nop();
    h.cancel();  // files cannot cancel a started read: it completes normally
    co_await h;
  }());
  if (got) {
    EXPECT_EQ(*got, len);
  } else {
    EXPECT_EQ(got.error(), std::errc::operation_canceled);
  }
}

TEST(AioRuntime, NoRuntimeOnThisThread) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  ASSERT_TRUE(aio_test::write_file(dir.file("nort"), pattern(block, 18)));
  ASSERT_EQ(runtime::current(), nullptr);
  for (dio_engine e : {dio_engine::aio, dio_engine::uring}) {
    direct_file f = adopt(dir.file("nort"), O_RDONLY, e);
    dma_buffer buf = buffer(block);
    result<size_t> got = 0;
    auto body = [&]() -> test::foreign_coro { got = co_await f.read_at(buf.span(), 0); };
    auto c = body();
    ASSERT_TRUE(c.done()) << "without a runtime nothing may suspend";
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error(), errc::no_runtime);
  }
}

TEST(AioRuntime, BadDescriptorIsAnError) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  ASSERT_TRUE(aio_test::write_file(dir.file("ro"), pattern(block, 19)));
  for (dio_engine e : {dio_engine::aio, dio_engine::uring}) {
    // Writing to a read-only descriptor: EBADF from the kernel, per request.
    direct_file f = adopt(dir.file("ro"), O_RDONLY, e);
    dma_buffer buf = buffer(block);
    auto got = test::run([&]() -> task<result<size_t>> { co_return co_await f.write_at(buf.span(), 0); }());
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error(), std::errc::bad_file_descriptor);
  }
}

// An AIO backend that cannot be created fails the request that needed it,
// with the reason, and the runtime carries on.
TEST(AioRuntime, ABackendThatCannotStartFailsTheRequest) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  ASSERT_TRUE(aio_test::write_file(dir.file("nocap"), pattern(block, 20)));
  direct_file f = adopt(dir.file("nocap"), O_RDONLY, dio_engine::aio);
  dma_buffer buf = buffer(block);
  auto [aio, nop_ok] = test::run([&]() -> task<std::pair<result<size_t>, bool>> {
    auto r = co_await f.read_at(buf.span(), 0);
    auto n = co_await nop();
    co_return std::pair{r, n.has_value()};
  }(), with_aio({.capacity = 0}));
  ASSERT_FALSE(aio);
  EXPECT_EQ(aio.error(), std::errc::invalid_argument);
  EXPECT_TRUE(nop_ok);
}

}  // namespace
}  // namespace coil
