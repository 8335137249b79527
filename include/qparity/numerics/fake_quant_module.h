// What a QAT fake-quant module does with its buffers (docs/numerics.md §3): which
// scale / zero point a forward uses, and which ones convert() reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "qparity/numerics/qparam_rules.h"
#include "qparity/numerics/quantize.h"

namespace qparity {

enum class FakeQuantModuleKind {
  kFakeQuantize,                   // torch.ao.quantization.FakeQuantize
  kFusedMovingAvgObsFakeQuantize,  // the fused observer + fake-quant module (1.13 QAT default)
  // FakeQuantize with a FixedQParamsObserver: the grid eager QAT gives sigmoid / hardsigmoid
  // outputs (1/256, 0), which the int8 ops also use. Nothing moves it.
  kFixedQParamsFakeQuantize,
};

std::string_view to_string(FakeQuantModuleKind kind);

struct FakeQuantModule {
  FakeQuantModuleKind kind = FakeQuantModuleKind::kFusedMovingAvgObsFakeQuantize;
  QuantSpec spec;
  // The observer's running range (MovingAverageMinMaxObserver min_val / max_val).
  float min_val = 0.0f;
  float max_val = 0.0f;
  // The module's own buffers. Construction sets scale 1.0 and zero point 0.
  float scale_buffer = 1.0f;
  int64_t zero_point_buffer = 0;
  bool observer_enabled = true;
  bool fake_quant_enabled = true;
  // Set when a user wrote scale_buffer by hand; kept to report what became of it.
  std::optional<float> hand_set_scale;
};

// The grid one forward used, and where it came from.
struct UsedQParams {
  QuantGrid grid;
  // Present when a rule computed the values during this forward; absent when the forward
  // used the buffers as they were.
  std::optional<QParamDerivation> derivation;
  std::string provenance;  // one sentence: which buffers / rule, and what happened to hand-set values
};

// Hand-sets the scale buffer, as `module.scale = torch.Tensor([v])` does.
void hand_set_scale(FakeQuantModule& module, double value);

// One forward with the observer disabled (eq. 3.1 / 3.2). FakeQuantize uses its buffers;
// the fused module recomputes scale / zero point from min/max with `fused_rule` and writes
// them into its buffers, even with the observer off.
UsedQParams fake_quant_forward(FakeQuantModule& module, QParamRule fused_rule);

// What convert() uses (eq. 3.3): calculate_qparams(), the Python observer formula on the
// observer's min/max, for both module kinds. The buffers are never read.
UsedQParams convert_qparams(const FakeQuantModule& module);

// calculate_qparams() of an observer with running range [min_val, max_val] (eq. 1.2).
UsedQParams observer_calculate_qparams(float min_val, float max_val, const QuantSpec& spec);

}  // namespace qparity
