// The fault-injection layer (io/fault.hpp): each kind of fault reaches the
// owner, runs are reproducible for a seed, and coil's own helpers (file
// read_exact_at/write_all_at, stream send_all/recv_exact, the packet layer)
// neither lose nor duplicate a byte under it. Every test also asserts the
// layer really injected something, so a layer that did nothing fails here.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "packet_model.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;
using namespace std::chrono_literals;

fault_options spec(uint64_t seed, fault_options f) {
  f.enabled = true;
  f.seed = seed;
  return f;
}

runtime_options with(fault_options f) {
  runtime_options o;
  o.faults = f;
  return o;
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed * 7 + i / 251) & 0xff);
  return v;
}

std::vector<std::byte> file_bytes(const std::string& path) {
  std::vector<std::byte> v;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return v;
  std::byte buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) v.insert(v.end(), buf, buf + n);
  ::close(fd);
  return v;
}

fault_stats faults_now() { return runtime::current()->driver().faults()->stats(); }

TEST(FaultSpec, ParsesTheGrammar) {
  auto f = parse_fault_spec("42:eio=0.01,short=0.05,eagain=0.02,delay=0.5,delay_turns=5,reorder=1,enospc=0,econnreset=0.25");
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->enabled);
  EXPECT_EQ(f->seed, 42u);
  EXPECT_EQ(f->eio, 0.01);
  EXPECT_EQ(f->short_io, 0.05);
  EXPECT_EQ(f->eagain, 0.02);
  EXPECT_EQ(f->delay, 0.5);
  EXPECT_EQ(f->delay_turns, 5u);
  EXPECT_EQ(f->reorder, 1.0);
  EXPECT_EQ(f->econnreset, 0.25);
  EXPECT_TRUE(parse_fault_spec("7:"));
  for (const char* badspec : {"", "eio=0.1", "x:eio=0.1", "1:eio", "1:eio=2", "1:eio=-0.1", "1:bogus=0.1",
                              "1:eio=0.1,", "1:delay_turns=8", "-1:eio=0.1", "1:eio=0.1x"}) {
    std::string why;
    auto r = parse_fault_spec(badspec, &why);
    EXPECT_TRUE(test::fails_with(r, std::errc::invalid_argument)) << badspec;
    EXPECT_FALSE(why.empty()) << badspec;
  }
}

TEST(FaultSpec, EnvironmentSelectsAndABadSpecFailsCreation) {
  const char* old = std::getenv("COIL_FAULTS");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("COIL_FAULTS", "9:eio=0.5", 1);
  {
    auto d = driver::create();
    ASSERT_TRUE(d);
    ASSERT_NE((*d)->faults(), nullptr);
    EXPECT_EQ((*d)->faults()->options().seed, 9u);
    EXPECT_EQ((*d)->faults()->options().eio, 0.5);
  }
  ::setenv("COIL_FAULTS", "9:eio=high", 1);
  EXPECT_TRUE(test::fails_with(driver::create(), std::errc::invalid_argument));
  // Options win over the environment.
  driver_options o;
  o.faults = spec(3, {.short_io = 1});
  auto d = driver::create(o);
  ASSERT_TRUE(d);
  EXPECT_EQ((*d)->faults()->options().seed, 3u);
  if (old != nullptr) {
    ::setenv("COIL_FAULTS", saved.c_str(), 1);
  } else {
    ::unsetenv("COIL_FAULTS");
    auto off = driver::create();
    ASSERT_TRUE(off);
    EXPECT_EQ((*off)->faults(), nullptr);  // off: no layer at all
  }
}

// ---- each kind ------------------------------------------------------------------

TEST(Faults, InjectedWriteErrorsWriteNothing) {
  test::temp_dir dir;
  for (auto [kind, want] : {std::pair{&fault_options::eio, std::errc::io_error},
                            std::pair{&fault_options::enospc, std::errc::no_space_on_device}}) {
    fault_options f;
    f.*kind = 1;
    const std::string path = dir.file("w");
    test::run(
        [](std::string path, std::errc want) -> task<void> {
          auto fl = co_await file::create(path.c_str());
          CO_ASSERT_OK(fl);
          const auto data = pattern(4096, 1);
          auto w = co_await fl->write_at(data, 0);
          EXPECT_TRUE(test::fails_with(w, want));
          auto all = co_await fl->write_all_at(data, 0);
          EXPECT_TRUE(test::fails_with(all, want));  // an error value, not a retry loop
          auto fs = co_await fl->fsync();
          EXPECT_TRUE(test::fails_with(fs, want));
          EXPECT_EQ(faults_now().errors(), 3u);
        }(path, want),
        with(spec(1, f)));
    EXPECT_TRUE(file_bytes(path).empty()) << "an injected write error must not write";
  }
}

