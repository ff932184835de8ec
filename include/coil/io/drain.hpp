#pragma once
// The cancel-then-wait loop every driver shares: used when memory an
// operation points into is about to go away (a frame destroyed mid-op).
#include <cstdio>
#include <cstdlib>

#include "coil/core/intrusive_list.hpp"
#include "coil/io/completion.hpp"

namespace coil::detail {

// Blocks until c has completed, cancelling it first. Other completions that
// arrive meanwhile are appended to out. On return c is done and unlinked.
template <class Driver>
void cancel_and_drain(Driver& d, completion& c, intrusive_list<completion>& out) noexcept {
  if (c.state == op_state::idle) return;
  d.cancel(c);
  intrusive_list<completion> got;
  while (c.state != op_state::done) {
    if (!d.wait(-1)) {
      // The driver itself failed; nothing more can be learned about c, and
      // returning would let the kernel write into freed memory.
      std::fprintf(stderr, "coil: driver wait failed while draining an operation; aborting\n");
      std::abort();
    }
    d.reap(got);
  }
  // Done before any reap (cancelled while queued): still in the driver's
  // finished list, so a multishot owner has not seen its final result yet.
  const bool unreaped = c.linked();
  c.unlink();
  if (unreaped && c.ops->on_cqe != nullptr) c.ops->on_cqe(c);
  while (completion* o = got.pop_front()) {
    if (o != &c) out.push_back(*o);
  }
}

}  // namespace coil::detail
