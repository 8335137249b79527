// The executor: runs one path's graph (the QAT model's fake-quant float ops, or the int8
// model's quantized ops) under a backend profile, keeping every value for comparison.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "qparity/model/graph.h"
#include "qparity/numerics/qparam_rules.h"
#include "qparity/numerics/quantize.h"
#include "qparity/profile/backend_profile.h"
#include "qparity/run/float_kernels.h"
#include "qparity/run/tensor.h"

namespace qparity::run {

struct RunOptions {
  const BackendProfile* profile = nullptr;  // required
  FloatKernels* float_kernels = nullptr;    // nullptr: qparity's reference kernels
  // The framework's intra-op thread count being emulated: ATen cuts elementwise ops into one
  // chunk per thread, each with its own vector blocks and scalar tail (docs/numerics.md eq. 6.9).
  int framework_threads = 1;
};

// What one fake-quant node did in this run: the grid it used for each channel (one entry per
// tensor), how the rule derived it, and whether its observer moved the running range.
struct FakeQuantUse {
  size_t node = 0;
  int32_t point = 0;
  std::vector<QuantGrid> grids;                // per channel, or one
  std::vector<QParamDerivation> derivations;   // empty when the buffers were used as they were
  bool observer_moved = false;                 // min/max changed during this forward
  bool fake_quant_enabled = true;
  std::string provenance;                      // one sentence
};

struct RunResult {
  std::vector<Tensor> values;  // by ValueId; constants are not copied (empty)
  std::vector<FakeQuantUse> fake_quant_uses;  // in node order
  std::vector<model::FakeQuantPoint> final_points;  // the fake-quant states after the run
};

// Runs `graph` on `input`. Throws std::invalid_argument when the input does not fit the graph
// and std::runtime_error naming the node when an op cannot run as the framework would (e.g.
// the engine refuses a requantization scale).
RunResult run_graph(const model::Graph& graph, const Tensor& input, const RunOptions& options);

}  // namespace qparity::run
