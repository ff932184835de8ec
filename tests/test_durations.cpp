// Durations and deadlines at the edges: huge ones saturate to "never",
// negative ones mean "now", with no overflow on the way (UBSan builds check
// the arithmetic). Every API that takes a duration or a deadline.
#include <climits>
#include <cmath>
#include <limits>
#include <variant>

#include "test_net_util.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;
using coil::test::run;
using std::chrono::duration;
using std::chrono::hours;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

constexpr hours millennium{24 * 365 * 1000};
constexpr int64_t min_ns = std::numeric_limits<int64_t>::min();

// The one conversion every API uses.
static_assert(detail::saturating_ns(nanoseconds::max()) == forever_ns);
static_assert(detail::saturating_ns(seconds::max()) == forever_ns);
static_assert(detail::saturating_ns(millennium) == forever_ns);
static_assert(detail::saturating_ns(nanoseconds::min()) == min_ns);
static_assert(detail::saturating_ns(seconds::min()) == min_ns);
static_assert(detail::saturating_ns(-millennium) == min_ns);
static_assert(detail::saturating_ns(5ms) == 5'000'000);
static_assert(detail::saturating_ns(-1min) == -60'000'000'000);
static_assert(detail::saturating_ns(duration<int64_t, std::ratio<1, 3>>(4)) == 1'333'333'333);
static_assert(detail::saturating_ns(duration<uint64_t, std::pico>(UINT64_MAX)) == int64_t(UINT64_MAX / 1000));
static_assert(detail::saturating_ns(duration<uint64_t>(UINT64_MAX)) == forever_ns);
static_assert(detail::saturating_ns(duration<double>(1.5)) == 1'500'000'000);
static_assert(detail::saturating_ns(duration<double>(1e300)) == forever_ns);
static_assert(detail::saturating_ns(duration<double>(-1e300)) == min_ns);
static_assert(detail::saturating_add(forever_ns - 5, 10) == forever_ns);
static_assert(detail::saturating_sub(min_ns + 5, 10) == min_ns);
static_assert(detail::saturating_sub(forever_ns, -1) == forever_ns);
static_assert(poll_timeout_ms(forever_ns) == INT_MAX);
static_assert(poll_timeout_ms(1) == 1 && poll_timeout_ms(1'000'000) == 1 && poll_timeout_ms(1'000'001) == 2);
static_assert(poll_timeout_ms(0) == 0 && poll_timeout_ms(-1) == -1);

TEST(Durations, FloatingPointEdges) {
  EXPECT_EQ(detail::saturating_ns(duration<double>(std::numeric_limits<double>::infinity())), forever_ns);
  EXPECT_EQ(detail::saturating_ns(duration<double>(-std::numeric_limits<double>::infinity())), min_ns);
  EXPECT_EQ(detail::saturating_ns(duration<double>(std::nan(""))), 0);
}

// Raced against a 1 ms sleep, a sleep of d must lose: the short one wins and
// the long one ends cancelled.
template <class Sleep>
void loses_to_a_short_sleep(Sleep long_sleep) {
  auto body = [](Sleep s) -> task<void> {
    auto v = co_await when_any(std::move(s), sleep_for(1ms));
    EXPECT_EQ(v.index(), 1u);
    if (v.index() == 0) ADD_FAILURE() << "the long sleep ended first: " << (std::get<0>(v) ? "ok" : "failed");
  };
  run(body(std::move(long_sleep)));
}

TEST(Durations, HugeSleepsNeverEnd) {
  loses_to_a_short_sleep(sleep_for(nanoseconds::max()));
  loses_to_a_short_sleep(sleep_for(seconds::max()));
  loses_to_a_short_sleep(sleep_for(millennium));
  loses_to_a_short_sleep(sleep_for(duration<double>(std::numeric_limits<double>::infinity())));
  loses_to_a_short_sleep(sleep_for(duration<uint64_t>(UINT64_MAX)));
}

TEST(Durations, HugeDeadlinesAreNeverReached) {
  loses_to_a_short_sleep(sleep_until(steady_clock::time_point::max()));
  loses_to_a_short_sleep(sleep_until(std::chrono::time_point<steady_clock, seconds>::max()));
  // in hours: now + 1000 years in nanoseconds would overflow in the caller
  loses_to_a_short_sleep(sleep_until(std::chrono::time_point_cast<hours>(steady_clock::now()) + millennium));
  loses_to_a_short_sleep(sleep_until_ns(forever_ns));
}

// A sleep of d wins against one of an hour, so it ends at once.
template <class Sleep>
void ends_at_once(Sleep s) {
  auto body = [](Sleep s) -> task<void> {
    auto v = co_await when_any(std::move(s), sleep_for(1h));
    CO_ASSERT_TRUE(v.index() == 0u);
    EXPECT_TRUE(std::get<0>(v));
  };
  run(body(std::move(s)));
}

TEST(Durations, NegativeSleepsAndPastDeadlinesEndAtOnce) {
  ends_at_once(sleep_for(-1s));
  ends_at_once(sleep_for(nanoseconds::min()));
  ends_at_once(sleep_for(seconds::min()));
  ends_at_once(sleep_for(-millennium));
  ends_at_once(sleep_for(0s));
  ends_at_once(sleep_until(steady_clock::time_point::min()));
  ends_at_once(sleep_until(std::chrono::time_point<steady_clock, seconds>::min()));
  ends_at_once(sleep_until(steady_clock::now() - 1s));
  ends_at_once(sleep_until_ns(min_ns));
}

task<result<int>> after(std::chrono::milliseconds d, int v) {
  auto s = co_await sleep_for(d);
  if (!s) co_return fail(s.error());
  co_return v;
}

template <class D>
void huge_timeout_never_passes(D d) {
  auto body = [](D d) -> task<void> {
    auto r = co_await with_timeout(after(1ms, 7), d);
    CO_ASSERT_OK(r);
    EXPECT_EQ(*r, 7);
    auto op = co_await with_timeout(sleep_for(1ms), d);  // an operation, not a task
    EXPECT_TRUE(op) << op.error().message();
  };
  run(body(d));
}

TEST(Durations, HugeTimeoutsNeverPass) {
  huge_timeout_never_passes(nanoseconds::max());
  huge_timeout_never_passes(seconds::max());
  huge_timeout_never_passes(millennium);
}

template <class D>
void negative_timeout_passes_at_once(D d) {
  auto body = [](D d) -> task<void> {
    auto r = co_await with_timeout(after(1h, 7), d);
    EXPECT_TRUE(test::fails_with(r, std::errc::timed_out));
  };
  run(body(d));
}

TEST(Durations, NegativeTimeoutsPassAtOnce) {
  negative_timeout_passes_at_once(-1s);
  negative_timeout_passes_at_once(nanoseconds::min());
  negative_timeout_passes_at_once(seconds::min());
}

// A task that needs a few loop turns after it is cancelled: shutdown's grace
// decides whether it may finish.
task<void> slow_to_stop(bool& finished) {
  (void)co_await sleep_for(1h);  // cancelled by the shutdown
  auto s = co_await shield([]() -> task<result<void>> { co_return co_await sleep_for(2ms); }());
  finished = s.has_value();
}

template <class D>
void shutdown_with_grace(D grace, bool expect_finished) {
  bool finished = false;
  auto rt = runtime::create();
  ASSERT_TRUE(rt);
  (*rt)->spawn(slow_to_stop(finished)).detach();
  (*rt)->block_on([]() -> task<void> { co_await yield(); }());
  auto r = (*rt)->shutdown(grace);
  if (expect_finished) {
    EXPECT_TRUE(r) << r.error().message();
  } else {
    EXPECT_TRUE(test::fails_with(r, std::errc::timed_out));
  }
  EXPECT_EQ(finished, expect_finished);
}

TEST(Durations, ShutdownWithAHugeGraceWaitsForTheTasks) {
  shutdown_with_grace(nanoseconds::max(), true);
  shutdown_with_grace(seconds::max(), true);
  shutdown_with_grace(millennium, true);
}

TEST(Durations, ShutdownWithANegativeGraceWaitsForNone) {
  shutdown_with_grace(-1s, false);
  shutdown_with_grace(seconds::min(), false);
}

template <class D>
void connect_with_timeout(D d) {
  auto l = test::listen_loopback();
  auto body = [](net::socket_address a, D d) -> task<void> {
    auto s = co_await net::tcp_stream::connect(a, d);
    EXPECT_TRUE(s) << s.error().message();
  };
  run(body(l.addr, d));
}

TEST(Durations, ConnectWithAHugeTimeoutConnects) {
  connect_with_timeout(nanoseconds::max());
  connect_with_timeout(seconds::max());
  connect_with_timeout(millennium);
}

}  // namespace
