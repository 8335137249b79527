// The two dequantize / quantize pairs of ATen's generic quint8 elementwise kernels
// (docs/numerics.md eq. 6.9): the vector lambda dequantizes with an FMA and quantizes with a
// caller-given reciprocal; the scalar lambda uses dequantize_val / quantize_val (eq. 5.2, 5.1).
#pragma once

#include <cmath>
#include <cstdint>

#include "qparity/numerics/float32.h"
#include "qparity/numerics/quantize.h"

namespace qparity {

// eq. 6.9a: Vectorized<quint8>::dequantize, fma(s, q, f(s * -zp)).
inline float dequantize_vector(uint8_t q, float scale, float scale_neg_zp) {
  return std::fma(scale, static_cast<float>(q), scale_neg_zp);
}
inline float scale_neg_zero_point(float scale, int64_t zero_point) {
  return scale * static_cast<float>(-zero_point);
}

// eq. 6.9c: QuantizeAvx2, clamp(cvtps2dq(f(x * inv)) + zp, 0, 255): the zero point is an
// integer added after rounding.
inline uint8_t quantize_vector(float x, float inverse_scale, int64_t zero_point) {
  const int64_t q = static_cast<int64_t>(convert_to_int32_x86(x * inverse_scale)) + zero_point;
  return static_cast<uint8_t>(q < 0 ? 0 : (q > 255 ? 255 : q));
}

// eq. 5.1 into quint8.
inline uint8_t quantize_scalar(float x, float scale, int64_t zero_point) {
  return static_cast<uint8_t>(quantize_value(x, {scale, zero_point, {0, 255}}));
}

}  // namespace qparity
