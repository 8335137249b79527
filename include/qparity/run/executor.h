// The executor: runs one path's graph (the QAT model's fake-quant float ops, or the int8
// model's quantized ops) under a backend profile, keeping every value for comparison.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "qparity/model/graph.h"
#include "qparity/numerics/qparam_rules.h"
#include "qparity/numerics/quantize.h"
#include "qparity/profile/backend_profile.h"
#include "qparity/run/float_kernels.h"
#include "qparity/run/quantized_kernels.h"
#include "qparity/run/tensor.h"

namespace qparity::run {

struct RunOptions {
  const BackendProfile* profile = nullptr;  // required
  FloatKernels* float_kernels = nullptr;    // nullptr: qparity's reference kernels
  // The framework's intra-op thread count being emulated: ATen cuts elementwise ops into one
  // chunk per thread, each with its own vector blocks and scalar tail (docs/numerics.md eq. 6.9).
  int framework_threads = 1;
  // Also keep the bins of per-tensor fake-quant outputs whose range lies in [0, 255] (in the
  // output Tensor's `bins`, next to its float values), for callers that compare bins.
  bool fake_quant_bins = false;
  // The framework's own int8 conv / linear instead of qparity's (an oracle for checks; never set
  // for the emulation). An op it declines runs on qparity's kernels and is counted in the
  // oracle's own bookkeeping.
  QuantizedKernels* quantized_kernels = nullptr;
};

// What one fake-quant node did in this run: the qparams it used for each channel (one entry per
// tensor) with how they were derived, and whether its observer moved the running range.
struct FakeQuantUse {
  size_t node = 0;
  int32_t point = 0;
  std::vector<UsedQParams> channels;
  bool observer_moved = false;  // min/max changed during this forward
  bool fake_quant_enabled = true;
  std::string provenance;       // one sentence
};

// The qparams a fake-quant point uses in a forward once its observer has run (eq. 3.1 / 3.2): a
// fused module recomputes them from the running range with `fused_rule` and writes them into its
// buffers; the other kinds use their buffers. One entry per channel. The fake-quant op of
// run_graph calls it; callers use it to know a point's grid without running the graph.
std::vector<UsedQParams> fake_quant_qparams(model::FakeQuantPoint& point, QParamRule fused_rule);

struct RunResult {
  std::vector<Tensor> values;  // by ValueId; constants are not copied (empty)
  std::vector<FakeQuantUse> fake_quant_uses;  // in node order
  std::vector<model::FakeQuantPoint> final_points;  // the fake-quant states after the run
};

// An op that cannot run as the framework would run it (e.g. the engine refuses a weight zero
// point or a requantization scale): what() names the layer and op, reason() is the op's message.
class OpRefused : public std::runtime_error {
 public:
  OpRefused(const model::Node& node, const std::string& reason);
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

// Runs `graph` on `input`. Throws std::invalid_argument when the input does not fit the graph
// and OpRefused naming the node when an op cannot run as the framework would.
RunResult run_graph(const model::Graph& graph, Tensor input, const RunOptions& options);

// Storage a caller reuses across runs of one graph (e.g. one run per block of input rows):
// run_graph with a workspace leaves its result here and computes the next run into the same
// tensors, so that a tensor of the same size as last time costs no allocation and no zero fill.
// Results are identical with or without one (tests/unit/executor_workspace_test.cpp). Not
// shared between threads: one workspace per caller thread.
struct RunWorkspace {
  RunResult result;                   // the last run's, valid until the next run
  std::vector<int32_t> accumulators;  // int8 conv scratch
};

// run_graph into `workspace`: returns workspace.result.
const RunResult& run_graph(const model::Graph& graph, Tensor input, const RunOptions& options,
                           RunWorkspace& workspace);

// A local re-run: runs `nodes` (indices into graph.nodes, in order, e.g. one layer's) again under
// `options`, reading every input they do not compute themselves from `base` (a run of the same
// graph), and returns the last node's output. Fake-quant points start from the graph's state.
Tensor rerun_nodes(const model::Graph& graph, const RunResult& base, const std::vector<size_t>& nodes,
                   const RunOptions& options);

}  // namespace qparity::run
