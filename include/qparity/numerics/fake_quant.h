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

// eq. 4.1 stage by stage for one value, from the functions above (what explain shows).
struct FakeQuantTrace {
  float input = 0.0f;
  float inv_scale = 0.0f;     // f(1/s)
  float pre_rounding = 0.0f;  // f(x * f(1/s))
  float rounded = 0.0f;       // RNE of it
  int64_t unclamped = 0;      // trunc64(f(zp + rounded))
  int64_t bin = 0;            // clamped to the grid's range
  float value = 0.0f;         // the fake-quantized output
};

inline FakeQuantTrace fake_quant_trace(float x, const QuantGrid& g) {
  FakeQuantTrace t;
  t.input = x;
  t.inv_scale = 1.0f / g.scale;
  t.pre_rounding = x * t.inv_scale;
  t.rounded = round_half_even(t.pre_rounding);
  t.unclamped = fake_quant_unclamped_bin(x, g.scale, g.zero_point);
  t.bin = fake_quant_bin(x, g);
  t.value = fake_quantize_value(x, g);
  return t;
}

}  // namespace qparity
