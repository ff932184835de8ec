#pragma once
// The random offsets of coil-bench, in a header of its own so the peer
// programs (bench/peers/, which do not use coil) read the same sequence.
#include <cstdint>

namespace coil_bench {

// splitmix64: cheap, decent quality, and per-task state (no shared RNG).
struct rng {
  uint64_t state;
  explicit rng(uint64_t seed) noexcept : state(seed) {}
  uint64_t next() noexcept {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) without division (Lemire's multiply-shift).
  uint64_t below(uint64_t n) noexcept {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
};

}  // namespace coil_bench
