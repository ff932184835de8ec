// coil-micro: Google Benchmark driver. The runtime is created before any
// benchmark runs and lives until the end, on the thread that runs them.
#include <cstdio>
#include <memory>

#include "micro.hpp"

namespace coil_micro {
namespace {
coil::runtime* g_runtime = nullptr;
}

coil::runtime& rt() noexcept { return *g_runtime; }

}  // namespace coil_micro

int main(int argc, char** argv) {
  auto created = coil::runtime::create();
  if (!created) {
    std::fprintf(stderr, "coil-micro: runtime::create: %s\n", created.error().message().c_str());
    return 1;
  }
  std::unique_ptr<coil::runtime> runtime = std::move(*created);
  coil_micro::g_runtime = runtime.get();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
