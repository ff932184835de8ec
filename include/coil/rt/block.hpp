#pragma once
// block(x): the blocking form of every coil operation and task, through the
// very code path the async form takes.
//
//   auto f = coil::block(coil::file::open("/etc/hostname"));   // result<file>
//   auto n = coil::block(f->read_at(buf, 0));                    // result<size_t>
//   auto s = coil::block(net::tcp_stream::connect(addr));        // result<tcp_stream>
//
// x is an operation (anything co_await takes) or a task. A single
// operation struct (f.read_at, file::open, s.recv) makes its own system call,
// the one the epoll driver would make, and converts the result the same way;
// anything else (a task, send_all, with_timeout(...)) runs to completion on a
// runtime private to the calling thread, created at the first call and kept
// until the thread exits, and current only during the call (so the thread
// may still create a runtime of its own). Objects made in one call (files,
// sockets) serve in the next. On a thread whose own runtime exists, block
// fails with errc::in_runtime rather than deadlock: co_await there. Tasks
// spawned inside a call and not awaited wait for the next call. Fault
// injection (COIL_FAULTS) reaches only what runs on the runtime.
#include <concepts>
#include <system_error>
#include <type_traits>
#include <utility>

#include "coil/core/error.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/blocking.hpp"
#include "coil/rt/op.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/task.hpp"
#include "coil/rt/when.hpp"

namespace coil {
namespace detail {

// The calling thread's private runtime, created on first use (null, and ec
// set, if that failed).
runtime* blocking_runtime(std::error_code& ec) noexcept;

// Makes rt the thread's current runtime for one block() call.
class current_scope {
 public:
  explicit current_scope(runtime* rt) noexcept : prev_(current_runtime) { current_runtime = rt; }
  ~current_scope() { current_runtime = prev_; }
  current_scope(const current_scope&) = delete;
  current_scope& operator=(const current_scope&) = delete;

 private:
  runtime* prev_;
};

template <class A>
struct block_value {
  using type = await_result_t<A>;
};
template <class T>
struct block_value<task<T>> {
  using type = T;
};

// A task's value in block()'s result form (a plain T wrapped, void as
// result<void>).
template <class R, class T>
task<R> as_result(task<T> t) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(t);
    co_return R{};
  } else {
    co_return co_await std::move(t);
  }
}

}  // namespace detail

template <class A>
detail::blocking_result_t<typename detail::block_value<A>::type> block(A a) {
  using R = detail::blocking_result_t<typename detail::block_value<A>::type>;
  if (runtime::current() != nullptr) return fail(errc::in_runtime);
  // A single operation needs no loop: its own system call is the blocking
  // form (op_awaiter::perform_blocking), at the cost of pread(2) rather than
  // a ring round trip. Only where it gives what the await would (a derived
  // awaitable that adds to await_resume must add to perform_blocking too).
  if constexpr (requires {
                  { a.perform_blocking() } -> std::same_as<typename detail::block_value<A>::type>;
                }) {
    return a.perform_blocking();
  }
  std::error_code ec;
  runtime* rt = detail::blocking_runtime(ec);
  if (rt == nullptr) return fail(ec);
  detail::current_scope scope(rt);
  auto t = detail::to_task(std::move(a));  // a task stays itself: no frame added
  if constexpr (std::is_same_v<decltype(t), task<R>>) {
    return rt->block_on(std::move(t));
  } else {
    return rt->block_on(detail::as_result<R>(std::move(t)));
  }
}

}  // namespace coil