TEST(Faults, InjectedReadErrorsAndEagain) {
  test::temp_dir dir;
  const auto data = pattern(1000, 2);
  auto fl0 = packet::model::make_file(dir.file("r"), data);
  ASSERT_TRUE(fl0.is_open());
  test::run(
      [](const file& fl) -> task<void> {
        std::vector<std::byte> buf(100);
        auto r = co_await fl.read_at(buf, 0);
        EXPECT_TRUE(test::fails_with(r, std::errc::io_error));
        EXPECT_EQ(faults_now().eio, 1u);
      }(fl0),
      with(spec(1, {.eio = 1})));
  test::run(
      [](const file& fl) -> task<void> {
        std::vector<std::byte> buf(100);
        auto r = co_await fl.read_at(buf, 0);
        EXPECT_TRUE(test::fails_with(r, std::errc::resource_unavailable_try_again));
        auto p = net::unix_stream::pair();
        CO_ASSERT_OK(p);
        auto s = co_await p->first.send(std::as_bytes(std::span("x", 1)));
        EXPECT_TRUE(test::fails_with(s, std::errc::resource_unavailable_try_again));
        EXPECT_EQ(faults_now().eagain, 2u);
        // Nothing was sent: the peer has nothing to read.
        char c;
        EXPECT_EQ(::recv(p->second.fd(), &c, 1, MSG_DONTWAIT), -1);
      }(fl0),
      with(spec(1, {.eagain = 1})));
}

TEST(Faults, ConnectionResetOnStreamsOnly) {
  test::temp_dir dir;
  test::run(
      [](std::string path) -> task<void> {
        auto p = net::unix_stream::pair();
        CO_ASSERT_OK(p);
        auto s = co_await p->first.send(std::as_bytes(std::span("hello", 5)));
        EXPECT_TRUE(test::fails_with(s, std::errc::connection_reset));
        std::vector<std::byte> buf(5);
        auto r = co_await p->second.recv(buf);
        EXPECT_TRUE(test::fails_with(r, std::errc::connection_reset));
        // Files never see a connection reset.
        auto fl = co_await file::create(path.c_str());
        CO_ASSERT_OK(fl);
        auto w = co_await fl->write_at(std::as_bytes(std::span("abc", 3)), 0);
        EXPECT_TRUE(w && *w == 3);
        EXPECT_EQ(faults_now().econnreset, 2u);
      }(dir.file("f")),
      with(spec(5, {.econnreset = 1})));
}

TEST(Faults, ShortWritesWriteExactlyWhatTheyReport) {
  test::temp_dir dir;
  const std::string path = dir.file("s");
  std::size_t reported = 0;
  test::run(
      [](std::string path, std::size_t& reported) -> task<void> {
        auto fl = co_await file::create(path.c_str());
        CO_ASSERT_OK(fl);
        const auto data = pattern(10000, 3);
        auto w = co_await fl->write_at(data, 0);
        CO_ASSERT_OK(w);
        EXPECT_LT(*w, data.size());
        EXPECT_GT(*w, 0u);
        reported = *w;
        EXPECT_EQ(faults_now().short_io, 1u);
      }(path, reported),
      with(spec(11, {.short_io = 1})));
  const auto now = file_bytes(path);
  EXPECT_EQ(now.size(), reported) << "the kernel wrote more than the caller was told";
  const auto data = pattern(10000, 3);
  EXPECT_EQ(0, std::memcmp(now.data(), data.data(), now.size()));
}

