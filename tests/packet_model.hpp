#pragma once
// A reference model of mapped-over-striped space trees, byte by byte: where
// each virtual byte lives, or which error reading it gives. Shared by the
// randomized tests (test_packet*.cpp) and the libFuzzer target (fuzz/), so it
// uses no test framework. Deliberately naive: one loop per byte, no splitting.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "coil/fs/file.hpp"
#include "coil/packet/space.hpp"
#include "coil/rt/time.hpp"

namespace coil::packet::model {

// Fails every byte of [lo, hi) with err and forwards the rest to `below`:
// an injected fault in one backend.
class faulty_space final : public space {
 public:
  faulty_space(space& below, uint64_t lo, uint64_t hi, std::error_code err) noexcept
      : below_(below), lo_(lo), hi_(hi), err_(err) {}
  void submit(view v) noexcept override {
    while (v.live()) {
      const uint64_t a = v.address();
      const bool bad = a >= lo_ && a < hi_;
      const uint64_t boundary = bad ? hi_ : (a < lo_ ? lo_ : ~uint64_t{0});
      view piece = boundary < v.end_address() ? v.take_front(boundary - a) : std::move(v);
      if (bad) {
        piece.fail(err_);
      } else {
        below_.submit(std::move(piece));
      }
    }
  }

 private:
  space& below_;
  uint64_t lo_, hi_;
  std::error_code err_;
};

struct region {
  uint64_t v, len, t;  // virtual start, length, address in the striped space
};

// Disk `disk` fails its addresses [lo, hi) with error (a faulty_space over
// it, or a kernel error for the whole file).
struct fault {
  std::size_t disk = 0;
  uint64_t lo = 0, hi = 0;
  std::error_code error;
};

// mapped (regions) -> striped (stripe, one backend per disk) -> disks.
struct tree {
  uint64_t stripe = 1;
  std::vector<std::vector<std::byte>> disks;  // sizes may differ
  std::vector<fault> faults;                  // at most one per disk
  std::error_code past_end = make_error_code(errc::unmapped);  // memory; files say unexpected_eof
  std::vector<region> regions;                // disjoint (map() refuses overlaps)

  // Where virtual byte x lives: {disk, offset}, or the error reading it gives.
  struct place {
    std::error_code error;
    std::size_t disk = 0;
    uint64_t offset = 0;
  };
  place locate(uint64_t x) const {
    for (const region& r : regions) {
      if (x < r.v || x - r.v >= r.len) continue;
      const uint64_t a = r.t + (x - r.v), s = a / stripe, n = disks.size();
      const place p{{}, static_cast<std::size_t>(s % n), (s / n) * stripe + a % stripe};
      for (const fault& f : faults) {
        if (f.disk == p.disk && p.offset >= f.lo && p.offset < f.hi) return {f.error};
      }
      if (p.offset >= disks[p.disk].size()) return {past_end};
      return p;
    }
    return {make_error_code(errc::unmapped)};
  }

  bool overlaps(uint64_t v, uint64_t len) const {
    for (const region& r : regions) {
      if (v < r.v + r.len && r.v < v + len) return true;
    }
    return false;
  }
};

// The outcome a read (or write) of [address, address+len) must report:
// failed ranges sorted and merged as outcome does, and their byte count.
struct expected_outcome {
  std::vector<failed_range> failures;  // all of them (outcome keeps the first max_failures)
  uint64_t failed_bytes = 0;
};

inline expected_outcome expect(const tree& t, uint64_t address, uint64_t len) {
  expected_outcome want;
  for (uint64_t i = 0; i < len; ++i) {
    const std::error_code e = t.locate(address + i).error;
    if (!e) continue;
    ++want.failed_bytes;
    if (!want.failures.empty() && want.failures.back().range.end() == i && want.failures.back().error == e) {
      ++want.failures.back().range.len;
    } else {
      want.failures.push_back({{i, 1}, e});
    }
  }
  return want;
}

// The first difference between o and want, or "" if they agree. When the
// outcome ran out of room it must still describe [0, known_until()) exactly.
inline const char* compare(const outcome& o, const expected_outcome& want) {
  if (o.failed_bytes() != want.failed_bytes) return "failed byte count";
  if (want.failures.size() > outcome::max_failures && !o.truncated()) return "truncated flag";
  if (o.ok_prefix() != (want.failures.empty() ? o.size() : want.failures[0].range.offset)) return "ok_prefix";
  const uint64_t known = o.known_until();
  std::size_t n = 0;
  for (const failed_range& f : want.failures) {
    if (f.range.offset >= known) break;
    failed_range clipped = f;
    clipped.range.len = std::min(f.range.end(), known) - f.range.offset;
    if (n >= o.failures().size() || !(o.failures()[n] == clipped)) return "a failed range or its error";
    ++n;
  }
  if (n != o.failures().size()) return "number of failed ranges";
  return "";
}

// A file holding bytes, reopened with flags; a closed file if anything failed
// (its reads then fail with EBADF, which the tests notice).
inline coil::file make_file(const std::string& path, const std::vector<std::byte>& bytes, int flags = O_RDWR) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return {};
  const bool written = ::pwrite(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size());
  ::close(fd);
  return written ? coil::file(unique_fd(::open(path.c_str(), flags | O_CLOEXEC))) : coil::file{};
}

inline std::error_code ec(errc e) { return make_error_code(e); }

// n bytes of a repeating pattern that differs with seed.
inline std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 37 + seed * 101 + i / 253) & 0xff);
  return v;
}

// A packet started by hand (start(space)), without an awaiting task.
struct bare_packet : packet_state {
  using packet_state::packet_state;
};

// One read of a batch that read_concurrently starts.
struct request {
  uint64_t address;
  std::vector<std::byte> buf;
  outcome result;
};

// Starts every request as its own task in the same loop turn (so a batching
// space sees them together) and waits for all.
inline task<void> read_concurrently(space& s, std::vector<request>& reqs) {
  std::vector<join_handle<void>> hs;
  for (auto& r : reqs) {
    hs.push_back(runtime::current()->spawn([](space& s, request& r) -> task<void> {
      r.result = co_await read(s, r.address, r.buf);
    }(s, r)));
  }
  for (auto& h : hs) co_await h;
}

// Spawns 8 readers of s (4 KiB each, at i * 4096, into buffers in their own
// frames) on a fresh runtime, lets the loop run `turns` turns, then destroys
// the runtime and so every reader frame still suspended mid-packet. Returns
// how many readers finished before that.
inline int cut_off_readers(space& s, int turns) {
  auto rt = runtime::create();
  if (!rt) return -1;
  int finished = 0;
  (*rt)->block_on([](space& s, int turns, int& finished) -> task<void> {
    for (uint64_t i = 0; i < 8; ++i) {
      runtime::current()->spawn([](space& s, uint64_t i, int& finished) -> task<void> {
        std::byte buf[4096];  // in the frame that is destroyed
        outcome o = co_await read(s, i * 4096, buf);
        (void)o;
        ++finished;
      }(s, i, finished)).detach();
    }
    for (int i = 0; i < turns; ++i) co_await yield();
  }(s, turns, finished));
  rt->reset();  // destroys the readers' frames mid-packet
  return finished;
}

}  // namespace coil::packet::model
