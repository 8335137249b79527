#include "qparity/ops/quantized_mul.h"

#include <algorithm>
#include <cmath>

#include "qparity/numerics/float32.h"

namespace qparity {
namespace {

// requantize_from_int: clamp(zp + lrintf(f(c * m)), 0, 255) (eq. 6.14b).
uint8_t requantize_from_int(int32_t c, float multiplier, int64_t zero_point) {
  const int64_t q = zero_point + static_cast<int64_t>(convert_to_int32_x86(static_cast<float>(c) * multiplier));
  return static_cast<uint8_t>(std::clamp<int64_t>(q, 0, 255));
}

uint8_t relu_bin(uint8_t q, int64_t zero_point, bool relu) {
  return relu ? static_cast<uint8_t>(std::max<int64_t>(q, zero_point)) : q;
}

}  // namespace

void quantized_mul(const QuantizedBinaryArgs& a, std::span<uint8_t> out) {
  const float multiplier = a.a_scale * a.b_scale * (1.0f / a.output_scale);
  for (size_t i = 0; i < a.a.size(); ++i) {
    const auto c = static_cast<int32_t>((a.a[i] - a.a_zero_point) * (a.b[i] - a.b_zero_point));
    out[i] = relu_bin(requantize_from_int(c, multiplier, a.output_zero_point), a.output_zero_point, a.relu);
  }
}

ScalarOpGrid quantized_add_scalar(std::span<const uint8_t> q, double scale, int64_t zero_point, double c, bool relu,
                                  std::span<uint8_t> out) {
  const auto c_q = static_cast<int64_t>(std::nearbyint(c / scale));
  const int64_t shifted = zero_point - c_q;
  if (shifted >= 0 && shifted <= 255) {  // eq. 6.15a: the bins stay, the zero point moves
    for (size_t i = 0; i < q.size(); ++i) out[i] = relu_bin(q[i], shifted, relu);
    return {scale, shifted};
  }
  // eq. 6.15b: the grid widens so that the shifted range fits, pinned at 0 or 255.
  ScalarOpGrid g;
  if (shifted < 0) {
    g = {(255.0 - static_cast<double>(shifted)) / 255.0 * scale, 0};
  } else {
    g = {(static_cast<double>(shifted) - 0.0) / 255.0 * scale, 255};
  }
  const float multiplier = static_cast<float>(scale) * (1.0f / static_cast<float>(g.scale));
  for (size_t i = 0; i < q.size(); ++i) {
    const auto v = static_cast<int32_t>(q[i] - zero_point + c_q);
    out[i] = relu_bin(requantize_from_int(v, multiplier, g.zero_point), g.zero_point, relu);
  }
  return g;
}

ScalarOpGrid quantized_mul_scalar(std::span<const uint8_t> q, double scale, int64_t zero_point, double c, bool relu,
                                  std::span<uint8_t> out) {
  if (c > 0.0) {
    for (size_t i = 0; i < q.size(); ++i) out[i] = relu_bin(q[i], zero_point, relu);
    return {c * scale, zero_point};
  }
  if (c == 0.0) {
    std::fill(out.begin(), out.end(), uint8_t{0});
    return {1.0, 0};
  }
  const int64_t mirrored_zero_point = 255 - zero_point;
  for (size_t i = 0; i < q.size(); ++i) {
    out[i] = relu_bin(static_cast<uint8_t>(255 - q[i]), mirrored_zero_point, relu);
  }
  return {std::abs(c) * scale, mirrored_zero_point};
}

}  // namespace qparity
