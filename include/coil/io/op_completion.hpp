#pragma once
// A completion that carries one op struct (ops/fs.hpp, ops/net.hpp): the
// building block for using a driver on its own, without the runtime.
//   coil::op_completion<coil::ops::read> rd{{fd, buf, len, 0}};
//   drv.push(rd); drv.wait(-1); drv.reap(done);   // rd.res holds the result
#include <concepts>
#include <type_traits>

#include "coil/io/completion.hpp"
#include "coil/io/ops.hpp"

namespace coil {

namespace detail {
// Instantiated where an op is bound, so a struct that misses part of the
// contract fails with this message first.
template <class Op>
constexpr bool checked_operation() noexcept {
  static_assert(ops::operation<Op>,
                "not an op: Op does not satisfy coil::ops::operation (the op contract, coil/io/ops/common.hpp)");
  return true;
}
// The vtable for Op inside Self, where Self derives from completion and
// `Op& Self::op_ref(completion&)` finds the op. Multishot ops need
// `static void Self::on_cqe(completion&) noexcept`.
template <class Op, class Self>
struct op_vtable_for {
  static void prep(completion& c, io_uring_sqe& sqe) noexcept { Self::op_ref(c).prep(sqe); }
  static int32_t perform(completion& c, bool nowait) noexcept {
    const Op& op = Self::op_ref(c);
    int32_t r;
    if constexpr (ops::reports_flags_op<Op>) {
      op.out_flags = 0;
      r = op.perform(nowait);
      c.cqe_flags = op.out_flags;
    } else {
      r = op.perform(nowait);
    }
    if constexpr (ops::reads_to_empty_op<Op>) c.emptied = op.emptied(r);
    return r;
  }
  static constexpr auto hook() noexcept {
    if constexpr (ops::multishot_op<Op>) {
      return &Self::on_cqe;
    } else {
      return static_cast<void (*)(completion&) noexcept>(nullptr);
    }
  }
  static constexpr op_vtable value{
      .prep = &prep,
      .perform = &perform,
      .poll_events = Op::poll_events,
      .opcode = Op::opcode,
      .consumes_fd = ops::consumes_fd_op<Op>,
      .never_blocks = ops::never_blocks_op<Op>,
      .on_cqe = hook(),
      .zero_ends = ops::zero_ends_op<Op>,
      .foreign_fd = ops::foreign_fd_op<Op>,
  };
};
// The same, telling listings who waits through
// `static void Self::owner_of<Owner>(const completion&, const char*&, uint32_t&) noexcept`.
template <class Op, class Self, class Owner>
struct op_vtable_named {
  static constexpr op_vtable make() noexcept {
    op_vtable v = op_vtable_for<Op, Self>::value;
    v.owner = &Self::template owner_of<Owner>;
    return v;
  }
  static constexpr op_vtable value = make();
};
// Base with prep_iocb set: the vtable of an op bound for AIO.
template <class Op, class Self, const op_vtable& Base>
struct op_vtable_aio {
  static void prep_iocb(completion& c, aio_iocb& cb) noexcept { Self::op_ref(c).prep_iocb(cb); }
  static constexpr op_vtable make() noexcept {
    op_vtable v = Base;
    v.prep_iocb = &prep_iocb;
    return v;
  }
  static constexpr op_vtable value = make();
};
// Sets c's vtable and readiness fd for op; with an Owner, the named vtable.
template <class Op, class Self, class Owner = void>
void bind_op(completion& c, const Op& op) noexcept {
  static_assert(checked_operation<Op>());
  if constexpr (std::is_void_v<Owner>) {
    c.ops = &op_vtable_for<Op, Self>::value;
    if constexpr (ops::aio_capable_op<Op>) {
      if (op.aio) c.ops = &op_vtable_aio<Op, Self, op_vtable_for<Op, Self>::value>::value;
    }
  } else {
    c.ops = &op_vtable_named<Op, Self, Owner>::value;
    if constexpr (ops::aio_capable_op<Op>) {
      if (op.aio) c.ops = &op_vtable_aio<Op, Self, op_vtable_named<Op, Self, Owner>::value>::value;
    }
  }
  if constexpr (ops::fd_op<Op>) c.fd = op.fd;
  c.unbounded = ops::waits_on_peer_op<Op> || ops::multishot_op<Op>;
  // A read or write at the current position is a pipe, tty or socket read
  // through a file: it may wait on a peer too. Positional ones are files.
  if constexpr (ops::stream_position_op<Op>) c.unbounded = c.unbounded || op.at_stream_position();
  c.device = ops::device_op<Op>;
  if constexpr (ops::reads_to_empty_op<Op>) {
    c.reads_to_empty = op.reads_to_empty();
  } else {
    c.reads_to_empty = false;
  }
}
}  // namespace detail

template <class Op>
struct op_completion : completion {
  static_assert(detail::checked_operation<Op>());
  Op op;
  explicit op_completion(Op o) noexcept : op(o) { detail::bind_op<Op, op_completion>(*this, op); }
  static Op& op_ref(completion& c) noexcept { return static_cast<op_completion&>(c).op; }
  // The typed result (e.g. result<size_t>) once the completion is reaped.
  auto result() const noexcept { return Op::complete(res); }
};

}  // namespace coil
