// aio_driver on its own: push, flush, eventfd, reap; capacity, partial
// submission, per-request errors, cancellation and teardown.
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <vector>

#include "coil/io/aio_driver.hpp"
#include "coil/io/dma_buffer.hpp"
#include "test_aio_util.hpp"

namespace coil {
namespace {

using aio_test::aio_req;
using aio_test::direct_dir;
using aio_test::pattern;
using aio_test::same;

constexpr std::size_t block = 4096;

std::unique_ptr<aio_driver> make_driver(unsigned capacity = 64) {
  auto d = aio_driver::create({.capacity = capacity, .submit_batch = 0});  // flush() submits
  if (!d) {
    ADD_FAILURE() << "aio_driver::create: " << d.error().message();
    return nullptr;
  }
  return std::move(*d);
}

// Blocks until every pushed request is reaped; returns them in order of reaping.
std::vector<completion*> run_all(aio_driver& d, std::size_t expected) {
  std::vector<completion*> got;
  intrusive_list<completion> done;
  for (int spins = 0; got.size() < expected && spins < 100000; ++spins) {
    EXPECT_TRUE(d.wait(-1));
    d.reap(done);
    while (completion* c = done.pop_front()) got.push_back(c);
    d.flush();
  }
  return got;
}

unique_fd open_direct(const std::string& path, int flags = O_RDWR) {
  return unique_fd(::open(path.c_str(), flags | O_DIRECT | O_CLOEXEC, 0644));
}

dma_buffer buffer(std::size_t n) {
  auto b = dma_buffer::allocate(n);
  EXPECT_TRUE(b) << b.error().message();
  return b ? std::move(*b) : dma_buffer{};
}

TEST(AioDriver, WriteThenReadRoundTripSignalsTheEventfd) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  auto d = make_driver();
  ASSERT_TRUE(d);
  ASSERT_GE(d->event_fd(), 0);
  unique_fd fd = open_direct(dir.file("rt"), O_RDWR | O_CREAT);
  ASSERT_TRUE(fd);
  dma_buffer out = buffer(8 * block), in = buffer(8 * block);
  aio_test::fill_pattern(out.span(), 7);

