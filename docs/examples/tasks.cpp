// Guide: tasks.md. Spawning and joining, structured concurrency, timeouts,
// cancellation and shielding, on one runtime.
#include <chrono>
#include <cstdio>
#include <span>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include <coil/coil.hpp>

#include "example_util.hpp"

using namespace std::chrono_literals;

namespace {

using example::check;

// doc-begin: spawn
coil::task<int> square(int x) {
  co_await coil::sleep_for(1ms);
  co_return x * x;
}

coil::task<void> spawn_and_join() {
  coil::runtime& rt = *coil::runtime::current();
  coil::join_handle<int> h = rt.spawn(square(7));  // starts on the next loop turn
  int direct = co_await square(3);                 // runs inside this task, now
  int joined = co_await h;                         // waits for the spawned one
  check(direct == 9 && joined == 49, "spawn");
  rt.spawn(square(1)).detach();  // runs on; its frame is freed when it ends
}
// doc-end: spawn

// doc-begin: params
// Spawned work gets its data as parameters, which live in the frame. A
// lambda's captures live in the closure object instead: a temporary lambda
// is gone at the end of the statement that spawned it.
coil::task<void> log_later(std::string text) {  // by value: the frame owns a copy
  co_await coil::sleep_for(1ms);
  std::printf("%s\n", text.c_str());
}

coil::task<void> spawn_with_data() {
  std::string msg = "logged from a spawned task";
  auto h = coil::runtime::current()->spawn(log_later(msg));
  // Not: spawn([&] -> coil::task<void> { ... use msg ... }()).detach();
  co_await h;
}
// doc-end: params

// doc-begin: when
coil::task<void> concurrency() {
  // Both run concurrently; the tuple holds every result.
  auto [a, b] = co_await coil::when_all(square(2), square(3));
  check(a == 4 && b == 9, "when_all");

  // The first to finish wins; the other is cancelled and awaited first.
  auto first = co_await coil::when_any(square(4), [&]() -> coil::task<int> {
    co_await coil::sleep_for(1s);
    co_return -1;
  }());
  check(first.index() == 0 && std::get<0>(first) == 16, "when_any");

  // A deadline on anything that produces a result<T>.
  auto slow = [&]() -> coil::task<coil::result<int>> {
    auto s = co_await coil::sleep_for(1s);  // gives operation_canceled when stopped
    if (!s) co_return coil::fail(s.error());
    co_return 1;
  };
  auto r = co_await coil::with_timeout(slow(), 5ms);
  check(!r && r.error() == std::errc::timed_out, "with_timeout");
}
// doc-end: when

// doc-begin: joins
coil::task<coil::result<int>> lookup(int key) {
  auto s = co_await coil::sleep_for(std::chrono::milliseconds(key));
  if (!s) co_return coil::fail(s.error());  // cancelled by a failing sibling
  if (key == 0) co_return coil::fail(std::errc::no_such_file_or_directory);
  co_return key * 10;
}

coil::task<coil::result<void>> store(int) { co_return {}; }

coil::task<void> joins() {
  // Fail fast: every value, or the first error after the others were
  // cancelled and awaited. A result<void> child gives std::monostate.
  auto both = co_await coil::try_when_all(lookup(1), store(1));
  check(both && std::get<0>(*both) == 10, "try_when_all");
  auto failed = co_await coil::try_when_all(lookup(0), lookup(1000));  // ends at once
  check(!failed && failed.error() == std::errc::no_such_file_or_directory, "try_when_all error");

  // A number of children known only at run time.
  std::vector<coil::task<coil::result<int>>> many;
  for (int key = 1; key <= 4; ++key) many.push_back(lookup(key));
  auto all = co_await coil::when_all(std::move(many));  // std::vector<result<int>>, in order
  check(all.size() == 4 && *all[3] == 40, "when_all over a vector");

  std::vector<coil::task<coil::result<int>>> race;
  for (int key : {30, 2, 20}) race.push_back(lookup(key));
  auto first = co_await coil::when_any(std::move(race));  // result<when_any_pick<result<int>>>
  check(first && first->index == 1 && *first->value == 20, "when_any over a vector");
}
// doc-end: joins

// doc-begin: group
coil::task<coil::result<int>> fetch(int id) {
  auto s = co_await coil::sleep_for(std::chrono::milliseconds(id));
  if (!s) co_return coil::fail(s.error());  // cancelled by a failing sibling
  if (id == 3) co_return coil::fail(std::errc::connection_refused);
  co_return id;
}

coil::task<void> group() {
  coil::task_group g;
  for (int id = 1; id <= 5; ++id) g.spawn(fetch(id));
  auto r = co_await g.join();  // every child has finished
  check(!r && r.error() == std::errc::connection_refused, "task_group");
}
// doc-end: group

// doc-begin: cancel
coil::task<coil::result<void>> worker(coil::event& stop_flushed) {
  auto s = co_await coil::sleep_for(1h);  // blocks until cancelled
  check(!s && s.error() == std::errc::operation_canceled, "cancelled sleep");
  auto again = co_await coil::sleep_for(1ms);  // a cancelled task's new waits fail at once
  check(!again, "wait after cancel");
  // Clean-up that must still wait runs shielded from the cancellation.
  auto flushed = co_await coil::shield([]() -> coil::task<coil::result<void>> {
    co_return co_await coil::sleep_for(1ms);
  }());
  check(static_cast<bool>(flushed), "shielded wait");
  stop_flushed.set();
  co_return coil::fail(s.error());
}

coil::task<void> cancellation() {
  coil::event done;
  auto h = coil::runtime::current()->spawn(worker(done));
  co_await coil::yield();  // let it start and block
  h.cancel();              // its pending sleep completes with operation_canceled
  auto r = co_await h;
  check(!r && done.is_set(), "cancel");
}
// doc-end: cancel

// doc-begin: bind
coil::task<void> bind_first(coil::event& e) {
  e.set();
  // g++ 12 miscompiles `if (!co_await e.wait())`: name the result, then test it.
  auto waited = co_await e.wait();
  if (!waited) std::fprintf(stderr, "wait: %s\n", waited.error().message().c_str());
}
// doc-end: bind

// doc-begin: link
// One submission on io_uring: the kernel starts the fdatasync once the write
// is done, and skips it (operation_canceled) if the write fails.
coil::task<coil::result<void>> save(const coil::file& f, std::span<const std::byte> data) {
  auto [w, synced] = co_await coil::link(f.write_at(data, 0), f.fdatasync());
  if (!w) co_return coil::fail(w.error());
  co_return synced;
}

// The kernel cancels the recv if nothing arrives within 50 ms: timed_out.
coil::task<coil::result<size_t>> recv_within(coil::net::unix_stream& s, std::span<std::byte> buf) {
  auto [n, timer] = co_await coil::link(s.recv(buf), coil::link_timeout(50ms));
  co_return n;
}
// doc-end: link

coil::task<void> linked() {
  example::temp_dir dir;
  auto f = co_await coil::file::create(dir.file("saved").c_str());
  check(f.has_value(), "create");
  if (!f) co_return;
  const char text[] = "linked";
  auto saved = co_await save(*f, std::as_bytes(std::span(text)));
  check(saved.has_value(), "save");
  auto p = coil::net::unix_stream::pair();
  check(p.has_value(), "pair");
  if (!p) co_return;
  auto& [a, b] = *p;
  std::byte buf[16];
  auto quiet = co_await recv_within(b, buf);
  check(!quiet && quiet.error() == std::errc::timed_out, "recv timed out");
  auto sent = co_await a.send_all(std::as_bytes(std::span(text)));
  check(sent.has_value(), "send");
  auto got = co_await recv_within(b, buf);
  check(got && *got == sizeof text, "recv in time");
}

coil::task<void> all() {
  co_await spawn_and_join();
  co_await spawn_with_data();
  co_await concurrency();
  co_await joins();
  co_await group();
  co_await cancellation();
  co_await linked();
  coil::event e;
  co_await bind_first(e);
}

}  // namespace

int main() {
  auto rt = coil::runtime::create();
  if (!rt) return 1;
  (*rt)->block_on(all());
  // doc-begin: deadlock
  // Nothing can ever set this event: block_on reports it instead of hanging.
  coil::event never;
  auto r = (*rt)->block_on([](coil::event& e) -> coil::task<coil::result<void>> {
    co_return co_await e.wait();
  }(never));
  check(!r && r.error() == coil::errc::deadlock, "deadlock");
  // doc-end: deadlock
  return example::exit_code();
}
