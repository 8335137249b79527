// Google Benchmark of qparity::run_seed (both paths and the comparison, no process start-up, no
// report printing) for input heights 1, 16 and 256 (the seed's [1, 3, 256, 256]).
//
//   sh scripts/build.sh -DQPARITY_BUILD_BENCH=ON && build/bench/qparity_seed_bench
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "qparity/profile/backend_profile.h"
#include "qparity/scenario/seed.h"

namespace {

void BM_RunSeed(benchmark::State& state, const std::string& backend) {
  const qparity::CpuFeatures cpu = qparity::detect_cpu_features();
  const int64_t rows = state.range(0);
  for (auto _ : state) {
    qparity::SeedResult r = qparity::run_seed({.k = 1.0, .backend = backend, .rows = rows}, cpu);
    benchmark::DoNotOptimize(r);
  }
  // One "item" is one output element (both paths computed and compared).
  state.SetItemsProcessed(state.iterations() * qparity::kSeedChannels * qparity::kSeedWidth *
                          rows);
  state.counters["bytes_per_row"] =
      static_cast<double>(qparity::seed_bytes_per_row());
}

BENCHMARK_CAPTURE(BM_RunSeed, qnnpack, std::string("qnnpack"))
    ->Arg(1)->Arg(16)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RunSeed, onednn, std::string("onednn"))
    ->Arg(1)->Arg(16)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RunSeed, fbgemm, std::string("fbgemm"))
    ->Arg(256)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