TEST(Faults, ShortReadsAndRecvsLeaveTheRestInPlace) {
  test::temp_dir dir;
  const auto data = pattern(5000, 4);
  auto fl0 = packet::model::make_file(dir.file("r"), data);
  test::run(
      [](const file& fl, const std::vector<std::byte>& data) -> task<void> {
        std::vector<std::byte> buf(data.size());
        auto r = co_await fl.read_at(buf, 0);
        CO_ASSERT_OK(r);
        EXPECT_LT(*r, data.size());
        EXPECT_EQ(0, std::memcmp(buf.data(), data.data(), *r));
        // A stream: what a short recv did not take is still there, in order.
        auto p = net::unix_stream::pair();
        CO_ASSERT_OK(p);
        CO_ASSERT_TRUE(::send(p->first.fd(), data.data(), 1000, 0) == 1000);
        std::vector<std::byte> got(1000);
        auto n = co_await p->second.recv(got);
        CO_ASSERT_OK(n);
        EXPECT_LT(*n, 1000u);
        std::vector<std::byte> rest(1000);
        const ssize_t k = ::recv(p->second.fd(), rest.data(), rest.size(), MSG_DONTWAIT);
        EXPECT_EQ(static_cast<std::size_t>(k), 1000 - *n);
        EXPECT_EQ(0, std::memcmp(got.data(), data.data(), *n));
        EXPECT_EQ(0, std::memcmp(rest.data(), data.data() + *n, 1000 - *n));
        EXPECT_EQ(faults_now().short_io, 2u);
      }(fl0, data),
      with(spec(12, {.short_io = 1})));
}

TEST(Faults, DatagramsAndEventfdsAreNeverShortened) {
  test::run(
      []() -> task<void> {
        int sv[2];
        CO_ASSERT_TRUE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
        file a{unique_fd(sv[0])}, b{unique_fd(sv[1])};
        auto w = co_await a.write(std::as_bytes(std::span("datagram", 8)));
        EXPECT_TRUE(w && *w == 8);
        char buf[8];
        auto r = co_await b.read(std::as_writable_bytes(std::span(buf)));
        EXPECT_TRUE(r && *r == 8);
        EXPECT_EQ(faults_now().short_io, 0u);
      }(),
      with(spec(13, {.short_io = 1})));
}

TEST(Faults, DelayedAndReorderedCompletionsKeepTheirResults) {
  test::temp_dir dir;
  const auto data = pattern(64 * 32, 5);
  auto fl0 = packet::model::make_file(dir.file("d"), data);
  test::run(
      [](const file& fl, const std::vector<std::byte>& data) -> task<void> {
        // 32 reads in one turn, rounds of them: completions come back late and
        // shuffled, each still with its own bytes.
        for (int round = 0; round < 8; ++round) {
          std::vector<std::vector<std::byte>> bufs(32, std::vector<std::byte>(64));
          std::vector<join_handle<result<size_t>>> hs;
          for (std::size_t i = 0; i < 32; ++i) {
            hs.push_back(runtime::current()->spawn(
                [](const file& fl, std::span<std::byte> b, uint64_t at) -> task<result<size_t>> {
                  co_return co_await fl.read_at(b, at);
                }(fl, bufs[i], i * 64)));
          }
          for (std::size_t i = 0; i < 32; ++i) {
            auto r = co_await std::move(hs[i]);
            EXPECT_TRUE(r && *r == 64);
            EXPECT_EQ(0, std::memcmp(bufs[i].data(), data.data() + i * 64, 64)) << i;
          }
        }
        EXPECT_GT(faults_now().delayed, 0u);
        EXPECT_GT(faults_now().reordered, 0u);
      }(fl0, data),
      with(spec(21, {.delay = 0.5, .reorder = 1})));
}

TEST(Faults, CancellingWorksWhileCompletionsAreHeld) {
  test::run(
      []() -> task<void> {
        auto p = net::unix_stream::pair();
        CO_ASSERT_OK(p);
        // Never answered: the timeout cancels a recv the kernel holds.
        std::vector<std::byte> buf(10);
        for (;;) {
          auto r = co_await with_timeout(p->second.recv(buf), 5ms);
          if (!r && r.error() == std::errc::resource_unavailable_try_again) continue;  // injected
          EXPECT_TRUE(test::fails_with(r, std::errc::timed_out));
          break;
        }
        // Answered, completion held by the layer, then the frame goes away.
        CO_ASSERT_TRUE(::send(p->first.fd(), "abc", 3, 0) == 3);
        for (int i = 0; i < 20; ++i) {
          auto once = co_await with_timeout(p->second.recv(buf), 1s);
          if (!once) {
            EXPECT_TRUE(test::fails_with(once, std::errc::resource_unavailable_try_again));
            continue;
          }
          EXPECT_EQ(*once, 3u);
          break;
        }
        EXPECT_GT(faults_now().delayed, 0u);
      }(),
      with(spec(31, {.eagain = 0.3, .delay = 1, .delay_turns = 7})));
}

// ---- ECANCELED nobody asked for ---------------------------------------------------

bool injects_cancels() {
  coil::driver& d = runtime::current()->driver();
  return d.injects_nop_results();
}