  aio_req w;
  aio_prep_write(w.cb, fd.get(), out.data(), out.size(), 0);
  d->push(w);
  EXPECT_EQ(d->in_flight(), 0u) << "nothing reaches the kernel before flush";
  d->flush();
  EXPECT_EQ(d->stats().submit_calls, 1u);
  // The eventfd becomes readable once the write completes.
  pollfd p{d->event_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  intrusive_list<completion> done;
  EXPECT_EQ(d->reap(done), 1u);
  EXPECT_EQ(done.pop_front(), &w);
  EXPECT_EQ(w.res, static_cast<int64_t>(out.size()));
  EXPECT_EQ(w.state, op_state::done);

  aio_req r;
  aio_prep_read(r.cb, fd.get(), in.data(), in.size(), 0);
  d->push(r);
  auto got = run_all(*d, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(r.res, static_cast<int64_t>(in.size()));
  EXPECT_TRUE(same(in.span(), out.span()));
  EXPECT_TRUE(same(aio_test::read_file(dir.file("rt")), out.span())) << "checked with plain read(2)";
}

TEST(AioDriver, VectoredReadAndWrite) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  auto d = make_driver();
  ASSERT_TRUE(d);
  unique_fd fd = open_direct(dir.file("v"), O_RDWR | O_CREAT);
  ASSERT_TRUE(fd);
  dma_buffer a = buffer(block), b = buffer(3 * block), c = buffer(block), e = buffer(3 * block);
  aio_test::fill_pattern(a.span(), 1);
  aio_test::fill_pattern(b.span(), 2);
  std::array<iovec, 2> wv{iovec{a.data(), a.size()}, iovec{b.data(), b.size()}};
  aio_req w;
  aio_prep_writev(w.cb, fd.get(), wv.data(), 2, block);  // at offset one block
  d->push(w);
  ASSERT_EQ(run_all(*d, 1).size(), 1u);
  ASSERT_EQ(w.res, static_cast<int64_t>(4 * block));
  // Read back split differently: 1 + 3 blocks.
  std::array<iovec, 2> rv{iovec{c.data(), c.size()}, iovec{e.data(), e.size()}};
  aio_req r;
  aio_prep_readv(r.cb, fd.get(), rv.data(), 2, block);
  d->push(r);
  ASSERT_EQ(run_all(*d, 1).size(), 1u);
  ASSERT_EQ(r.res, static_cast<int64_t>(4 * block));
  EXPECT_TRUE(same(c.span(), a.span()));
  EXPECT_TRUE(same(e.span(), b.span()));
}

TEST(AioDriver, MoreRequestsThanCapacityEachCompleteExactlyOnce) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  constexpr unsigned capacity = 4;
  constexpr std::size_t n = 100;
  const auto data = pattern(n * block, 3);
  ASSERT_TRUE(aio_test::write_file(dir.file("cap"), data));
  auto d = make_driver(capacity);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->capacity(), capacity);
  unique_fd fd = open_direct(dir.file("cap"), O_RDONLY);
  ASSERT_TRUE(fd);
  dma_buffer buf = buffer(n * block);
  std::vector<aio_req> reqs(n);
  for (std::size_t i = 0; i < n; ++i) {
    // Block i of the file into slot n-1-i of the buffer.
    aio_prep_read(reqs[i].cb, fd.get(), buf.data() + (n - 1 - i) * block, block, i * block);
    d->push(reqs[i]);
  }
  std::vector<int> seen(n, 0);
  std::size_t total = 0;
  intrusive_list<completion> done;
  while (total < n) {
    ASSERT_TRUE(d->wait(5'000'000'000));
    EXPECT_LE(d->in_flight(), capacity);
    d->reap(done);
    while (completion* c = done.pop_front()) {
      const auto i = static_cast<std::size_t>(static_cast<aio_req*>(c) - reqs.data());
      ASSERT_LT(i, n);
      ++seen[i];
      ++total;
      EXPECT_EQ(c->res, static_cast<int64_t>(block));
    }
    d->flush();
  }
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(seen[i], 1) << "request " << i;
    EXPECT_TRUE(same(buf.subspan((n - 1 - i) * block, block), std::span(data).subspan(i * block, block)))
        << "block " << i;
  }
  EXPECT_LE(d->stats().in_flight_max, capacity);
  EXPECT_GT(d->stats().queued_for_space, 0u);
  EXPECT_EQ(d->stats().submitted, n);
  EXPECT_EQ(d->in_flight(), 0u);
  EXPECT_FALSE(d->has_pending_work());
}

// IOCB_CMD_POLL on a pipe stays in flight until the test writes to that
// pipe, which makes the kernel-owned count fully deterministic.
void prep_poll(aio_iocb& cb, int fd) {
  cb = aio_iocb{};
  cb.opcode = 5;  // IOCB_CMD_POLL
  cb.fildes = static_cast<uint32_t>(fd);
  cb.buf = POLLIN;
}

TEST(AioDriver, CapacityIsNeverExceededAsRoomFreesUp) {
  constexpr unsigned capacity = 4;
  constexpr std::size_t n = 10;
  auto d = make_driver(capacity);
  ASSERT_TRUE(d);
  std::vector<unique_fd> rd, wr;
  std::vector<aio_req> reqs(n);
  for (std::size_t i = 0; i < n; ++i) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    rd.emplace_back(p[0]);
    wr.emplace_back(p[1]);
    prep_poll(reqs[i].cb, p[0]);
    d->push(reqs[i]);
  }
  d->flush();
  ASSERT_EQ(d->in_flight(), capacity);
  EXPECT_EQ(reqs[capacity].state, op_state::queued);
  intrusive_list<completion> done;
  std::vector<int> seen(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    // Requests were submitted in order; wake them one at a time.
    ASSERT_EQ(reqs[i].state, op_state::in_flight) << i;
    ASSERT_EQ(::write(wr[i].get(), "x", 1), 1);
    while (done.empty()) {
      ASSERT_TRUE(d->wait(5'000'000'000));
      d->reap(done);
    }
    while (completion* c = done.pop_front()) ++seen[static_cast<std::size_t>(static_cast<aio_req*>(c) - reqs.data())];
    d->flush();
    EXPECT_EQ(d->in_flight(), std::min<std::size_t>(capacity, n - 1 - i)) << "after waking " << i;
  }
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(seen[i], 1) << i;
    EXPECT_GT(reqs[i].res & POLLIN, 0) << i;
  }
  EXPECT_EQ(d->stats().in_flight_max, capacity);
}

TEST(AioDriver, CancelAndWaitOnACancellableRequest) {
  auto d = make_driver();
  ASSERT_TRUE(d);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  unique_fd r(p[0]), w(p[1]);
  aio_req poll;
  prep_poll(poll.cb, r.get());
  d->push(poll);
  d->flush();
  ASSERT_EQ(d->in_flight(), 1u);
  intrusive_list<completion> others;
  d->cancel_and_wait(poll, others);  // would block forever if io_cancel were ignored
  EXPECT_EQ(poll.state, op_state::done);
  EXPECT_EQ(d->in_flight(), 0u);
  EXPECT_TRUE(others.empty());
}

TEST(AioDriver, PartialSubmitKeepsTheTailAndReportsTheBadRequest) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  const auto data = pattern(8 * block, 4);
  ASSERT_TRUE(aio_test::write_file(dir.file("p"), data));
  auto d = make_driver();
  ASSERT_TRUE(d);
  unique_fd fd = open_direct(dir.file("p"), O_RDONLY);
  ASSERT_TRUE(fd);
  dma_buffer buf = buffer(8 * block);
  std::array<aio_req, 8> reqs;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    // Request 2 names a descriptor that is not open: io_submit takes 0 and 1,
    // stops, and reports EBADF for 2 on the next call.
    const int f = i == 2 ? 1000000 : fd.get();
    aio_prep_read(reqs[i].cb, f, buf.data() + i * block, block, i * block);
    d->push(reqs[i]);
  }
  auto got = run_all(*d, reqs.size());
  ASSERT_EQ(got.size(), reqs.size());
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (i == 2) {
      EXPECT_EQ(reqs[i].res, -EBADF);
    } else {
      EXPECT_EQ(reqs[i].res, static_cast<int64_t>(block)) << i;
      EXPECT_TRUE(same(buf.subspan(i * block, block), std::span(data).subspan(i * block, block))) << i;
    }
  }
  EXPECT_GE(d->stats().partial_submits, 1u);
  EXPECT_EQ(d->stats().submitted, reqs.size() - 1);
}

