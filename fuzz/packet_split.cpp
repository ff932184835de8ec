// libFuzzer target for the packet layer's split logic: random mapped (map,
// unmap, overlaps refused) over striped over memory spaces, one backend with
// an injected fault, random reads and writes. Every outcome (failed ranges,
// errors, counts) and every byte read or written is checked against the
// naive per-byte model of tests/packet_model.hpp; any difference traps.
// Built only with clang (-fsanitize=fuzzer); ctest runs it for a bounded time.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "packet_model.hpp"

namespace {

using namespace coil;
using namespace coil::packet;

[[noreturn]] void mismatch(const char* what, uint64_t address, uint64_t len) {
  std::fprintf(stderr, "packet_split: %s differs from the model (request at %llu, %llu bytes)\n", what,
               static_cast<unsigned long long>(address), static_cast<unsigned long long>(len));
  std::abort();
}

// A packet on spaces that complete inline: no runtime involved.
struct inline_packet : packet_state {
  using packet_state::packet_state;
};

outcome run(space& s, direction d, std::byte* buf, uint64_t address, uint64_t len) {
  inline_packet p(d, buf, address, len);
  if (!p.start(s)) mismatch("an inline packet left pending", address, len);
  return p.result();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  model::tree t;
  t.stripe = in.ConsumeIntegralInRange<uint64_t>(1, 64);
  const auto n = in.ConsumeIntegralInRange<std::size_t>(1, 5);
  for (std::size_t d = 0; d < n; ++d) {
    t.disks.emplace_back(in.ConsumeIntegralInRange<std::size_t>(0, 300));
    for (std::size_t i = 0; i < t.disks[d].size(); ++i) t.disks[d][i] = static_cast<std::byte>(i * 7 + d);
  }
  std::vector<memory_space> mems;
  mems.reserve(n);
  for (auto& d : t.disks) mems.emplace_back(d);
  std::vector<space*> backends;
  for (auto& m : mems) backends.push_back(&m);
  const auto bad = in.ConsumeIntegralInRange<std::size_t>(0, n - 1);
  const auto lo = in.ConsumeIntegralInRange<uint64_t>(0, 300);
  t.faults.push_back({bad, lo, lo + in.ConsumeIntegralInRange<uint64_t>(0, 64), make_error_code(std::errc::io_error)});
  model::faulty_space faulty(mems[bad], t.faults[0].lo, t.faults[0].hi, t.faults[0].error);
  backends[bad] = &faulty;
  striped_space striped(backends, t.stripe);
  mapped_space mapped;

  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0: {  // map, near the top of the address space now and then
        uint64_t v = in.ConsumeIntegralInRange<uint64_t>(0, 1200);
        if (in.ConsumeIntegralInRange<int>(0, 15) == 0) v = ~uint64_t{0} - v;
        const auto len = in.ConsumeIntegralInRange<uint64_t>(0, 400);
        const auto target = in.ConsumeIntegralInRange<uint64_t>(0, 1600);
        const bool want = len > 0 && v + len > v && !t.overlaps(v, len);
        if (mapped.map(v, len, striped, target).has_value() != want) mismatch("map's verdict", v, len);
        if (want) t.regions.push_back({v, len, target});
        break;
      }
      case 1: {  // unmap an existing region or a random address
        uint64_t v = in.ConsumeIntegralInRange<uint64_t>(0, 1200);
        if (!t.regions.empty() && in.ConsumeBool()) v = t.regions[v % t.regions.size()].v;
        const auto it = std::find_if(t.regions.begin(), t.regions.end(), [&](const model::region& r) { return r.v == v; });
        if (mapped.unmap(v).has_value() != (it != t.regions.end())) mismatch("unmap's verdict", v, 0);
        if (it != t.regions.end()) t.regions.erase(it);
        break;
      }
      case 2: {  // read
        const auto addr = in.ConsumeIntegralInRange<uint64_t>(0, 1600);
        const auto len = in.ConsumeIntegralInRange<uint64_t>(0, 500);
        std::vector<std::byte> buf(len, std::byte{0xee});
        const outcome o = run(mapped, direction::read, buf.data(), addr, len);
        if (const char* diff = model::compare(o, model::expect(t, addr, len)); *diff != '\0') mismatch(diff, addr, len);
        for (uint64_t i = 0; i < len; ++i) {
          const auto p = t.locate(addr + i);
          if (buf[i] != (p.error ? std::byte{0xee} : t.disks[p.disk][p.offset])) mismatch("a byte read", addr, len);
        }
        break;
      }
      default: {  // write; bytes of one packet land in address order, as the model applies them
        const auto addr = in.ConsumeIntegralInRange<uint64_t>(0, 1600);
        const auto len = in.ConsumeIntegralInRange<uint64_t>(0, 500);
        const auto fill = in.ConsumeIntegral<uint8_t>();
        std::vector<std::byte> src(len);
        for (uint64_t i = 0; i < len; ++i) src[i] = static_cast<std::byte>(fill + i);
        const auto want = model::expect(t, addr, len);
        auto disks = t.disks;  // what the memory spaces (over t.disks) must hold afterwards
        for (uint64_t i = 0; i < len; ++i) {
          const auto p = t.locate(addr + i);
          if (!p.error) disks[p.disk][p.offset] = src[i];
        }
        const outcome o = run(mapped, direction::write, src.data(), addr, len);
        if (const char* diff = model::compare(o, want); *diff != '\0') mismatch(diff, addr, len);
        if (disks != t.disks) mismatch("the disks after a write", addr, len);
        break;
      }
    }
  }
  return 0;
}
