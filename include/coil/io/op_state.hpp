#pragma once
// Drivers (and the fault layer) change completion::state only through
// set_state, which checks the transition where debug invariants are on
// (COIL_DEBUG_ASSERT). Owners reset done -> idle themselves before pushing
// again; push checks for idle in every build.
#include "coil/core/assert.hpp"
#include "coil/io/completion.hpp"

namespace coil::detail {

// idle      -> queued     waits for room (io_uring) or to be tried (epoll)
//           -> in_flight  issued at push
//           -> done       refused at push (unsupported opcode, injected fault)
// queued    -> in_flight  issued
//           -> done       cancelled before issue, or finished inline (epoll)
// in_flight -> in_flight  tried again (epoll: after a back-off)
//           -> queued     resubmitted after an ECANCELED nobody asked for
//                         (io_uring); a multishot op armed again (epoll)
//           -> done       finished
constexpr bool allowed_transition(op_state from, op_state to) noexcept {
  switch (from) {
    case op_state::idle: return to != op_state::idle;
    case op_state::queued: return to == op_state::in_flight || to == op_state::done;
    case op_state::in_flight: return to != op_state::idle;
    case op_state::done: return false;
  }
  return false;
}

inline void set_state(completion& c, op_state to) noexcept {
  COIL_DEBUG_ASSERT(allowed_transition(c.state, to), "operation state changed along a transition no driver makes");
  c.state = to;
}

}  // namespace coil::detail
