#include "coil/rt/link.hpp"

namespace coil::detail {

void link_state::start() noexcept {
  coil::driver& d = rt->driver();
  if (d.links_in_kernel()) {
    in_kernel = true;
    d.push_chain(*this);
  } else {
    start_step();
  }
}

void link_state::start_step() noexcept {
  // One op, and its link timeout if one follows it.
  coil::driver& d = rt->driver();
  step = next;
  d.push_io(*members[next++]);
  if (next < count && is_timeout(next)) {
    auto& t = static_cast<link_member<ops::link_timeout>&>(*members[next++]);
    d.push_deadline(t, t.op.timeout_ns);
  }
}

void link_state::end_step() noexcept {
  const bool failed = members[step]->res < 0;
  if (next == count || destroying) return;
  if (cancelling || (failed && !hard)) {
    // Never pushed: they end here, as the kernel ends a broken chain.
    while (next < count) {
      completion& c = *members[next++];
      c.res = -ECANCELED;
      c.cqe_flags = 0;
      set_state(c, op_state::done);
      ++finished;
    }
    return;
  }
  start_step();
}

void link_state::member_done(completion& c) noexcept {
  ++finished;
  if (in_kernel) {
    if (cancelling && hard) recancel();
  } else if (finished == next) {
    end_step();
  } else {
    // One of an op and its timeout finished: the other one ends now (the op
    // timed out, or the timeout is no longer needed).
    for (unsigned i = step; i < next; ++i) {
      if (members[i] != &c) rt->driver().cancel(*members[i]);
    }
  }
  if (finished == count && !destroying) rt->schedule(waiter);
}

void link_state::cancel_pending() noexcept {
  cancelling = true;
  for (unsigned i = 0; i < count; ++i) {
    completion& c = *members[i];
    if (c.state == op_state::queued || c.state == op_state::in_flight) rt->driver().cancel(c);
  }
}

void link_state::recancel() noexcept {
  // A cancel finds no hard-linked op the kernel has not started yet; the
  // one after a finished op starts now, so ask again for those asked before.
  for (unsigned i = 0; i < count; ++i) {
    completion& c = *members[i];
    if (c.state == op_state::in_flight && c.cancel_requested && c.cancel_issued) {
      c.cancel_requested = c.cancel_issued = false;
      rt->driver().cancel(c);
    }
  }
}

}  // namespace coil::detail
