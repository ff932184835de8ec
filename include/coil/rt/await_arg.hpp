#pragma once
// Arguments of the awaited APIs that carry user state (cores::submit_to,
// cores::spawn_on, spawn_blocking, channel and xchannel send).
//
// g++ before 13 (measured: Debian 12's g++ 12.2; clang 14 is fine) destroys
// twice an object made by aggregate initialisation inside a co_await
// operand: a lambda with captures, a braced struct (`msg{k}`, `msg(k)`).
// When it owns memory that is a double free, whatever the callee does with
// it. So on those compilers such an rvalue is a compile-time error naming
// the two safe spellings:
//   - state as arguments, so the lambda captures nothing:
//       co_await cores::submit_to(c, [](std::string k) -> task<int> {...}, key);
//   - a named object passed as coil::moved(obj) (moves it; a plain
//     `std::move(obj)` is an rvalue the library cannot tell from a
//     temporary) or as an lvalue (copies it).
// Objects that are not aggregates (std::string(k), std::pair, a class with
// constructors) and trivially destructible ones are unaffected and accepted.
// COIL_CHECK_AWAIT_TEMPORARIES=0/1 overrides the compiler test.
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#ifndef COIL_CHECK_AWAIT_TEMPORARIES
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#define COIL_CHECK_AWAIT_TEMPORARIES 1
#else
#define COIL_CHECK_AWAIT_TEMPORARIES 0
#endif
#endif

namespace coil {

// A named object handed over by move to an awaited API: `coil::moved(obj)`.
// Holds only a pointer (trivially destructible), so the g++ double
// destruction of temporaries cannot touch obj.
template <class T>
struct moved_ref {
  T* object;
};
template <class T>
moved_ref<T> moved(T& object) noexcept {
  static_assert(!std::is_const_v<T>, "coil::moved needs an object it may move from");
  return moved_ref<T>{&object};
}

namespace detail {

template <class T>
struct is_moved_ref : std::false_type {};
template <class T>
struct is_moved_ref<moved_ref<T>> : std::true_type {};

// What the affected compilers destroy twice when it is made in a co_await
// operand: an aggregate, or a closure type with captures (not default
// constructible and not assignable, which is how the language defines
// those), owning something.
template <class T>
inline constexpr bool double_destroyed_if_temporary =
    std::is_class_v<T> && !std::is_trivially_destructible_v<T> &&
    (std::is_aggregate_v<T> ||
     (!std::is_default_constructible_v<T> && !std::is_copy_assignable_v<T> && !std::is_move_assignable_v<T>));

// True when A (a forwarding reference's deduced type) is safe to take.
template <class A>
inline constexpr bool await_arg_ok = !COIL_CHECK_AWAIT_TEMPORARIES || std::is_lvalue_reference_v<A> ||
                                     !double_destroyed_if_temporary<std::remove_cvref_t<A>>;

#define COIL_AWAIT_ARG_MESSAGE                                                                                  \
  "g++ < 13 destroys a lambda with captures or a braced aggregate made inside co_await twice (double free). " \
  "Pass the state as arguments to a capture-free lambda, e.g. submit_to(core, [](std::string k) -> "          \
  "task<int> {...}, key), or name the object and pass coil::moved(obj) (see docs/guide/tasks.md)"

// The value an argument stands for: moved out of a moved_ref, else forwarded.
template <class A>
decltype(auto) take_arg(A&& a) noexcept {
  if constexpr (is_moved_ref<std::remove_cvref_t<A>>::value) {
    return std::move(*a.object);
  } else {
    return std::forward<A>(a);
  }
}
template <class A>
using taken_ref_t = decltype(take_arg(std::declval<A>()));
template <class A>
using taken_t = std::decay_t<taken_ref_t<A>>;

// fn with its arguments, called once, moving them in.
template <class Fn, class... Args>
struct bound_call {
  Fn fn;
  std::tuple<Args...> args;
  decltype(auto) operator()() {
    return std::apply([this](Args&... a) -> decltype(auto) { return std::invoke(fn, std::move(a)...); }, args);
  }
};

// The callable an API stores for fn(args...): fn itself when there are no
// arguments.
template <class Fn, class... Args>
auto bind_call(Fn&& fn, Args&&... args) {
  if constexpr (sizeof...(Args) == 0) {
    return taken_t<Fn>(take_arg(std::forward<Fn>(fn)));
  } else {
    return bound_call<taken_t<Fn>, taken_t<Args>...>{take_arg(std::forward<Fn>(fn)),
                                                     {take_arg(std::forward<Args>(args))...}};
  }
}
template <class Fn, class... Args>
using bound_t = decltype(bind_call(std::declval<Fn>(), std::declval<Args>()...));

}  // namespace detail
}  // namespace coil
