// Each FORM is an rvalue the affected compilers destroy twice inside
// co_await (rt/await_arg.hpp); tests/CMakeLists.txt compiles every one and
// expects the library's static_assert there, a clean compile elsewhere.
#include <string>
#include <vector>

#include "coil/rt/blocking.hpp"
#include "coil/rt/cores.hpp"
#include "coil/sync/channel.hpp"
#include "coil/sync/xchannel.hpp"

struct msg {
  std::string name;
};

coil::task<void> form(std::string k, coil::channel<msg>& ch, coil::xchannel<msg>& xch) {
#if FORM == 1
  (void)co_await coil::cores::submit_to(0, [k]() -> coil::task<int> { co_return static_cast<int>(k.size()); });
#elif FORM == 2
  (void)co_await coil::cores::spawn_on(0, [k]() -> coil::task<void> { co_return; });
#elif FORM == 3
  (void)co_await coil::spawn_blocking([k] { return k.size(); });
#elif FORM == 4
  (void)co_await ch.send(msg{k});
#elif FORM == 5
  (void)co_await xch.send(msg{k});
#elif FORM == 6
  auto named = [k]() -> coil::task<int> { co_return 1; };
  (void)co_await coil::cores::submit_to(0, std::move(named));  // the library cannot tell this from a temporary
#endif
  (void)k;
  (void)ch;
  (void)xch;
  co_return;
}
