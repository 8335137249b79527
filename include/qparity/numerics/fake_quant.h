// Fake quantization kernels (docs/numerics.md §4): float in, float out, on a grid.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "qparity/numerics/float32.h"
#include "qparity/numerics/quantize.h"

namespace qparity {

// The integer bin fake quantization lands on before dequantizing (eq. 4.1, first line):
// trunc64(f(zp + RNE(f(x * f(1/s))))), unclamped.
inline int64_t fake_quant_unclamped_bin(float x, float scale, int64_t zero_point) {
  const float inv_scale = 1.0f / scale;
  return truncate_to_int64_x86(static_cast<float>(zero_point) + round_half_even(x * inv_scale));
}

// eq. 4.1: out = f((clamp(q, qmin, qmax) - zp) * s), the clamp and the subtraction in
// double (std::fmin/fmax promote), exact, then one rounding to float.
inline float fake_quantize_value(float x, const QuantGrid& g) {
  // q is an integer, never NaN, so plain clamping equals the kernel's std::fmin/std::fmax.
  const int64_t q = std::clamp(fake_quant_unclamped_bin(x, g.scale, g.zero_point), g.range.min,
                               g.range.max);
  return static_cast<float>((static_cast<double>(q) - static_cast<double>(g.zero_point)) *
                            static_cast<double>(g.scale));
}

// The clamped bin of eq. 4.1: the quantized value the fake-quant output represents.
inline int64_t fake_quant_bin(float x, const QuantGrid& g) {
  return std::clamp(fake_quant_unclamped_bin(x, g.scale, g.zero_point), g.range.min, g.range.max);
}

}  // namespace qparity
