// Binding a struct that misses part of the op contract must fail with the
// library's static_assert naming coil::ops::operation (tests/CMakeLists.txt).
#include "coil/io/op_completion.hpp"

struct half_op {
  static constexpr uint8_t opcode = IORING_OP_NOP;
  static constexpr uint32_t poll_events = 0;
  void prep(io_uring_sqe&) const noexcept {}
};

coil::op_completion<half_op> c{half_op{}};
