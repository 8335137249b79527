// Eager convert() emulated on the IR: the int8 graph PyTorch 1.13.1's
// torch.ao.quantization.convert would make of a QAT graph (docs/model.md "One-file form"):
// BN folded into conv weights and bias, weights quantized with the weight fake-quant's
// observer (calculate_qparams, the Python rule, after one more observer update when it is
// enabled), output grids from each activation fake-quant's observer, and the memory layouts the
// int8 ops give their outputs.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qparity/model/graph.h"
#include "qparity/profile/backend_profile.h"

namespace qparity::model {

// Throws std::invalid_argument naming the layer when a QAT layer has no int8 counterpart qparity
// knows (e.g. a conv without its convert source).
Graph convert_eager(const Graph& qat, const BackendProfile& profile);

// quantize_per_tensor / quantize_per_channel (along axis 0) of a float weight onto `grids` (one,
// or one per output channel), as convert() quantizes a module's weight (eq. 5.1; bins clamped to
// each grid's range); the scales are stored as the doubles a quantized tensor holds.
QuantizedWeight quantize_weight(const ConstantTensor& weight, bool per_channel, std::span<const QuantGrid> grids,
                                std::vector<float> bias);

// The float weight and bias convert() quantizes for conv / linear layer `layer` of a QAT graph:
// the module's own, with its BN folded in (eq. O8.1). nullopt when the graph has no convert
// source for the layer (FX models, float layers).
struct ConvertFloat {
  ConstantTensor weight;
  std::vector<float> bias;  // empty = none
};
std::optional<ConvertFloat> convert_float(const Graph& qat, const std::string& layer);

// Sets every value's channels_last as the int8 ops of `profile`'s engine lay their outputs out.
void infer_int8_layouts(Graph& int8, const BackendProfile& profile);

// Differences between qparity's convert and the real int8 model, one sentence each, matched by
// layer name: weights (bits), scales and zero points, bias (float bits), output grids, op kinds
// and memory layouts. Empty when they agree to the bit.
std::vector<std::string> compare_converted(const Graph& derived, const Graph& real);

}  // namespace qparity::model