// The kernel answers ECANCELED for ops it never ran (io-wq without a
// worker); the io_uring driver resubmits them, so owners see only success
// and every byte. On epoll no system call says ECANCELED by itself: inert.
TEST(Faults, SpuriousCancelsAreResubmittedUnseen) {
  test::temp_dir dir;
  test::run(
      [](std::string dir) -> task<void> {
        const std::vector<std::byte> out = pattern(20000, 3);
        std::vector<std::byte> in(out.size());
        for (int i = 0; i < 20; ++i) {
          const std::string path = dir + "/f" + std::to_string(i);
          auto f = co_await file::create(path.c_str());
          CO_ASSERT_OK(f);
          CO_ASSERT_OK(co_await f->write_all_at(out, 0));
          CO_ASSERT_OK(co_await f->fsync());
          CO_ASSERT_OK(co_await f->close());
          auto g = co_await file::open(path.c_str());
          CO_ASSERT_OK(g);
          CO_ASSERT_OK(co_await g->read_exact_at(in, 0));
          EXPECT_TRUE(in == out);
        }
        auto p = net::unix_stream::pair();
        CO_ASSERT_OK(p);
        for (int i = 0; i < 20; ++i) {
          CO_ASSERT_OK(co_await p->first.send_all(out));
          CO_ASSERT_OK(co_await p->second.recv_exact(in));
          EXPECT_TRUE(in == out);
        }
        const uint64_t injected = faults_now().ecanceled;
        const uint64_t retried = runtime::current()->stats().io.cancel_retries;
        if (injects_cancels()) {
          EXPECT_GT(injected, 20u);
        } else {
          EXPECT_EQ(injected, 0u);
        }
        EXPECT_EQ(retried, injected);
        EXPECT_EQ(faults_now().errors(), 0u);
      }(dir.path()),
      with(spec(41, {.ecanceled = 0.5})));
}

// A cancel coil asked for (here a cancelled task's pending read) answers at
// once, even with every op first answered ECANCELED by the kernel.
TEST(Faults, RealCancelsAreNotResubmitted) {
  test::run(
      []() -> task<void> {
        int p[2];
        CO_ASSERT_TRUE(::pipe2(p, O_CLOEXEC) == 0);
        file rd{unique_fd(p[0])}, wr{unique_fd(p[1])};
        auto reader = [](file& f) -> task<result<size_t>> {
          char buf[8];
          co_return co_await f.read(std::as_writable_bytes(std::span(buf)));
        };
        auto h = runtime::current()->spawn(reader(rd));
        auto slept = co_await sleep_for(5ms);  // the read is with the kernel
        CO_ASSERT_OK(slept);
        h.cancel();
        auto r = co_await std::move(h);
        EXPECT_TRUE(test::fails_with(r, std::errc::operation_canceled));
        EXPECT_EQ(runtime::current()->stats().io.cancel_retries, faults_now().ecanceled);
        if (injects_cancels()) {
          EXPECT_GE(faults_now().ecanceled, 1u);
        }
      }(),
      with(spec(43, {.ecanceled = 1})));
}

// ---- determinism -----------------------------------------------------------------

// What 300 sequential reads saw: sizes, or -errno.
std::vector<int64_t> trace(const std::string& path, uint64_t seed) {
  std::vector<int64_t> seen;
  test::run(
      [](std::string path, std::vector<int64_t>& seen) -> task<void> {
        auto fl = co_await file::open(path.c_str());
        CO_ASSERT_OK(fl);
        std::vector<std::byte> buf(512);
        for (int i = 0; i < 300; ++i) {
          auto r = co_await fl->read_at(buf, static_cast<uint64_t>(i) * 7);
          seen.push_back(r ? static_cast<int64_t>(*r) : -r.error().value());
        }
        const fault_stats s = faults_now();
        seen.push_back(static_cast<int64_t>(s.eio));
        seen.push_back(static_cast<int64_t>(s.eagain));
        seen.push_back(static_cast<int64_t>(s.short_io));
      }(path, seen),
      with(spec(seed, {.eio = 0.1, .eagain = 0.1, .short_io = 0.3, .delay = 0.3, .reorder = 0.5})));
  return seen;
}

