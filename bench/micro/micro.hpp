#pragma once
// Shared by the coil-micro benchmarks: one runtime for the whole process
// (a thread owns at most one), and a way to run a coroutine benchmark body.
//
// Bodies are coroutines that contain the `for (auto _ : state)` loop
// themselves, so Google Benchmark times the coroutine code in steady state
// rather than the cost of entering and leaving block_on.
//
// Never write `if (!co_await x)`: g++ 12.2 miscompiled that form here (the
// coroutine's ramp and resume function disagreed on the frame layout: SIGILL
// on the first resume; clang 14 was fine). Bind the result to a variable first.
#include <benchmark/benchmark.h>

#include "coil/rt/runtime.hpp"
#include "coil/rt/task.hpp"

namespace coil_micro {

coil::runtime& rt() noexcept;

inline void run(coil::task<void> body) { rt().block_on(std::move(body)); }

}  // namespace coil_micro
