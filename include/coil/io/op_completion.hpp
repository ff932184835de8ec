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
// Optional op traits (see ops/common.hpp): false when Op does not declare one.
#define COIL_OP_FLAG(fn, member)               \
  template <class Op>                          \
  constexpr bool fn() {                        \
    if constexpr (requires { Op::member; }) {  \
      return Op::member;                       \
    } else {                                   \
      return false;                            \
    }                                          \
  }
COIL_OP_FLAG(op_yields_fd, yields_fd)
COIL_OP_FLAG(op_consumes_fd, consumes_fd)
COIL_OP_FLAG(op_never_blocks, never_blocks)
COIL_OP_FLAG(op_is_multishot, multishot)
COIL_OP_FLAG(op_waits_on_peer, waits_on_peer)
COIL_OP_FLAG(op_zero_ends, zero_ends)
COIL_OP_FLAG(op_device_io, device_io)
COIL_OP_FLAG(op_eager, eager)
COIL_OP_FLAG(op_foreign_fd, foreign_fd)
#undef COIL_OP_FLAG
// The vtable for Op inside Self, where Self derives from completion and
// `Op& Self::op_ref(completion&)` finds the op. Multishot ops need
// `static void Self::on_cqe(completion&) noexcept`.
template <class Op, class Self>
struct op_vtable_for {
  static void prep(completion& c, io_uring_sqe& sqe) noexcept { Self::op_ref(c).prep(sqe); }
  static int32_t perform(completion& c, bool nowait) noexcept {
    const Op& op = Self::op_ref(c);
    int32_t r;
    if constexpr (requires { op.out_flags; }) {
      // Readiness emulation of CQE flags (a provided buffer's id).
      op.out_flags = 0;
      r = op.perform(nowait);
      c.cqe_flags = op.out_flags;
    } else {
      r = op.perform(nowait);
    }
    if constexpr (requires { op.drained(r); }) c.drained = op.drained(r);
    return r;
  }
  static constexpr auto hook() noexcept {
    if constexpr (op_is_multishot<Op>()) {
      return &Self::on_cqe;
    } else {
      return static_cast<void (*)(completion&) noexcept>(nullptr);
    }
  }
  static constexpr op_vtable value{&prep,          &perform,           Op::poll_events, Op::opcode,
                                   op_consumes_fd<Op>(), op_never_blocks<Op>(), hook(), op_zero_ends<Op>(),
                                   nullptr,        op_foreign_fd<Op>()};
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
// An op with an AIO form: `bool aio` says whether this one runs on the
// driver's Linux AIO backend, which fills an iocb with prep_iocb.
template <class Op>
concept aio_capable_op = requires(const Op& op, aio_iocb& cb) {
  { op.aio } -> std::convertible_to<bool>;
  op.prep_iocb(cb);
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
  if constexpr (std::is_void_v<Owner>) {
    c.ops = &op_vtable_for<Op, Self>::value;
    if constexpr (aio_capable_op<Op>) {
      if (op.aio) c.ops = &op_vtable_aio<Op, Self, op_vtable_for<Op, Self>::value>::value;
    }
  } else {
    c.ops = &op_vtable_named<Op, Self, Owner>::value;
    if constexpr (aio_capable_op<Op>) {
      if (op.aio) c.ops = &op_vtable_aio<Op, Self, op_vtable_named<Op, Self, Owner>::value>::value;
    }
  }
  if constexpr (requires { op.fd; }) c.fd = op.fd;
  c.unbounded = op_waits_on_peer<Op>() || op_is_multishot<Op>();
  // A read or write at the current position is a pipe, tty or socket read
  // through a file: it may wait on a peer too. Positional ones are files.
  if constexpr (requires { op.at_stream_position(); }) c.unbounded = c.unbounded || op.at_stream_position();
  c.device = op_device_io<Op>();
  if constexpr (requires { op.drains(); }) {
    c.drains = op.drains();
  } else {
    c.drains = false;
  }
}
}  // namespace detail

template <class Op>
struct op_completion : completion {
  Op op;
  explicit op_completion(Op o) noexcept : op(o) { detail::bind_op<Op, op_completion>(*this, op); }
  static Op& op_ref(completion& c) noexcept { return static_cast<op_completion&>(c).op; }
  // The typed result (e.g. result<size_t>) once the completion is reaped.
  auto result() const noexcept { return Op::complete(res); }
};

}  // namespace coil