TEST(Faults, SameSeedSameFaults) {
  test::temp_dir dir;
  (void)packet::model::make_file(dir.file("t"), pattern(4096, 6));
  const auto a = trace(dir.file("t"), 77);
  const auto b = trace(dir.file("t"), 77);
  const auto c = trace(dir.file("t"), 78);
  ASSERT_EQ(a.size(), 303u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_GT(a[300], 0);  // eio
  EXPECT_GT(a[301], 0);  // eagain
  EXPECT_GT(a[302], 0);  // short
}

// ---- coil's helpers under faults --------------------------------------------------

const fault_options retryable{.eagain = 0.2, .short_io = 0.4, .delay = 0.3, .reorder = 0.5};

TEST(FaultsHelpers, FileWriteAllAndReadExactAreExact) {
  test::temp_dir dir;
  const std::string path = dir.file("big");
  const auto data = pattern(1 << 20, 7);
  test::run(
      [](std::string path, const std::vector<std::byte>& data) -> task<void> {
        auto fl = co_await file::create(path.c_str());
        CO_ASSERT_OK(fl);
        for (std::size_t at = 0; at < data.size(); at += 65536) {
          auto w = co_await fl->write_all_at(std::span(data).subspan(at, 65536), at);
          CO_ASSERT_OK(w);
        }
        std::vector<std::byte> back(data.size());
        for (std::size_t at = 0; at < data.size(); at += 100000) {
          const std::size_t n = std::min<std::size_t>(100000, data.size() - at);
          auto r = co_await fl->read_exact_at(std::span(back).subspan(at, n), at);
          CO_ASSERT_OK(r);
        }
        EXPECT_TRUE(back == data);
        const fault_stats s = faults_now();
        EXPECT_GT(s.short_io, 10u);
        EXPECT_GT(s.eagain, 5u);
        EXPECT_GT(s.delayed, 0u);
      }(path, data),
      with(spec(41, retryable)));
  EXPECT_TRUE(file_bytes(path) == data);
}

TEST(FaultsHelpers, FileWriteAllUnderEioNeverWritesWrongBytes) {
  test::temp_dir dir;
  const std::string path = dir.file("eio");
  const auto data = pattern(256 * 1024, 8);
  test::run(
      [](std::string path, const std::vector<std::byte>& data) -> task<void> {
        auto fl = co_await file::create(path.c_str());
        CO_ASSERT_OK(fl);
        // Retrying a failed write_all_at at the same offset is always safe:
        // the layer wrote nothing it reported as failed, and every reported
        // byte is the caller's.
        int failures = 0;
        for (std::size_t at = 0; at < data.size(); at += 8192) {
          for (;;) {
            auto w = co_await fl->write_all_at(std::span(data).subspan(at, 8192), at);
            if (w) break;
            EXPECT_TRUE(w.error() == std::errc::io_error || w.error() == std::errc::no_space_on_device);
            ++failures;
          }
        }
        EXPECT_GT(failures, 0);
        EXPECT_GT(faults_now().short_io, 0u);
      }(path, data),
      with(spec(42, {.eio = 0.1, .enospc = 0.05, .short_io = 0.3, .delay = 0.2})));
  EXPECT_TRUE(file_bytes(path) == data);
}

// Sends data in chunks of varying size on one task while another receives it
// in other chunk sizes.
template <class Stream>
task<void> stream_round_trip(Stream& tx, Stream& rx, const std::vector<std::byte>& data) {
  auto sender = [](Stream& tx, const std::vector<std::byte>& data) -> task<result<void>> {
    std::size_t at = 0;
    for (std::size_t k = 1; at < data.size(); ++k) {
      const std::size_t n = std::min<std::size_t>(data.size() - at, 1 + (k * 7919) % 30000);
      auto s = co_await tx.send_all(std::span(data).subspan(at, n));
      if (!s) co_return s;
      at += n;
    }
    co_return result<void>{};
  };
  auto h = runtime::current()->spawn(sender(tx, data));
  std::vector<std::byte> got(data.size());
  std::size_t at = 0;
  for (std::size_t k = 1; at < got.size(); ++k) {
    const std::size_t n = std::min<std::size_t>(got.size() - at, 1 + (k * 104729) % 20000);
    auto r = co_await rx.recv_exact(std::span(got).subspan(at, n));
    CO_ASSERT_OK(r);
    at += n;
  }
  auto sent = co_await h;
  CO_ASSERT_OK(sent);
  EXPECT_TRUE(got == data) << "stream bytes lost, duplicated or reordered";
  // Nothing extra arrived.
  char extra;
  EXPECT_EQ(::recv(rx.fd(), &extra, 1, MSG_DONTWAIT), -1);
}

TEST(FaultsHelpers, StreamSendAllRecvExactOverTcpAndUnix) {
  const auto data = pattern(2 << 20, 9);
  test::run(
      [](const std::vector<std::byte>& data) -> task<void> {
        auto lst = net::tcp_listener::bind(net::socket_address::ipv4_loopback(0));
        CO_ASSERT_OK(lst);
        auto where = lst->local_address();
        CO_ASSERT_OK(where);
        auto acc = runtime::current()->spawn([](net::tcp_listener& l) -> task<result<net::tcp_stream>> {
          for (;;) {
            auto c = co_await l.accept();
            if (c || c.error() != std::errc::resource_unavailable_try_again) co_return c;
          }
        }(*lst));
        result<net::tcp_stream> client = fail(std::errc::resource_unavailable_try_again);
        while (!client && client.error() == std::errc::resource_unavailable_try_again) {
          client = co_await net::tcp_stream::connect(*where);
        }
        CO_ASSERT_OK(client);
        auto server = co_await acc;
        CO_ASSERT_OK(server);
        co_await stream_round_trip(*client, *server, data);
        co_await stream_round_trip(*server, *client, data);
        auto p = net::unix_stream::pair();
        CO_ASSERT_OK(p);
        co_await stream_round_trip(p->first, p->second, data);
        const fault_stats s = faults_now();
        EXPECT_GT(s.short_io, 10u);
        EXPECT_GT(s.eagain, 10u);
        EXPECT_GT(s.delayed, 10u);
        EXPECT_GT(s.reordered, 0u);
      }(data),
      with(spec(51, retryable)));
}

TEST(FaultsHelpers, StreamResetSurfacesAsAValueWithoutLoss) {
  const auto data = pattern(1 << 20, 10);
  test::run(
      [](const std::vector<std::byte>& data) -> task<void> {
        auto p = net::unix_stream::pair();
        CO_ASSERT_OK(p);
        // The sender stops at its first error; what arrived is exactly a prefix.
        auto sender = [](net::unix_stream& tx, const std::vector<std::byte>& data) -> task<std::error_code> {
          for (std::size_t at = 0; at < data.size(); at += 4096) {
            auto s = co_await tx.send_all(std::span(data).subspan(at, 4096));
            if (!s) {
              (void)co_await tx.shutdown();
              co_return s.error();
            }
          }
          (void)co_await tx.shutdown();
          co_return std::error_code{};
        };
        auto h = runtime::current()->spawn(sender(p->first, data));
        std::vector<std::byte> got;
        std::vector<std::byte> buf(3000);
        int resets = 0;
        for (;;) {
          auto r = co_await p->second.recv(buf);
          if (!r) {
            EXPECT_TRUE(r.error() == std::errc::connection_reset || r.error() == std::errc::resource_unavailable_try_again)
                << r.error().message();
            resets += r.error() == std::errc::connection_reset;
            continue;  // an injected error consumed nothing: go on reading
          }
          if (*r == 0) break;
          got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*r));
        }
        const std::error_code err = co_await h;
        EXPECT_EQ(err, std::errc::connection_reset);
        CO_ASSERT_TRUE(got.size() <= data.size());
        EXPECT_EQ(0, std::memcmp(got.data(), data.data(), got.size())) << "not a prefix of what was sent";
        EXPECT_GT(resets, 0);
      }(data),
      with(spec(61, {.eagain = 0.1, .econnreset = 0.02, .short_io = 0.3})));
}

