// Multishot hooks on the io_uring driver alone: they run after the CQ walk
// that found their results, one result per hook, in order.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <vector>

#include "coil/io/uring_driver.hpp"
#include "test_util.hpp"

namespace {

using coil::completion;
using coil::intrusive_list;
using coil::uring_driver;

// A multishot poll that records, for every result, what its hook saw.
struct poll_watch : completion {
  uring_driver* d = nullptr;
  int fd = -1;
  struct seen {
    int32_t res;
    uint32_t flags;
    uint64_t extra_results;  // the driver's count when the hook ran
    uint32_t in_flight;
    bool done;
  };
  std::vector<seen> got;
};

void watch_prep(completion& c, io_uring_sqe& sqe) noexcept {
  io_uring_prep_poll_multishot(&sqe, static_cast<poll_watch&>(c).fd, POLLIN);
}
int32_t no_perform(completion&, bool) noexcept { return -EOPNOTSUPP; }
void watch_hook(completion& c) noexcept {
  auto& w = static_cast<poll_watch&>(c);
  w.got.push_back({c.res, c.cqe_flags, w.d->stats().extra_results, w.d->in_flight(), c.state == coil::op_state::done});
}
constexpr coil::op_vtable watch_ops{.prep = &watch_prep,
                                    .perform = &no_perform,
                                    .poll_events = POLLIN,
                                    .opcode = IORING_OP_POLL_ADD,
                                    .consumes_fd = false,
                                    .never_blocks = false,
                                    .on_cqe = &watch_hook};

TEST(DriverHooks, MultishotResultsReachTheHookOneAtATimeAfterTheWalk) {
  auto made = uring_driver::create({.entries = 64});
  ASSERT_TRUE(made) << made.error().message();
  uring_driver& d = **made;
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  poll_watch w;
  w.d = &d;
  w.fd = p[0];
  w.ops = &watch_ops;
  d.push(w);
  ASSERT_TRUE(d.flush());
  // Several wakeups posted before one reap: the same op has several CQEs
  // waiting in one walk.
  constexpr int rounds = 40;
  for (int i = 0; i < rounds; ++i) {
    ASSERT_EQ(::write(p[1], "x", 1), 1);
    ASSERT_TRUE(d.flush());
  }
  intrusive_list<completion> out;
  d.reap(out);
  EXPECT_TRUE(out.empty());
  ASSERT_GE(w.got.size(), 2u);
  for (std::size_t i = 0; i < w.got.size(); ++i) {
    EXPECT_TRUE(w.got[i].res & POLLIN);
    EXPECT_TRUE(w.got[i].flags & IORING_CQE_F_MORE);
    // Each hook ran after its own CQE was counted and before the next one.
    EXPECT_EQ(w.got[i].extra_results, i + 1) << "result " << i;
    EXPECT_EQ(w.got[i].in_flight, 1u);
    EXPECT_FALSE(w.got[i].done);
  }
  const std::size_t armed_results = w.got.size();
  d.cancel(w);
  while (w.state != coil::op_state::done) {
    ASSERT_TRUE(d.wait(-1));
    d.reap(out);
  }
  // The final result: counters settled (the cancel's CQE may still be due).
  ASSERT_GT(w.got.size(), armed_results);
  const auto& last = w.got.back();
  EXPECT_FALSE(last.flags & IORING_CQE_F_MORE);
  EXPECT_TRUE(last.done);
  EXPECT_LE(last.in_flight, 1u);
  EXPECT_TRUE(out.empty());
  ::close(p[0]);
  ::close(p[1]);
}

}  // namespace
