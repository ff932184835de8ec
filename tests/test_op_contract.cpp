// The op contract (ops/common.hpp): every op struct satisfies
// coil::ops::operation, declares the capabilities it means to, and its
// vtable carries them.
#include <gtest/gtest.h>

#include "coil/fs/direct_file.hpp"
#include "coil/io/op_completion.hpp"

namespace coil::ops {
namespace {

static_assert(operation<nop> && operation<read> && operation<write> && operation<readv> && operation<writev>);
static_assert(operation<read_fixed> && operation<write_fixed> && operation<fsync> && operation<fallocate>);
static_assert(operation<openat> && operation<openat2> && operation<close> && operation<statx> && operation<unlinkat> &&
              operation<renameat> && operation<mkdirat>);
static_assert(operation<socket> && operation<connect> && operation<accept> && operation<accept_multishot> &&
              operation<recv_multishot> && operation<send_zc> && operation<send> && operation<recv>);
static_assert(operation<sendmsg> && operation<recvmsg> && operation<sendv> && operation<recvv> &&
              operation<send_to> && operation<recv_from> && operation<shutdown>);
static_assert(operation<poll_ready<POLLIN>> && operation<fixed<read>> && operation<fixed<send>>);
static_assert(operation<splice_in> && operation<splice_out> && waits_on_peer_op<splice_in> && !eager_op<splice_out>);
static_assert(operation<dio_ops::read> && operation<dio_ops::write> && operation<dio_ops::readv> &&
              operation<dio_ops::writev> && operation<dio_ops::fsync>);

static_assert(yields_fd_op<openat> && yields_fd_op<openat2> && yields_fd_op<accept> && yields_fd_op<socket> && !yields_fd_op<read> &&
              !yields_fd_op<accept_multishot>);
static_assert(consumes_fd_op<close> && !consumes_fd_op<read>);
static_assert(never_blocks_op<nop> && never_blocks_op<close> && never_blocks_op<shutdown> && !never_blocks_op<read>);
static_assert(waits_on_peer_op<recv> && waits_on_peer_op<poll_ready<POLLIN>> && !waits_on_peer_op<read>);
static_assert(stream_position_op<read> && stream_position_op<dio_ops::writev> && !stream_position_op<recv>);
static_assert(device_op<dio_ops::fsync> && !device_op<fsync>);
static_assert(eager_op<send> && eager_op<sendv> && !eager_op<fixed<send>> && !eager_op<recv>);
static_assert(multishot_op<accept_multishot> && multishot_op<recv_multishot> && !multishot_op<accept>);
static_assert(zero_ends_op<recv_multishot> && !zero_ends_op<accept_multishot>);
static_assert(foreign_fd_op<poll_ready<POLLOUT>> && !foreign_fd_op<recv>);
static_assert(reads_to_empty_op<recv> && reads_to_empty_op<recvv> && reads_to_empty_op<recv_multishot> && !reads_to_empty_op<recv_from>);
static_assert(reports_flags_op<recv_multishot> && !reports_flags_op<recv>);
static_assert(discards_op<recvmsg> && !discards_op<recv>);
static_assert(aio_capable_op<dio_ops::read> && aio_capable_op<dio_ops::fsync> && !aio_capable_op<read>);

// Half an op: no complete, and no fd although it waits for readiness.
struct half_op {
  static constexpr uint8_t opcode = IORING_OP_NOP;
  static constexpr uint32_t poll_events = EPOLLIN;
  void prep(io_uring_sqe&) const noexcept {}
  int32_t perform(bool) const noexcept { return 0; }
};
static_assert(!operation<half_op>);

template <class Op>
const op_vtable& vtable_of() {
  return coil::detail::op_vtable_for<Op, op_completion<Op>>::value;
}

TEST(OpContract, VtableCarriesTheCapabilities) {
  const op_vtable& c = vtable_of<close>();
  EXPECT_TRUE(c.consumes_fd);
  EXPECT_TRUE(c.never_blocks);
  EXPECT_EQ(c.opcode, IORING_OP_CLOSE);
  EXPECT_EQ(c.poll_events, 0u);
  EXPECT_EQ(c.on_cqe, nullptr);
  EXPECT_EQ(c.owner, nullptr);

  const op_vtable& r = vtable_of<recv>();
  EXPECT_FALSE(r.consumes_fd);
  EXPECT_FALSE(r.never_blocks);
  EXPECT_FALSE(r.zero_ends);
  EXPECT_FALSE(r.foreign_fd);
  EXPECT_EQ(r.poll_events, uint32_t{EPOLLIN});
  EXPECT_EQ(r.opcode, IORING_OP_RECV);

  EXPECT_TRUE(vtable_of<poll_ready<POLLIN>>().foreign_fd);
}

TEST(OpContract, BindSetsTheCompletionFlags) {
  op_completion<recv> r(recv{.fd = 7, .buf = nullptr, .len = 4, .short_means_empty = true});
  EXPECT_EQ(r.fd, 7);
  EXPECT_TRUE(r.unbounded);
  EXPECT_TRUE(r.reads_to_empty);
  EXPECT_FALSE(r.device);

  op_completion<read> pipe(read{3, nullptr, 4, current_position});
  EXPECT_TRUE(pipe.unbounded);
  op_completion<read> file(read{3, nullptr, 4, 0});
  EXPECT_FALSE(file.unbounded);

  op_completion<dio_ops::fsync> dev(dio_ops::fsync{{3, false}});
  EXPECT_TRUE(dev.device);
}

}  // namespace
}  // namespace coil::ops
