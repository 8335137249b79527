// quantize / dequantize with PyTorch 1.13.1 CPU semantics (docs/numerics.md §5).
#pragma once

#include <cstdint>

#include "qparity/numerics/dtype.h"
#include "qparity/numerics/float32.h"

namespace qparity {

// One quantization grid: scale, zero point and the clamp range of the values.
struct QuantGrid {
  float scale = 1.0f;
  int64_t zero_point = 0;
  QRange range{0, 255};
};

// eq. 5.1 (quantize_val): q = clamp(trunc64(f(zp + RNE(f(x * f(1/s))))), range).
// The reciprocal is taken in float, rounding happens before the zero point is added,
// and the zero point is added in float.
inline int64_t quantize_value(float x, const QuantGrid& g) {
  const float inv_scale = 1.0f / g.scale;
  const float shifted = static_cast<float>(g.zero_point) + round_half_even(x * inv_scale);
  const int64_t q = truncate_to_int64_x86(shifted);
  return q < g.range.min ? g.range.min : (q > g.range.max ? g.range.max : q);
}

// eq. 5.2 (per-tensor dequantize): x' = f(f(s) * f(int32(q - zp))).
inline float dequantize_value(int64_t q, float scale, int64_t zero_point) {
  const auto diff = static_cast<int32_t>(q - zero_point);
  return scale * static_cast<float>(diff);
}

// eq. 5.3 (per-channel dequantize): x' = f(double(f(q) - f(zp)) * scale_c), the scale kept
// in double as torch.quantize_per_channel stores it.
inline float dequantize_value_per_channel(int64_t q, double scale, int64_t zero_point) {
  const float diff = static_cast<float>(q) - static_cast<float>(zero_point);
  return static_cast<float>(static_cast<double>(diff) * scale);
}

}  // namespace qparity