TEST(AioDriver, BadDescriptorFailsThatRequestOnly) {
  auto d = make_driver();
  ASSERT_TRUE(d);
  char buf[16];
  aio_req r;
  aio_prep_read(r.cb, -1, buf, sizeof buf, 0);
  d->push(r);
  ASSERT_EQ(run_all(*d, 1).size(), 1u);
  EXPECT_EQ(r.res, -EBADF);
  EXPECT_EQ(d->in_flight(), 0u);
}

TEST(AioDriver, FsyncAndFdatasync) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  auto d = make_driver();
  ASSERT_TRUE(d);
  unique_fd fd = open_direct(dir.file("s"), O_RDWR | O_CREAT);
  ASSERT_TRUE(fd);
  std::array<aio_req, 2> s;
  aio_prep_fsync(s[0].cb, fd.get(), false);
  aio_prep_fsync(s[1].cb, fd.get(), true);
  d->push(s[0]);
  d->push(s[1]);
  ASSERT_EQ(run_all(*d, 2).size(), 2u);
  EXPECT_EQ(s[0].res, 0);
  EXPECT_EQ(s[1].res, 0);
}

TEST(AioDriver, FsyncWithoutSupportIsTheKernelsEinval) {
  // A pipe has no fsync; the kernel rejects the request at submission.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  unique_fd r(p[0]), w(p[1]);
  auto d = make_driver();
  ASSERT_TRUE(d);
  aio_req s;
  aio_prep_fsync(s.cb, w.get(), false);
  d->push(s);
  ASSERT_EQ(run_all(*d, 1).size(), 1u);
  EXPECT_EQ(s.res, -EINVAL);
}

TEST(AioDriver, WriteSyncLevelsGoInAioRwFlags) {
  aio_iocb cb;
  aio_prep_write(cb, 3, nullptr, 0, 0, write_sync::dsync);
  EXPECT_EQ(cb.rw_flags, RWF_DSYNC);
  aio_prep_writev(cb, 3, nullptr, 0, 0, write_sync::sync);
  EXPECT_EQ(cb.rw_flags, RWF_SYNC);
  aio_prep_write(cb, 3, nullptr, 0, 0);
  EXPECT_EQ(cb.rw_flags, 0);
  EXPECT_EQ(cb.reqprio, 0);
  EXPECT_EQ(cb.flags, 0u);
}

TEST(AioDriver, TheKernelReadsRwFlagsFromOurField) {
  // RWF_APPEND has a visible effect (the write lands at end of file whatever
  // the offset), and an unknown flag is refused: together they show the
  // flags reach the kernel's aio_rw_flags, where RWF_DSYNC goes too.
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  const std::string path = dir.file("flags");
  ASSERT_TRUE(aio_test::write_file(path, pattern(block, 5)));
  auto d = make_driver();
  ASSERT_TRUE(d);
  unique_fd fd = open_direct(path, O_RDWR);
  ASSERT_TRUE(fd);
  dma_buffer buf = buffer(block);
  aio_test::fill_pattern(buf.span(), 6);
  std::array<aio_req, 3> w;
  aio_prep_write(w[0].cb, fd.get(), buf.data(), block, 0, write_sync::dsync);
  aio_prep_write(w[1].cb, fd.get(), buf.data(), block, 0);
  w[1].cb.rw_flags = RWF_APPEND;
  aio_prep_write(w[2].cb, fd.get(), buf.data(), block, 0);
  w[2].cb.rw_flags = 0x40000000;  // no such flag
  for (auto& c : w) d->push(c);
  ASSERT_EQ(run_all(*d, 3).size(), 3u);
  EXPECT_EQ(w[0].res, static_cast<int64_t>(block));
  EXPECT_EQ(w[1].res, static_cast<int64_t>(block));
  EXPECT_EQ(w[2].res, -EOPNOTSUPP);
  const auto back = aio_test::read_file(path);
  ASSERT_EQ(back.size(), 2 * block) << "RWF_APPEND appended";
  EXPECT_TRUE(same(std::span(back).subspan(0, block), buf.span()));
  EXPECT_TRUE(same(std::span(back).subspan(block, block), buf.span()));
}