struct request {
  uint64_t address;
  std::vector<std::byte> buf;
  packet::outcome result;
};

// Every request as its own task in one loop turn (neighbours coalesce).
task<void> read_concurrently(packet::space& s, std::vector<request>& reqs) {
  std::vector<join_handle<void>> hs;
  for (auto& r : reqs) {
    hs.push_back(runtime::current()->spawn([](packet::space& s, request& r) -> task<void> {
      r.result = co_await packet::read(s, r.address, r.buf);
    }(s, r)));
  }
  for (auto& h : hs) co_await h;
}

TEST(FaultsHelpers, PacketLayerIsExactUnderRetryableFaults) {
  test::temp_dir dir;
  const auto data = pattern(64 * 1024, 11);
  const auto fresh = pattern(64 * 1024, 12);
  packet::file_space fs(packet::model::make_file(dir.file("p"), data));
  test::run(
      [](packet::file_space& fs, const std::vector<std::byte>& data, const std::vector<std::byte>& fresh) -> task<void> {
        for (int round = 0; round < 6; ++round) {
          // Neighbouring and overlapping reads in one turn: vectored runs, cut short.
          std::vector<request> reqs;
          for (uint64_t i = 0; i < 48; ++i) {
            const uint64_t at = (i * 1237 + static_cast<uint64_t>(round) * 4099) % (data.size() - 2000);
            reqs.push_back({at, std::vector<std::byte>(100 + (i * 97) % 1900), {}});
          }
          co_await read_concurrently(fs, reqs);
          for (auto& r : reqs) {
            EXPECT_TRUE(r.result.all_ok()) << r.result.first_error().message();
            EXPECT_EQ(0, std::memcmp(r.buf.data(), data.data() + r.address, r.buf.size())) << "at " << r.address;
          }
        }
        // Adjacent writes in one turn, then the whole file read back.
        std::vector<packet::outcome> outs(64);
        std::vector<join_handle<void>> hs;
        for (uint64_t i = 0; i < 64; ++i) {
          hs.push_back(runtime::current()->spawn(
              [](packet::space& s, uint64_t at, std::span<const std::byte> src, packet::outcome& o) -> task<void> {
                o = co_await packet::write(s, at, src);
              }(fs, i * 1024, std::span(fresh).subspan(i * 1024, 1024), outs[i])));
        }
        for (auto& h : hs) co_await h;
        for (auto& o : outs) EXPECT_TRUE(o.all_ok()) << o.first_error().message();
        std::vector<std::byte> back(fresh.size());
        auto whole = co_await packet::read(fs, 0, back);
        EXPECT_TRUE(whole.all_ok());
        EXPECT_TRUE(back == fresh);
        const fault_stats s = faults_now();
        EXPECT_GT(s.short_io, 0u);
        EXPECT_GT(s.eagain, 0u);
      }(fs, data, fresh),
      with(spec(71, retryable)));
  EXPECT_TRUE(file_bytes(dir.file("p")) == fresh);
}

