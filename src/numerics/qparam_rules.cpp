#include "qparity/numerics/qparam_rules.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

#include "common/format.h"
#include "qparity/numerics/float32.h"

namespace qparity {
namespace {

// SMALL_SCALE_THRESHOLD of both C++ rules (eq. 2.4).
constexpr float kSmallScaleThreshold = 6.1e-5f;

std::string describe_range(QRange r) {
  // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "[" + std::to_string(...).
  std::string s(1, '[');
  s.append(std::to_string(r.min)).append(", ").append(std::to_string(r.max)).append("]");
  return s;
}

// static_cast<int32_t>(float) as x86 executes it (cvttss2si / cvttps2dq): truncation toward
// zero, INT32_MIN for NaN and out-of-range values (a plain cast would be undefined behaviour).
int32_t convert_to_int32_truncating_x86(float v) {
  if (std::isnan(v) || v >= 2147483648.0f || v < -2147483648.0f) {
    return std::numeric_limits<int32_t>::min();
  }
  return static_cast<int32_t>(v);
}

// The same for a double (cvttsd2si), as `int32_t nudged_zero_point = nearbyint(double)` executes.
int32_t convert_to_int32_truncating_x86(double v) {
  if (std::isnan(v) || v >= 2147483648.0 || v < -2147483648.0) {
    return std::numeric_limits<int32_t>::min();
  }
  return static_cast<int32_t>(v);
}

// Python floor division, which calculate_qmin_qmax uses for reduce_range.
int64_t floor_div2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

}  // namespace

std::string_view to_string(QParamRule rule) {
  switch (rule) {
    case QParamRule::kPythonObserver:
      return "python-observer";
    case QParamRule::kAtenChooseQuantizationParams:
      return "aten-choose-qparams";
    case QParamRule::kFbgemmChooseQuantizationParams:
      return "fbgemm-choose-qparams";
  }
  return "?";
}

QRange observer_quant_range(const QuantSpec& spec) {
  if (spec.custom_range) {
    if (spec.reduce_range) return {floor_div2(spec.quant_min), floor_div2(spec.quant_max)};
    return {spec.quant_min, spec.quant_max};
  }
  switch (spec.dtype) {
    case QDType::kQInt8:
      return spec.reduce_range ? QRange{-64, 63} : QRange{-128, 127};
    case QDType::kQUInt8:
      return spec.reduce_range ? QRange{0, 127} : QRange{0, 255};
    case QDType::kQInt32:
      return storage_range(QDType::kQInt32);
  }
  return {0, 0};
}

float moving_average_update(float running, float current, float averaging_constant) {
  if (std::isinf(running)) return current;
  const float step = averaging_constant * (current - running);
  return running + step;
}

QParamDerivation python_observer_qparams(float min_val, float max_val, const QuantSpec& spec) {
  QParamDerivation d;
  d.rule = QParamRule::kPythonObserver;
  d.min_val = min_val;
  d.max_val = max_val;
  d.range = observer_quant_range(spec);
  const auto qmin = d.range.min;
  const auto qmax = d.range.max;

  // check_min_max_valid: an observer that never saw data (min +inf AND max -inf, its initial
  // buffers) returns (1.0, 0). Any other infinite bound goes through the formula below, as in
  // PyTorch (e.g. min -inf gives scale inf).
  if (min_val == std::numeric_limits<float>::infinity() &&
      max_val == -std::numeric_limits<float>::infinity()) {
    d.scale = 1.0f;
    d.scale_before_float = 1.0;
    d.zero_point = 0;
    d.branch = "min/max not observed (infinite): default scale 1.0, zero point 0";
    return d;
  }
  if (!(min_val <= max_val)) {
    throw std::invalid_argument("calculate_qparams: min " + detail::g9(min_val) +
                                " should be less than max " + detail::g9(max_val));
  }
  const float min_neg = std::min(min_val, 0.0f);
  const float max_pos = std::max(max_val, 0.0f);

  if (is_symmetric(spec.qscheme)) {
    // eq. 1.4: scale = f(max(-min_neg, max_pos) / f((qmax - qmin) / 2)), floored at eps.
    const float m = std::max(-min_neg, max_pos);
    const auto half_range = static_cast<float>(static_cast<double>(qmax - qmin) / 2.0);
    const float raw = m / half_range;
    d.scale_before_float = static_cast<double>(raw);
    d.scale = std::max(raw, spec.eps);
    d.raised_to_eps = raw < spec.eps;
    if (spec.dtype == QDType::kQUInt8) {
      d.zero_point = spec.custom_range ? (qmin + qmax) / 2 : 128;
    } else {
      d.zero_point = 0;
    }
    d.branch = "symmetric: max(|min|, |max|) / " + detail::g9(static_cast<double>(qmax - qmin) / 2.0) +
               " over " + describe_range(d.range) +
               (raw < spec.eps ? ", raised to eps" : "") +
               (spec.dtype == QDType::kQUInt8 ? ", quint8 midpoint zero point" : ", zero point 0");
    return d;
  }

  // eq. 1.5: scale = f(f(max_pos - min_neg) / f(qmax - qmin)), floored at eps;
  //          zp = clamp(qmin - RNE(f(min_neg / scale)), qmin, qmax).
  const float span = max_pos - min_neg;
  const float raw = span / static_cast<float>(qmax - qmin);
  d.scale_before_float = static_cast<double>(raw);
  d.scale = std::max(raw, spec.eps);
  d.raised_to_eps = raw < spec.eps;
  // torch.round(...).to(torch.int) converts as x86 does (NaN and out-of-range give INT32_MIN),
  // and quant_min - that int32 tensor wraps in int32 before the clamp; both matter only for
  // degenerate scales (0 with eps = 0, or inf) but are kept exact.
  const float ratio = min_neg / d.scale;
  const int32_t rounded = convert_to_int32_truncating_x86(round_half_even(ratio));
  const auto difference = static_cast<int32_t>(static_cast<uint32_t>(static_cast<int32_t>(qmin)) -
                                               static_cast<uint32_t>(rounded));
  d.zero_point = std::clamp(static_cast<int64_t>(difference), qmin, qmax);
  d.branch = "affine: (max - min) / " + std::to_string(qmax - qmin) + " over " +
             describe_range(d.range) + (raw < spec.eps ? ", raised to eps" : "") +
             ", zero point qmin - round(min / scale)";
  return d;
}

QParamDerivation choose_quantization_params(QParamRule rule, float min_val, float max_val,
                                            QRange range, bool preserve_sparsity) {
  const bool fbgemm = rule == QParamRule::kFbgemmChooseQuantizationParams;
  QParamDerivation d;
  d.rule = rule;
  d.min_val = min_val;
  d.max_val = max_val;
  d.range = range;
  if (!(min_val <= max_val)) {
    throw std::invalid_argument("ChooseQuantizationParams: min should be less than or equal to max");
  }
  const auto qmin = static_cast<int32_t>(range.min);
  const auto qmax = static_cast<int32_t>(range.max);
  float min = min_val;
  float max = max_val;
  std::string branch;

  // eq. 2.1: the symmetric pre-step runs only for a range that straddles zero.
  const bool straddles = min < 0 && max > 0 && preserve_sparsity;
  if (straddles) {
    const int sym_qmin = -((qmax - qmin) / 2 + 1);
    const int sym_qmax = (qmax - qmin) / 2;
    const double max_scale = std::max(std::fabs(min / static_cast<float>(sym_qmin)),
                                      std::fabs(max / static_cast<float>(sym_qmax)));
    min = static_cast<float>(max_scale * sym_qmin);
    max = static_cast<float>(max_scale * sym_qmax);
    branch = "symmetric pre-step (min < 0 < max): range widened to max(|min|/" +
             std::to_string(-sym_qmin) + ", max/" + std::to_string(sym_qmax) + ")";
  } else if (preserve_sparsity) {
    d.symmetric_step_skipped = true;
    branch = "symmetric qscheme but min >= 0 or max <= 0: symmetric step skipped, affine";
  } else {
    branch = "affine";
  }
  // eq. 2.2
  min = std::min(min, 0.0f);
  max = std::max(max, 0.0f);

  // eq. 2.3: ATen keeps the scale in double; FBGEMM stores it to float at once.
  double scale = (static_cast<double>(max) - min) / (qmax - qmin);
  if (fbgemm) scale = static_cast<double>(static_cast<float>(scale));
  d.scale_before_float = scale;
  const auto scale_f = static_cast<float>(scale);
  if (scale_f == 0.0f || std::isinf(1.0f / scale_f)) {
    scale = fbgemm ? static_cast<double>(0.1f) : 0.1;
    branch += "; scale 0 or reciprocal infinite: scale set to 0.1";
  }

  // eq. 2.4: scales below SMALL_SCALE_THRESHOLD are raised to it, min/max stretched.
  if (scale < kSmallScaleThreshold) {
    const auto org_scale = static_cast<float>(scale);
    scale = kSmallScaleThreshold;
    d.raised_to_small_scale_threshold = true;
    const auto steps = static_cast<float>(qmax - qmin);
    if (min == 0.0f) {
      max = kSmallScaleThreshold * steps;
    } else if (max == 0.0f) {
      min = -kSmallScaleThreshold * steps;
    } else {
      const float amplifier = kSmallScaleThreshold / org_scale;
      min *= amplifier;
      max *= amplifier;
    }
    branch += "; scale " + detail::g9(org_scale) + " below SMALL_SCALE_THRESHOLD 6.1e-5: raised to it";
  }

  // eq. 2.5: zero point from the end whose error term is smaller (ATen '-', FBGEMM '+').
  const double zp_from_min = qmin - min / scale;
  const double zp_from_max = qmax - max / scale;
  const double sign = fbgemm ? 1.0 : -1.0;
  const double err_min = std::abs(qmin) + sign * std::abs(min / scale);
  const double err_max = std::abs(qmax) + sign * std::abs(max / scale);
  double initial_zp = err_min < err_max ? zp_from_min : zp_from_max;
  std::string zp_branch = err_min < err_max ? "zero point from min" : "zero point from max";
  // eq. 2.6
  if (min < 0 && max > 0 && preserve_sparsity) {
    initial_zp = static_cast<double>(qmin + qmax) / 2;
    zp_branch = "symmetric: zero point (qmin + qmax) / 2";
  }
  // eq. 2.7: nudge to an integer inside [qmin, qmax].
  int64_t zp = 0;
  if (initial_zp < qmin) {
    zp = qmin;
  } else if (initial_zp > qmax) {
    zp = qmax;
  } else {
    // ATen stores nearbyint(initial_zp) into an int32_t: a NaN initial zero point (an
    // infinite min or max) becomes INT32_MIN there, as here.
    zp = convert_to_int32_truncating_x86(std::nearbyint(initial_zp));
  }
  d.scale = static_cast<float>(scale);  // eq. 2.8: the float32 buffer store
  d.zero_point = zp;
  d.branch = branch + "; " + zp_branch + " = " + detail::g9(initial_zp) + " -> " + std::to_string(zp);
  return d;
}

QParamDerivation derive_qparams(QParamRule rule, float min_val, float max_val,
                                const QuantSpec& spec) {
  if (rule == QParamRule::kPythonObserver) return python_observer_qparams(min_val, max_val, spec);
  // The fused op passes the module's quant_min/quant_max, which Python already reduced.
  return choose_quantization_params(rule, min_val, max_val, observer_quant_range(spec),
                                    is_symmetric(spec.qscheme));
}

}  // namespace qparity
