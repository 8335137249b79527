// Rules that turn an observed [min, max] into a scale and zero point
// (docs/numerics.md eq. 1.1-1.5 and 2.1-2.8). Each rule is named runtime data: a profile or a
// module picks one, and every result records which rule and branch produced it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "qparity/numerics/dtype.h"

namespace qparity {

enum class QParamRule {
  // torch.ao.quantization observers' calculate_qparams (Python, float32 tensor math), eq. 1.2.
  kPythonObserver,
  // quant_utils::ChooseQuantizationParams, ATen QuantUtils.h (builds without FBGEMM, such as
  // Debian's), called by the fused fake-quant op, eq. 2.1-2.8.
  kAtenChooseQuantizationParams,
  // fbgemm::ChooseQuantizationParams (official x86 wheels): float scale (eq. 2.3), '+' error
  // terms (eq. 2.5).
  kFbgemmChooseQuantizationParams,
};

std::string_view to_string(QParamRule rule);

// What an observer / fake-quant module is configured with.
struct QuantSpec {
  QDType dtype = QDType::kQUInt8;
  QScheme qscheme = QScheme::kPerTensorAffine;
  int64_t quant_min = 0;
  int64_t quant_max = 255;
  // True when quant_min/quant_max were passed explicitly (FakeQuantize always does).
  bool custom_range = true;
  bool reduce_range = false;
  float eps = 1.1920928955078125e-07f;  // torch.finfo(torch.float32).eps
};

// eq. 1.1: the integer range a Python observer computes from a spec.
QRange observer_quant_range(const QuantSpec& spec);

// A derived scale / zero point with the evidence of how it was derived.
struct QParamDerivation {
  QParamRule rule = QParamRule::kPythonObserver;
  float min_val = 0.0f;  // the observed range the rule was given
  float max_val = 0.0f;
  QRange range;          // the integer range it targeted
  double scale_before_float = 0.0;  // the rule's scale before the final float store
  float scale = 1.0f;               // what ends in the float32 buffer
  int64_t zero_point = 0;
  std::string branch;  // which branch of the rule decided, in words
  // Limits the rule applied, as data for the diagnosis (the branch text says the same in words).
  bool raised_to_small_scale_threshold = false;  // eq. 2.4
  bool raised_to_eps = false;                    // eq. 1.4 / 1.5
  bool symmetric_step_skipped = false;           // eq. 2.1 not taken although symmetric
};

// eq. 1.2 (Python observer): scale and zero point from float32 tensor math. Throws
// std::invalid_argument when min > max (PyTorch asserts).
QParamDerivation python_observer_qparams(float min_val, float max_val, const QuantSpec& spec);

// eq. 2.1-2.8 (ATen or FBGEMM ChooseQuantizationParams) as the fused fake-quant op calls
// it: preserve_sparsity = symmetric qscheme, force_pow2 = false, reduce_range = false.
QParamDerivation choose_quantization_params(QParamRule rule, float min_val, float max_val,
                                            QRange range, bool preserve_sparsity);

// Dispatch on the rule with a module's spec.
QParamDerivation derive_qparams(QParamRule rule, float min_val, float max_val,
                                const QuantSpec& spec);

// eq. 1.3: the running update of one bound as the fused op does it (an infinite bound takes
// the current value; the Python observer tests both bounds together instead).
float moving_average_update(float running, float current, float averaging_constant);

}  // namespace qparity
