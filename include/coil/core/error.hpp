#pragma once
// coil's own error codes. Kernel errors stay in std::system_category (errno
// values); these cover conditions the kernel does not name.
#include <system_error>

namespace coil {

// coil's own conditions, in coil_category(): test with `r.error() == coil::errc::deadlock`.
enum class errc {
  no_runtime = 1,   // an operation was awaited on a thread without a runtime
  runtime_closed,   // the runtime is shutting down and takes no new work
  wrong_thread,     // a runtime was driven from a thread that does not own it
  unsupported_op,   // the kernel's io_uring lacks this opcode
  unexpected_eof,   // read_exact hit end of file before the buffer was full
  write_zero,       // write_all made no progress (the kernel accepted 0 bytes)
  misaligned,       // an O_DIRECT buffer, offset or length is not aligned
  deadlock,         // block_on's task waits, but nothing can ever wake it
  uring_unavailable,  // io_uring was required (strict, COIL_DRIVER=uring) but cannot be used
  unmapped,         // a packet touched an address no region of its I/O space maps
  in_runtime,       // a blocking form was called on a thread running a runtime (it would deadlock)
  end_of_stream,    // a stream ended cleanly, before the first byte of a line, frame or exact read
  too_long,         // a line, frame or peek exceeds its limit or the reader's buffer
};

const std::error_category& coil_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), coil_category()};
}

}  // namespace coil

template <>
struct std::is_error_code_enum<coil::errc> : std::true_type {};
