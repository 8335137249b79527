// Per-layer comparison of the two paths of a model (fake-quant against int8), and the check of
// each path against the values the real framework computed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qparity/model/graph.h"
#include "qparity/numerics/quantize.h"
#include "qparity/run/executor.h"

namespace qparity::diff {

// The first element whose bins differ: where it is, and what each path gave.
struct LayerMismatch {
  int64_t index = 0;  // flat (row-major) index into the layer's output
  int64_t fake_quant_bin = 0, int8_bin = 0;
  float fake_quant_value = 0.0f, int8_value = 0.0f;  // the values the bins come from
};

struct LayerComparison {
  std::string name;
  std::string op;  // the int8 layer's last op, e.g. "quantized::conv2d"
  model::Dims dims;
  // The values compared: the fake-quant layer's output in the QAT graph, the int8 layer's.
  model::ValueId fake_quant_value = model::kNoValue, int8_value = model::kNoValue;
  bool has_fake_quant_counterpart = true;
  // The grid the fake-quant values are binned on: the layer's own output fake-quant, or (when
  // QAT leaves the output unquantized) the int8 grid.
  QuantGrid fake_quant_grid;
  bool fake_quant_grid_is_own = true;
  std::string fake_quant_provenance;
  QuantGrid int8_grid;
  bool int8_quantized = true;  // false for float outputs (dequantize)
  bool same_grid = true;
  int64_t numel = 0;
  int64_t bin_mismatch_count = 0;
  int64_t max_abs_dq = 0;
  std::map<int64_t, int64_t> dq_histogram;  // Δq = int8 bin - fake-quant bin → count (Δq ≠ 0)
  double sqnr_db = 0.0;                     // +inf when the values are equal
  double max_abs_error = 0.0;
  double rmse_over_scale = 0.0;  // RMSE of the values in units of the int8 scale (TFLite's figure)
  double cosine = 1.0;
  std::optional<LayerMismatch> first_mismatch;
  // QAT output bins of this layer that its float kernels' summation order decides (see
  // order_sensitive_bins); absent when not measured or the layer has no order-dependent op.
  std::optional<int64_t> order_sensitive_bins;
};

// Bins both values of one layer as `like` does (its grids, its shape) and measures them again:
// counts, Δq histogram, SQNR and the rest, for other values of the same layer (a re-run).
LayerComparison compare_layer_values(const LayerComparison& like, const run::Tensor& fake_quant,
                                     const run::Tensor& int8);

// Δq = int8 bin - fake-quant bin of every element, binned as `like` does.
std::vector<int32_t> layer_dq(const LayerComparison& like, const run::Tensor& fake_quant, const run::Tensor& int8);

// How far the two paths' final outputs are apart.
struct OutputAgreement {
  double sqnr_db = 0.0;  // +inf when equal
  double max_abs_difference = 0.0;
  int64_t top1_rows = 0;  // rows of the last dimension
  int64_t top1_agreeing = 0;
};
OutputAgreement output_agreement(const run::Tensor& fake_quant, const run::Tensor& int8);

struct ModelComparison {
  std::vector<LayerComparison> layers;  // int8 execution order
  std::optional<size_t> first_divergent;
  std::optional<size_t> worst;  // most bins differing (share), then max |Δq|
  model::Dims output_dims;
  double output_max_abs_difference = 0.0;
  int64_t top1_rows = 0;
  int64_t top1_agreeing = 0;
};

// Lines the two graphs up by layer name and compares every int8 layer's output with its
// fake-quant counterpart. Throws std::invalid_argument when the models do not correspond (a
// quantized int8 layer with no QAT layer of the same name, or different shapes).
ModelComparison compare_paths(const model::Graph& fake_quant, const run::RunResult& fake_quant_run,
                              const model::Graph& int8, const run::RunResult& int8_run);

// The QAT bins that summation order decides: every QAT layer that ends in a fake-quant and has a
// float op whose result depends on the kernel's summation order (conv, linear, batch norm,
// average pools, mean) is re-run on the inputs `run` gave it, under `alternative` (other float
// kernels, e.g. qparity's sequential reference instead of the framework's), and the output
// elements whose bins change are counted. Keyed by layer name.
std::map<std::string, int64_t> order_sensitive_bins(const model::Graph& qat, const run::RunResult& run,
                                                    const run::RunOptions& alternative);

// Emulated against real, per layer of one path.
struct ReferenceLayer {
  std::string name;
  int64_t values_checked = 0;   // IR values of the layer with a reference
  int64_t elements = 0;
  int64_t elements_differing = 0;  // not bit-identical (floats), or other bins / qparams (int8)
  std::string first_difference;    // one sentence, empty when exact
};

struct ReferenceCheck {
  std::vector<ReferenceLayer> layers;
  int64_t elements = 0;
  int64_t elements_differing = 0;
  bool output_exact = true;  // the emulated output equals the real forward's output
};

ReferenceCheck check_reference(const model::Graph& graph, const run::RunResult& run,
                               const std::vector<std::optional<run::Tensor>>& reference,
                               const run::Tensor& real_output);

}  // namespace qparity::diff
