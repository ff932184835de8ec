#pragma once
// task_group: structured concurrency on one core (a nursery).
//
//   task_group g;
//   g.spawn(fetch(a));
//   g.spawn(fetch(b));
//   auto r = co_await g.join();  // all children finished; first error, if any
//
// Children start on the next loop turn and run concurrently with the parent.
// A child whose task<result<X>> returns an error cancels the others (their
// operations and waits complete with operation_canceled); join() then gives
// that first error. Children share one stop source, the group's; cancel()
// requests it. While the parent waits in join(), cancelling the parent
// cancels the children, and join() still waits for every one of them.
//
// Destroying a group with live children destroys their frames at once. That
// is what happens to any coil frame torn down mid-flight (runtime shutdown, a
// parent destroyed while suspended): each pending operation is cancelled and
// its completion awaited before the memory goes, and waits leave their queues,
// so nothing dangles. What the children do not get is to run their own code
// after the cancel. A destructor cannot wait for that (it cannot suspend),
// and asserting instead would abort every runtime shutdown that catches a
// group mid-flight, so: join() to let children finish their way; the
// destructor is the backstop.
//
// Spawning after a failure or cancel() starts children already cancelled: a
// group is not reset.
#include <coroutine>
#include <cstddef>
#include <system_error>
#include <type_traits>
#include <utility>

#include "coil/core/assert.hpp"
#include "coil/core/intrusive_list.hpp"
#include "coil/core/result.hpp"
#include "coil/rt/await_arg.hpp"
#include "coil/rt/frame_alloc.hpp"
#include "coil/rt/runtime.hpp"
#include "coil/rt/stop.hpp"
#include "coil/rt/task.hpp"

namespace coil {

namespace detail {
// A task that owns fn while it runs fn().
template <class Fn>
task<typename std::invoke_result_t<Fn&>::value_type> call_in_frame(Fn fn) {
  co_return co_await fn();
}
}  // namespace detail

// Structured concurrency on one core (see the file description).
class task_group {
 public:
  class [[nodiscard]] join_awaiter : stop_callback {
   public:
    explicit join_awaiter(task_group& g) noexcept : group_(&g) {}
    join_awaiter(const join_awaiter&) = delete;
    ~join_awaiter() {
      if (joiner_ && group_->joiner_ == joiner_) group_->joiner_ = {};
    }

    bool await_ready() const noexcept { return group_->live_ == 0; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      COIL_ASSERT(!group_->joiner_, "a task_group joined by two tasks at once");
      joiner_ = h;
      group_->joiner_ = h;
      if (stop_source* parent = detail::stop_of(h)) {
        fn = &on_parent_stop;
        parent->add(*this);  // may cancel the children now; resumes nothing inline
      }
      return true;
    }
    result<void> await_resume() noexcept {
      unlink();
      joiner_ = {};
      if (group_->first_error_) return fail(group_->first_error_);
      return {};
    }

   private:
    static void on_parent_stop(stop_callback& cb) noexcept { static_cast<join_awaiter&>(cb).group_->cancel(); }

    task_group* group_;
    std::coroutine_handle<> joiner_;
  };

  task_group() noexcept = default;
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;
  ~task_group() {
    while (child* c = children_.pop_front()) {
      std::coroutine_handle<> frame = c->start.handle;
      delete c;  // leaves the ready queue if it had not started yet
      --live_;
      frame.destroy();
    }
  }

  // Starts t as a child. T may be anything; a result<X> error fails the group.
  template <class T>
  void spawn(task<T> t) {
    runtime* rt = runtime::current();
    COIL_ASSERT(rt != nullptr, "task_group::spawn needs a coil runtime on this thread");
    COIL_ASSERT(t.valid(), "spawning an empty task into a task_group");
    auto h = t.release();
    auto& p = h.promise();
    COIL_ASSERT(!p.started, "spawning a task that already started into a task_group");
    p.started = true;
    auto* c = new child();
    c->group = this;
    c->start.handle = h;
    p.done_ctx = c;
    p.on_done = &child_done<T>;
    p.stop = &stop_;
    children_.push_back(*c);
    ++live_;
    rt->schedule(c->start);
  }

  // Starts fn(args...) (a callable returning a task) as a child. fn and
  // args live in the child's frame, so a lambda coroutine's captures stay
  // valid while it runs (a temporary lambda called in place does not).
  template <class Fn, class... Args>
    requires std::is_invocable_v<detail::taken_t<Fn&&>&, detail::taken_t<Args&&>...>
  void spawn(Fn&& fn, Args&&... args) {
    spawn(detail::call_in_frame(detail::bind_call(std::forward<Fn>(fn), std::forward<Args>(args)...)));
  }

  // Completes when no child is left: the first child error, or success.
  join_awaiter join() noexcept { return join_awaiter(*this); }

  // Cancels every child (and every child spawned from now on).
  void cancel() noexcept { stop_.request_stop(); }
  bool cancel_requested() const noexcept { return stop_.stop_requested(); }
  // Children still running.
  std::size_t size() const noexcept { return live_; }
  // The first child error so far (empty if none).
  std::error_code error() const noexcept { return first_error_; }

 private:
  // Per child, next to its frame: queue node and group link. Comes from the
  // frame allocator, so spawning stays off the global heap.
  struct child : list_hook {
    detail::ready_node start;  // start.handle is the child's frame
    task_group* group = nullptr;
    static void* operator new(std::size_t size) { return detail::frame_allocate(size); }
    static void operator delete(void* p, std::size_t size) noexcept { detail::frame_deallocate(p, size); }
  };

  template <class T>
  static std::coroutine_handle<> child_done(detail::promise_base& base) noexcept {
    auto& p = static_cast<detail::promise<T>&>(base);
    auto* c = static_cast<child*>(p.done_ctx);
    task_group& g = *c->group;
    if constexpr (requires {
                    typename T::value_type;
                    requires std::is_same_v<T, result<typename T::value_type>>;
                  }) {
      if (!*p.value) {
        if (!g.first_error_) g.first_error_ = p.value->error();
        g.stop_.request_stop();
      }
    }
    delete c;
    --g.live_;
    std::coroutine_handle<detail::promise<T>>::from_promise(p).destroy();
    if (g.live_ == 0 && g.joiner_) return std::exchange(g.joiner_, {});
    return std::noop_coroutine();
  }

  intrusive_list<child> children_;
  std::size_t live_ = 0;
  stop_source stop_;
  std::error_code first_error_;
  std::coroutine_handle<> joiner_;
};

}  // namespace coil