TEST(FaultsHelpers, PacketLayerReportsInjectedErrorsExactly) {
  test::temp_dir dir;
  const auto data = pattern(32 * 1024, 13);
  packet::file_space fs(packet::model::make_file(dir.file("e"), data));
  test::run(
      [](packet::file_space& fs, const std::vector<std::byte>& data) -> task<void> {
        uint64_t failed = 0;
        for (int round = 0; round < 20; ++round) {
          std::vector<request> reqs;
          for (uint64_t i = 0; i < 16; ++i) reqs.push_back({i * 2000, std::vector<std::byte>(2000), {}});
          for (auto& r : reqs) std::memset(r.buf.data(), 0xee, r.buf.size());
          co_await read_concurrently(fs, reqs);
          for (auto& r : reqs) {
            failed += r.result.failed_bytes();
            // Every byte reported good is the file's.
            std::vector<bool> bad(r.buf.size());
            for (const auto& f : r.result.failures()) {
              EXPECT_EQ(f.error, std::errc::io_error);
              for (uint64_t k = f.range.offset; k < f.range.end(); ++k) bad[k] = true;
            }
            for (std::size_t k = 0; k < r.buf.size(); ++k) {
              if (!bad[k] && r.buf[k] != data[r.address + k]) {
                ADD_FAILURE() << "byte " << r.address + k << " reported read but wrong";
                break;
              }
            }
          }
        }
        EXPECT_GT(failed, 0u);
        EXPECT_GT(faults_now().eio, 0u);
      }(fs, data),
      with(spec(81, {.eio = 0.2, .short_io = 0.3, .delay = 0.2, .reorder = 0.5})));
}

// ---- how far a looping helper got --------------------------------------------------

// write_all_at stopped by an error says how many bytes it wrote: exactly
// that prefix is in the file, nothing beyond it.
TEST(FaultsHelpers, WriteAllAtReportsTheBytesWrittenBeforeAnError) {
  test::temp_dir dir;
  const auto data = pattern(512 * 1024, 11);
  int partial = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const std::string path = dir.file("partial" + std::to_string(seed));
    transfer_result w;
    test::run(
        [](std::string path, const std::vector<std::byte>& data, transfer_result& w) -> task<void> {
          auto fl = co_await file::create(path.c_str());
          CO_ASSERT_OK(fl);
          w = co_await fl->write_all_at(data, 0);
        }(path, data, w),
        with(spec(seed, {.eio = 0.1, .short_io = 0.85})));
    const auto got = file_bytes(path);
    if (w) {
      EXPECT_EQ(w.bytes_done(), data.size());
      EXPECT_TRUE(got == data);
      continue;
    }
    EXPECT_EQ(w.error(), std::errc::io_error);
    EXPECT_EQ(got.size(), w.bytes_done()) << "seed " << seed;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin())) << "seed " << seed;
    partial += w.bytes_done() > 0;
  }
  EXPECT_GT(partial, 0) << "no seed failed midway";
}

