#pragma once
// The unit of work a driver tracks. Callers own completions (usually inside a
// coroutine frame or on the stack) and extend them by inheritance; the driver
// never allocates one. The pointer to the completion is the io_uring user_data.
#include <cstdint>

#include <liburing.h>

#include "coil/core/intrusive_list.hpp"

namespace coil {

enum class op_state : uint8_t {
  idle,       // not yet pushed, or finished and reaped back to the owner
  queued,     // waiting in user space for SQ/CQ room
  in_flight,  // the kernel owns it (and the memory it points to)
  done,       // result set; sitting in a reaped list
};

struct completion : list_hook {
  // Fills the SQE for this operation. Set by the operation wrapper.
  using prep_fn = void (*)(completion&, io_uring_sqe&) noexcept;

  prep_fn prep = nullptr;
  int32_t res = 0;        // kernel result: >= 0 success, -errno failure
  uint32_t cqe_flags = 0;
  op_state state = op_state::idle;
  uint8_t opcode = 0;     // for probing and statistics
  bool cancel_requested = false;
  bool cancel_issued = false;
};

}  // namespace coil
