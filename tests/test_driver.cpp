// The io_uring driver on its own (no runtime), completeio-style.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "coil/io/driver.hpp"
#include "coil/io/op_completion.hpp"
#include "coil/io/uring_driver.hpp"
#include "test_util.hpp"

namespace {

using coil::completion;
using coil::intrusive_list;
using coil::uring_driver;

struct nop_op : coil::op_completion<coil::ops::nop> {
  nop_op() : op_completion(coil::ops::nop{}) {}
};

struct pipe_read_op : coil::op_completion<coil::ops::read> {
  char buf[16] = {};
  explicit pipe_read_op(int f) : op_completion(coil::ops::read{f, nullptr, sizeof buf, 0}) { op.buf = buf; }
};

std::unique_ptr<uring_driver> make_driver(unsigned entries = 64) {
  auto d = uring_driver::create({.entries = entries});
  EXPECT_TRUE(d) << d.error().message();
  return std::move(*d);
}

// A NOP the kernel answers with ECANCELED (an injected result) for its
// first `cancels` submissions, as io-wq does for an op it could not start a
// worker for; a plain NOP after that.
struct spuriously_cancelled : completion {
  explicit spuriously_cancelled(int n);
  int cancels;
  int preps = 0;
};

void cancelled_prep(completion& c, io_uring_sqe& sqe) noexcept {
  auto& self = static_cast<spuriously_cancelled&>(c);
  io_uring_prep_nop(&sqe);
  if (self.preps++ < self.cancels) {
    sqe.rw_flags = 1u << 0;  // IORING_NOP_INJECT_RESULT (6.10+)
    sqe.len = static_cast<uint32_t>(-ECANCELED);
  }
}
int32_t nothing_to_perform(completion&, bool) noexcept { return 0; }
constexpr coil::op_vtable cancelled_nop{
    .prep = &cancelled_prep, .perform = &nothing_to_perform, .poll_events = 0, .opcode = IORING_OP_NOP,
    .consumes_fd = false, .never_blocks = true};

spuriously_cancelled::spuriously_cancelled(int n) : cancels(n) { ops = &cancelled_nop; }

// Pushes c and drives the driver until c is done.
void run_to_done(uring_driver& d, completion& c) {
  d.push(c);
  intrusive_list<completion> out;
  while (c.state != coil::op_state::done) {
    ASSERT_TRUE(d.wait(-1));
    d.reap(out);
  }
  out.clear();
}

TEST(Driver, SpuriousEcanceledIsResubmitted) {
  auto d = make_driver();
  if (!d->injects_nop_results()) GTEST_SKIP() << "the kernel cannot inject NOP results (6.10+)";
  spuriously_cancelled op(2);
  run_to_done(*d, op);
  EXPECT_EQ(op.res, 0);
  EXPECT_EQ(op.preps, 3);
  EXPECT_EQ(d->stats().cancel_retries, 2u);
  EXPECT_EQ(d->stats().completed, 1u);
  EXPECT_EQ(d->in_flight(), 0u);
}

TEST(Driver, SpuriousEcanceledRetriesAreBounded) {
  auto d = make_driver();
  if (!d->injects_nop_results()) GTEST_SKIP() << "the kernel cannot inject NOP results (6.10+)";
  spuriously_cancelled op(100);
  run_to_done(*d, op);
  EXPECT_EQ(op.res, -ECANCELED);
  EXPECT_EQ(op.preps, 1 + static_cast<int>(uring_driver::max_cancel_retries));
  EXPECT_EQ(d->stats().cancel_retries, uring_driver::max_cancel_retries);
  // Pushed again, it gets the whole budget again.
  op.preps = 0;
  op.cancels = 1;
  op.state = coil::op_state::idle;
  run_to_done(*d, op);
  EXPECT_EQ(op.res, 0);
  EXPECT_EQ(d->stats().cancel_retries, uring_driver::max_cancel_retries + 1);
}

TEST(Driver, RequestedCancelIsNotResubmitted) {
  auto d = make_driver();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  pipe_read_op rd(p[0]);  // nothing is ever written: only a cancel ends it
  d->push(rd);
  ASSERT_TRUE(d->flush());  // with the kernel
  intrusive_list<completion> others;
  d->cancel_and_wait(rd, others);
  EXPECT_EQ(rd.state, coil::op_state::done);
  EXPECT_EQ(rd.res, -ECANCELED);
  EXPECT_EQ(d->stats().cancel_retries, 0u);
  ::close(p[0]);
  ::close(p[1]);
}

TEST(Driver, BatchOfNopsIsOneEnterAndCompletesEach) {
  auto d = make_driver();
  std::vector<nop_op> ops(100);
  for (auto& op : ops) d->push(op);
  const auto before = d->stats().enter_calls;
  ASSERT_TRUE(d->wait(-1));
  EXPECT_EQ(d->stats().enter_calls - before, 1u);
  intrusive_list<completion> out;
  std::size_t n = d->reap(out);
  while (n < ops.size()) {
    ASSERT_TRUE(d->wait(-1));
    n += d->reap(out);
  }
  EXPECT_EQ(n, ops.size());
  std::size_t seen = 0;
  while (completion* c = out.pop_front()) {
    EXPECT_EQ(c->res, 0);
    EXPECT_EQ(c->state, coil::op_state::done);
    ++seen;
  }
  EXPECT_EQ(seen, ops.size());
  EXPECT_EQ(d->in_flight(), 0u);
}

TEST(Driver, MoreOpsThanCqWaitInUserSpace) {
  auto d = make_driver(4);  // CQ of 8
  ASSERT_EQ(d->capacity(), 8u);
  std::vector<nop_op> ops(1000);
  for (auto& op : ops) d->push(op);
  EXPECT_LE(d->in_flight(), d->capacity());
  EXPECT_GT(d->stats().queued_for_space, 0u);
  intrusive_list<completion> out;
  std::size_t n = 0;
  while (n < ops.size()) {
    ASSERT_TRUE(d->wait(-1));
    n += d->reap(out);
    EXPECT_LE(d->in_flight(), d->capacity());
  }
  EXPECT_EQ(n, ops.size());
  EXPECT_EQ(out.size(), ops.size());
  EXPECT_EQ(d->cq_overflow(), 0u);
  EXPECT_LE(d->stats().in_flight_max, d->capacity());
  out.clear();
}

TEST(Driver, CancelInFlightReadCompletesOnceWithEcanceled) {
  auto d = make_driver();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pipe_read_op rd(p[0]);
  d->push(rd);
  ASSERT_TRUE(d->flush());
  EXPECT_EQ(rd.state, coil::op_state::in_flight);
  intrusive_list<completion> out;
  d->cancel_and_wait(rd, out);
  EXPECT_EQ(rd.state, coil::op_state::done);
  EXPECT_EQ(rd.res, -ECANCELED);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(d->in_flight(), 0u);
  // The pipe's data was not consumed by the cancelled read.
  ASSERT_EQ(::write(p[1], "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  ::close(p[0]);
  ::close(p[1]);
}

TEST(Driver, CancelQueuedOpNeverReachesKernel) {
  auto d = make_driver(2);  // CQ of 4
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  std::vector<std::unique_ptr<pipe_read_op>> reads;
  for (int i = 0; i < 6; ++i) reads.push_back(std::make_unique<pipe_read_op>(p[0]));
  for (auto& r : reads) d->push(*r);
  EXPECT_EQ(reads[5]->state, coil::op_state::queued);
  intrusive_list<completion> out;
  for (auto& r : reads) d->cancel(*r);
  std::size_t n = 0;
  while (n < reads.size()) {
    ASSERT_TRUE(d->wait(-1));
    n += d->reap(out);
  }
  for (auto& r : reads) EXPECT_EQ(r->res, -ECANCELED);
  out.clear();
  ::close(p[0]);
  ::close(p[1]);
}

TEST(Driver, UnsupportedOpcodeCompletesWithEopnotsupp) {
  auto d = make_driver();
  nop_op op;
  static constexpr coil::op_vtable bogus{
      [](completion&, io_uring_sqe& s) noexcept { io_uring_prep_nop(&s); },
      [](completion&, bool) noexcept -> int32_t { return 0; }, 0, 250, false, true};
  op.ops = &bogus;  // 250: beyond any kernel's IORING_OP_LAST
  EXPECT_FALSE(d->supports(250));
  EXPECT_TRUE(d->supports(IORING_OP_NOP));
  d->push(op);
  intrusive_list<completion> out;
  ASSERT_TRUE(d->flush());
  EXPECT_EQ(d->reap(out), 1u);
  EXPECT_EQ(op.res, -EOPNOTSUPP);
  out.clear();
}

TEST(Driver, DestroyWithOpsInFlightDrainsThem) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pipe_read_op rd(p[0]);
  {
    auto d = make_driver();
    d->push(rd);
    ASSERT_TRUE(d->flush());
  }  // the driver cancels and waits; rd's buffer is no longer the kernel's
  ASSERT_EQ(::write(p[1], "y", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'y');
  ::close(p[0]);
  ::close(p[1]);
}

TEST(Driver, UsesSingleIssuerDeferTaskrunWhenAvailable) {
  auto d = make_driver();
  // Linux >= 6.1 has both; older kernels fall back to plainer setups.
  if (!(d->setup_flags() & IORING_SETUP_DEFER_TASKRUN)) GTEST_SKIP() << "kernel lacks DEFER_TASKRUN";
  EXPECT_TRUE(d->setup_flags() & IORING_SETUP_SINGLE_ISSUER);
}

}  // namespace

namespace {

// A cancel that comes after a worker finished the op, before the driver
// collected the result, must not replace it: an open's fd would leak.
TEST(EpollDriver, CancelAfterTheWorkerFinishedKeepsTheRealResult) {
  coil::test::temp_dir dir;
  const std::string path = dir.file("opened");
  auto d = coil::driver::create({.kind = coil::driver_kind::epoll});
  ASSERT_TRUE(d);
  coil::op_completion<coil::ops::openat> open{
      coil::ops::openat{AT_FDCWD, path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600}};
  (*d)->push(open);
  ASSERT_TRUE((*d)->flush());  // handed to a worker
  for (int i = 0; i < 500 && ::access(path.c_str(), F_OK) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the worker has queued its result
  (*d)->cancel(open);
  intrusive_list<completion> out;
  for (int i = 0; i < 1000 && out.empty(); ++i) {
    ASSERT_TRUE((*d)->wait(-1));
    (*d)->reap(out);
  }
  ASSERT_EQ(out.pop_front(), &open);
  ASSERT_GE(open.res, 0) << "the finished open was reported as " << open.res;
  EXPECT_EQ(::close(open.res), 0);
}

}  // namespace
