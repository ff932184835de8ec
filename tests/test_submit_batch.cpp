// submit_batch: both drivers hand operations to the kernel at push once the
// batch is full, instead of waiting for the next flush (fio's default
// iodepth_batch_submit=1 is submit_batch 1).
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "coil/io/aio_driver.hpp"
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

TEST(SubmitBatch, AioSubmitsAtPush) {
  coil::test::temp_dir dir;
  const std::string path = dir.file("data");
  coil::unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd) << std::strerror(errno);
  ASSERT_EQ(::pwrite(fd.get(), "abcdefgh", 8, 0), 8);
  auto d = coil::aio_driver::create({.capacity = 8, .submit_batch = 1});
  ASSERT_TRUE(d) << d.error().message();
  std::array<coil::aio_completion, 3> reqs;
  std::array<std::array<char, 2>, 3> bufs{};
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    coil::aio_prep_read(reqs[i].cb, fd.get(), bufs[i].data(), 2, 2 * i);
    (*d)->push(reqs[i]);
    EXPECT_EQ((*d)->stats().submitted, i + 1);  // before any flush
    EXPECT_EQ((*d)->stats().submit_calls, i + 1);
  }
  intrusive_list<coil::aio_completion> done;
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

}  // namespace