// read_exact_at: the bytes it reports are the file's; past the end it fails
// with unexpected_eof and counts what the file had.
TEST(FaultsHelpers, ReadExactAtReportsTheBytesReadBeforeAnError) {
  test::temp_dir dir;
  const std::string path = dir.file("src");
  const auto data = pattern(256 * 1024, 12);
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
    std::fclose(f);
  }
  int partial = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    std::vector<std::byte> got(data.size() + 1000);  // 1000 bytes past the end
    transfer_result r;
    test::run(
        [](std::string path, std::vector<std::byte>& got, transfer_result& r) -> task<void> {
          auto fl = co_await file::open(path.c_str());
          CO_ASSERT_OK(fl);
          r = co_await fl->read_exact_at(got, 0);
        }(path, got, r),
        with(spec(seed, {.eio = 0.1, .short_io = 0.85})));
    ASSERT_FALSE(r);
    EXPECT_LE(r.bytes_done(), data.size());
    EXPECT_TRUE(std::equal(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(r.bytes_done()), data.begin()));
    if (r.error() == errc::unexpected_eof) {
      EXPECT_EQ(r.bytes_done(), data.size()) << "seed " << seed;
    } else {
      EXPECT_EQ(r.error(), std::errc::io_error);
      partial += r.bytes_done() > 0;
    }
  }
  EXPECT_GT(partial, 0) << "no seed failed midway";
}

// send_all stopped by a reset: the peer got exactly bytes_done() bytes, a
// prefix of the buffer.
TEST(FaultsHelpers, SendAllReportsTheBytesSentBeforeAnError) {
  const auto data = pattern(1 << 20, 13);
  int partial = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    std::size_t received = 0;
    transfer_result s;
    test::run(
        [](const std::vector<std::byte>& data, transfer_result& s, std::size_t& received) -> task<void> {
          auto p = net::unix_stream::pair();
          CO_ASSERT_OK(p);
          auto sender = [](net::unix_stream& tx, const std::vector<std::byte>& data) -> task<transfer_result> {
            auto r = co_await tx.send_all(data);
            (void)co_await tx.shutdown();
            co_return r;
          };
          auto h = runtime::current()->spawn(sender(p->first, data));
          std::vector<std::byte> got;
          std::vector<std::byte> buf(65536);
          for (;;) {
            auto r = co_await p->second.recv(buf);
            if (!r) continue;  // an injected error consumed nothing
            if (*r == 0) break;
            got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*r));
          }
          s = co_await h;
          received = got.size();
          EXPECT_EQ(0, std::memcmp(got.data(), data.data(), got.size())) << "not a prefix of what was sent";
        }(data, s, received),
        with(spec(seed, {.econnreset = 0.05, .short_io = 0.5})));
    EXPECT_EQ(received, s.bytes_done()) << "seed " << seed;
    if (s) {
      EXPECT_EQ(s.bytes_done(), data.size());
    } else {
      EXPECT_EQ(s.error(), std::errc::connection_reset);
      partial += s.bytes_done() > 0;
    }
  }
  EXPECT_GT(partial, 0) << "no seed failed midway";
}

// Without faults: a peer that closes after part of the message.
TEST(FaultsHelpers, RecvExactCountsWhatArrivedBeforeThePeerClosed) {
  test::run([]() -> task<void> {
    auto p = net::unix_stream::pair();
    CO_ASSERT_OK(p);
    const auto data = pattern(1000, 14);
    auto w = co_await p->first.send_all(data);
    CO_ASSERT_OK(w);
    EXPECT_EQ(w.bytes_done(), data.size());
    (void)co_await p->first.close();
    std::vector<std::byte> got(4096);
    auto r = co_await p->second.recv_exact(got);
    EXPECT_TRUE(test::fails_with(r, errc::unexpected_eof));
    EXPECT_EQ(r.bytes_done(), data.size());
    EXPECT_TRUE(std::equal(data.begin(), data.end(), got.begin()));
  }());
}

}  // namespace
