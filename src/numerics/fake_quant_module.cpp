#include "qparity/numerics/fake_quant_module.h"

#include <stdexcept>

#include "common/format.h"
#include "qparity/numerics/float32.h"

namespace qparity {
std::string_view to_string(FakeQuantModuleKind kind) {
  switch (kind) {
    case FakeQuantModuleKind::kFakeQuantize:
      return "FakeQuantize";
    case FakeQuantModuleKind::kFusedMovingAvgObsFakeQuantize:
      return "FusedMovingAvgObsFakeQuantize";
    case FakeQuantModuleKind::kFixedQParamsFakeQuantize:
      return "FixedQParamsFakeQuantize";
  }
  return "?";
}

void hand_set_scale(FakeQuantModule& module, double value) {
  module.scale_buffer = to_f32(value);
  module.hand_set_scale = module.scale_buffer;
}

UsedQParams fake_quant_forward(FakeQuantModule& module, QParamRule fused_rule) {
  if (module.observer_enabled) {
    throw std::logic_error("fake_quant_forward: observer updates need the data; disable observers");
  }
  const QRange range = observer_quant_range(module.spec);
  UsedQParams used;
  if (module.kind != FakeQuantModuleKind::kFusedMovingAvgObsFakeQuantize) {
    used.grid = {module.scale_buffer, module.zero_point_buffer, range};
    used.provenance = std::string(to_string(module.kind)) +
                      " with observer off: the scale/zero_point buffers as they were";
    if (module.hand_set_scale) used.provenance += " (scale hand-set, honoured)";
    return used;
  }
  // eq. 3.2: the fused op recomputes from min/max and overwrites the buffers.
  QParamDerivation d = derive_qparams(fused_rule, module.min_val, module.max_val, module.spec);
  used.provenance = "FusedMovingAvgObsFakeQuantize: recomputed every forward by C++ " +
                    std::string(to_string(fused_rule)) + " from min/max, written into the buffers";
  if (module.hand_set_scale && *module.hand_set_scale != d.scale) {
    used.provenance += "; the hand-set scale " + detail::g9(static_cast<double>(*module.hand_set_scale)) +
                       " was overwritten with " + detail::g9(static_cast<double>(d.scale));
  }
  module.scale_buffer = d.scale;
  module.zero_point_buffer = d.zero_point;
  used.grid = {d.scale, d.zero_point, range};
  used.derivation = std::move(d);
  return used;
}

UsedQParams convert_qparams(const FakeQuantModule& module) {
  return observer_calculate_qparams(module.min_val, module.max_val, module.spec);
}

UsedQParams observer_calculate_qparams(float min_val, float max_val, const QuantSpec& spec) {
  QParamDerivation d = python_observer_qparams(min_val, max_val, spec);
  UsedQParams used;
  used.grid = {d.scale, d.zero_point, observer_quant_range(spec)};
  used.provenance = "convert(): calculate_qparams(), the Python observer formula on min/max; "
                    "the module's buffers are not read";
  used.derivation = std::move(d);
  return used;
}

}  // namespace qparity
