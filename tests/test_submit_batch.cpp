// submit_batch: both drivers hand operations to the kernel at push once the
// batch is full, instead of waiting for the next flush (fio's default
// iodepth_batch_submit=1 is submit_batch 1).
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "coil/fs/direct_file.hpp"
#include "coil/io/aio_driver.hpp"
#include "test_aio_util.hpp"
#include "coil/io/op_completion.hpp"
#include "coil/io/uring_driver.hpp"
#include "test_util.hpp"

namespace {

using coil::completion;
using coil::intrusive_list;

struct nop_op : coil::op_completion<coil::ops::nop> {
  nop_op() : op_completion(coil::ops::nop{}) {}
};

TEST(SubmitBatch, UringSubmitsEveryNthPush) {
  auto d = coil::uring_driver::create({.entries = 64, .submit_batch = 4});
  ASSERT_TRUE(d) << d.error().message();
  std::vector<nop_op> ops(10);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    (*d)->push(ops[i]);
    EXPECT_EQ((*d)->stats().submitted, (i + 1) / 4 * 4) << "after push " << i;
  }
  EXPECT_EQ((*d)->stats().enter_calls, 2u);
  ASSERT_TRUE((*d)->flush());  // the last two
  EXPECT_EQ((*d)->stats().submitted, 10u);
  intrusive_list<completion> out;
  std::size_t n = 0;
  while (n < ops.size()) {
    ASSERT_TRUE((*d)->wait(-1));
    n += (*d)->reap(out);
  }
  EXPECT_EQ(n, ops.size());
  while (completion* c = out.pop_front()) EXPECT_EQ(c->res, 0);
}

TEST(SubmitBatch, UringDefaultWaitsForTheFlush) {
  auto d = coil::uring_driver::create({.entries = 64});
  ASSERT_TRUE(d) << d.error().message();
  std::vector<nop_op> ops(10);
  for (auto& op : ops) (*d)->push(op);
  EXPECT_EQ((*d)->stats().submitted, 0u);
  EXPECT_EQ((*d)->stats().enter_calls, 0u);
  ASSERT_TRUE((*d)->wait(-1));
  EXPECT_EQ((*d)->stats().submitted, 10u);
  intrusive_list<completion> out;
  std::size_t n = (*d)->reap(out);
  while (n < ops.size()) {
    ASSERT_TRUE((*d)->wait(-1));
    n += (*d)->reap(out);
  }
}

// A file in dir holding text.
coil::unique_fd data_file(const coil::test::temp_dir& dir, const std::string& text) {
  coil::unique_fd fd(::open(dir.file("data").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  EXPECT_TRUE(fd) << std::strerror(errno);
  EXPECT_EQ(::pwrite(fd.get(), text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
  return fd;
}

// Waits until n completions were reaped.
void reap_all(coil::uring_driver& d, std::size_t n) {
  intrusive_list<completion> out;
  std::size_t got = 0;
  while (got < n) {
    ASSERT_TRUE(d.wait(-1));
    got += d.reap(out);
  }
  while (completion* c = out.pop_front()) EXPECT_GE(c->res, 0);
}

struct device_read : coil::op_completion<coil::dio_ops::read> {
  device_read(int fd, char* buf, uint64_t off) : op_completion(coil::dio_ops::read{{fd, buf, 1, off}}) {}
};

// O_DIRECT ops (direct_file on io_uring) go out in batches of
// device_submit_batch; other ops in the same turn still wait for the flush.
TEST(SubmitBatch, UringSubmitsDeviceOpsInSmallBatches) {
  coil::test::temp_dir dir;
  coil::unique_fd fd = data_file(dir, "abcdefghij");
  auto d = coil::uring_driver::create({.entries = 64});
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_EQ(coil::uring_options{}.device_submit_batch, 4u);
  std::array<char, 10> bufs{};
  std::deque<device_read> reads;  // not movable
  std::vector<nop_op> nops(3);
  for (std::size_t i = 0; i < 10; ++i) {
    reads.emplace_back(fd.get(), &bufs[i], i);
    (*d)->push(reads.back());
    if (i < 3) (*d)->push(nops[i]);  // counted in the SQ, not in the device batch
    const uint64_t device_pushed = i + 1;
    const uint64_t expect = device_pushed / 4 * 4 + (device_pushed >= 4 ? 3 : 0);
    EXPECT_EQ((*d)->stats().submitted, expect) << "after read " << i;
  }
  EXPECT_EQ((*d)->stats().enter_calls, 2u);
  ASSERT_TRUE((*d)->flush());
  EXPECT_EQ((*d)->stats().submitted, 13u);
  reap_all(**d, 13);
  EXPECT_EQ(std::string(bufs.data(), bufs.size()), "abcdefghij");
}

TEST(SubmitBatch, UringDeviceBatchZeroWaitsForTheFlush) {
  coil::test::temp_dir dir;
  coil::unique_fd fd = data_file(dir, "abcdefgh");
  auto d = coil::uring_driver::create({.entries = 64, .device_submit_batch = 0});
  ASSERT_TRUE(d) << d.error().message();
  std::array<char, 8> bufs{};
  std::deque<device_read> reads;
  for (std::size_t i = 0; i < 8; ++i) {
    reads.emplace_back(fd.get(), &bufs[i], i);
    (*d)->push(reads.back());
  }
  EXPECT_EQ((*d)->stats().enter_calls, 0u);
  reap_all(**d, 8);
  EXPECT_EQ(std::string(bufs.data(), bufs.size()), "abcdefgh");
}

void aio_submits_each_at_push(const coil::aio_options& opts) {
  coil::test::temp_dir dir;
  coil::unique_fd fd = data_file(dir, "abcdefgh");
  auto d = coil::aio_driver::create(opts);
  ASSERT_TRUE(d) << d.error().message();
  std::array<coil::aio_test::aio_req, 3> reqs;
  std::array<std::array<char, 2>, 3> bufs{};
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    coil::aio_prep_read(reqs[i].cb, fd.get(), bufs[i].data(), 2, 2 * i);
    (*d)->push(reqs[i]);
    EXPECT_EQ((*d)->stats().submitted, i + 1);  // before any flush
    EXPECT_EQ((*d)->stats().submit_calls, i + 1);
  }
  intrusive_list<coil::completion> done;
  std::size_t n = 0;
  while (n < reqs.size()) {
    ASSERT_TRUE((*d)->wait(-1));
    n += (*d)->reap(done);
  }
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i].res, 2);
    EXPECT_EQ(bufs[i][0], "aceg"[i]);
  }
}

TEST(SubmitBatch, AioSubmitsAtPush) { aio_submits_each_at_push({.capacity = 8, .submit_batch = 1}); }
TEST(SubmitBatch, AioDefaultSubmitsEachRequest) { aio_submits_each_at_push({}); }

}  // namespace