TEST(AioDriver, CancelWhileQueuedCompletesWithEcanceled) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  ASSERT_TRUE(aio_test::write_file(dir.file("c"), pattern(2 * block, 8)));
  auto d = make_driver(1);
  ASSERT_TRUE(d);
  unique_fd fd = open_direct(dir.file("c"), O_RDONLY);
  dma_buffer buf = buffer(2 * block);
  std::array<aio_req, 2> r;
  for (std::size_t i = 0; i < 2; ++i) {
    aio_prep_read(r[i].cb, fd.get(), buf.data() + i * block, block, i * block);
    d->push(r[i]);
  }
  d->flush();
  EXPECT_EQ(r[1].state, op_state::queued) << "capacity 1 keeps the second in user space";
  d->cancel(r[1]);
  auto got = run_all(*d, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(r[0].res, static_cast<int64_t>(block));
  EXPECT_EQ(r[1].res, -ECANCELED);
  EXPECT_EQ(d->stats().submitted, 1u);
}

TEST(AioDriver, CancelAndWaitReturnsOnlyOnceTheKernelLetGo) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  const auto data = pattern(64 * block, 9);
  ASSERT_TRUE(aio_test::write_file(dir.file("cw"), data));
  auto d = make_driver();
  ASSERT_TRUE(d);
  unique_fd fd = open_direct(dir.file("cw"), O_RDONLY);
  dma_buffer buf = buffer(64 * block), other = buffer(block);
  aio_req big, small;
  aio_prep_read(big.cb, fd.get(), buf.data(), buf.size(), 0);
  aio_prep_read(small.cb, fd.get(), other.data(), block, 0);
  d->push(small);
  d->push(big);
  d->flush();
  intrusive_list<completion> others;
  d->cancel_and_wait(big, others);
  EXPECT_EQ(big.state, op_state::done);
  EXPECT_FALSE(big.linked());
  // Regular files cannot cancel a started read: it finished, with its data.
  if (big.res >= 0) {
    EXPECT_EQ(big.res, static_cast<int64_t>(buf.size()));
    EXPECT_TRUE(same(buf.span(), data));
  } else {
    EXPECT_EQ(big.res, -ECANCELED);
  }
  // The other request is reported exactly once: meanwhile, or by a later reap.
  std::size_t reported = others.size();
  if (reported == 1) {
    EXPECT_EQ(others.front(), &small);
  }
  others.clear();
  if (small.state != op_state::done) reported += run_all(*d, 1).size();
  d->reap(others);
  reported += others.size();
  EXPECT_EQ(reported, 1u);
  EXPECT_EQ(small.res, static_cast<int64_t>(block));
}

TEST(AioDriver, DestructorWaitsForRequestsInFlight) {
  direct_dir dir;
  COIL_REQUIRE_DIRECT_DIR(dir);
  ASSERT_TRUE(aio_test::write_file(dir.file("d"), pattern(256 * block, 10)));
  unique_fd fd = open_direct(dir.file("d"), O_RDONLY);
  dma_buffer buf = buffer(256 * block);
  std::array<aio_req, 16> r;
  {
    auto d = make_driver(8);
    ASSERT_TRUE(d);
    for (std::size_t i = 0; i < r.size(); ++i) {
      aio_prep_read(r[i].cb, fd.get(), buf.data() + i * 16 * block, 16 * block, i * 16 * block);
      d->push(r[i]);
    }
    d->flush();
    EXPECT_EQ(d->in_flight(), 8u);
  }
  // Submitted requests finished before the context went away; the queued
  // ones never reached the kernel.
  for (std::size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].state, op_state::done) << i;
    EXPECT_EQ(r[i].res, i < 8 ? static_cast<int64_t>(16 * block) : -ECANCELED) << i;
    EXPECT_FALSE(r[i].linked());
  }
}

TEST(AioDriver, ZeroCapacityIsRefused) {
  auto d = aio_driver::create({.capacity = 0});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error(), std::errc::invalid_argument);
}

}  // namespace
}  // namespace coil
