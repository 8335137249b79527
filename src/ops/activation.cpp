#include "qparity/ops/activation.h"

#include <algorithm>
#include <cmath>

#include "qparity/numerics/quantize.h"
#include "qparity/numerics/sleef_expf.h"
#include "qparity/ops/aten_quint8.h"

namespace qparity {
namespace {

// eq. 6.10a: (x * clamp(x + 3, 0, 6)) / 6.
float hardswish_value(float x) { return (x * std::min(std::max(x + 3.0f, 0.0f), 6.0f)) / 6.0f; }

// eq. 6.11a: clamp(x + 3, 0, 6) / 6.
float hardsigmoid_value(float x) { return std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f; }

// QNNPACK's tables end in lrintf of a value already clamped to [0, 255] in float.
uint8_t qnnpack_table_bin(float v) { return static_cast<uint8_t>(std::lrintf(std::min(std::max(v, 0.0f), 255.0f))); }

// Runs `vector` / `scalar` (bin -> bin) over the input in ATen's split.
template <typename Vector, typename Scalar>
void generic_unary(const QuantizedActivationArgs& a, Vector vector, Scalar scalar, std::span<uint8_t> out) {
  for_each_aten_range(static_cast<int64_t>(a.input.size()), a.loop, [&](int64_t begin, int64_t end, bool vectorized) {
    for (auto i = static_cast<size_t>(begin); i < static_cast<size_t>(end); ++i) {
      out[i] = vectorized ? vector(a.input[i]) : scalar(a.input[i]);
    }
  });
}

// A QNNPACK lookup operator: out = table[in].
template <typename Entry>
void table_unary(const QuantizedActivationArgs& a, Entry entry, std::span<uint8_t> out) {
  uint8_t table[256];
  for (int i = 0; i < 256; ++i) table[i] = entry(dequantize_value(i, a.scale, a.zero_point));
  for (size_t i = 0; i < a.input.size(); ++i) out[i] = table[a.input[i]];
}

constexpr float kFixedInverseScale = 256.0f;  // sigmoid / hardsigmoid output grid 1/256, 0
constexpr float kFixedScale = 1.0f / 256.0f;

}  // namespace

void hardswish_float(std::span<const float> x, std::span<float> out) {
  for (size_t i = 0; i < x.size(); ++i) out[i] = hardswish_value(x[i]);
}

void hardsigmoid_float(std::span<const float> x, std::span<float> out) {
  for (size_t i = 0; i < x.size(); ++i) out[i] = hardsigmoid_value(x[i]);
}

void sigmoid_float(std::span<const float> x, const AtenLoop& loop, std::span<float> out) {
  for_each_aten_range(static_cast<int64_t>(x.size()), loop, [&](int64_t begin, int64_t end, bool vectorized) {
    for (auto i = static_cast<size_t>(begin); i < static_cast<size_t>(end); ++i) {
      // eq. 6.12a: the vector lambda negates as 0 - x, exps with Sleef, adds 1, takes the reciprocal.
      const float e = vectorized ? sleef_expf_avx2(0.0f - x[i]) : std::exp(-x[i]);
      out[i] = 1.0f / (1.0f + e);
    }
  });
}

void quantized_hardswish(const QuantizedActivationArgs& a, ActivationKernel kernel, std::span<uint8_t> out) {
  const auto output_scale = static_cast<float>(a.output_scale);
  if (kernel == ActivationKernel::kQnnpack) {
    // eq. 6.10c: the zero point is added in float before lrintf.
    const float inverse = 1.0f / output_scale;
    const auto zp = static_cast<float>(a.output_zero_point);
    return table_unary(a, [&](float x) { return qnnpack_table_bin(inverse * hardswish_value(x) + zp); }, out);
  }
  // eq. 6.10b: the vector lambda's reciprocal is taken in double.
  const auto inverse = static_cast<float>(1.0 / a.output_scale);
  const float neg = scale_neg_zero_point(a.scale, a.zero_point);
  generic_unary(
      a,
      [&](uint8_t q) {
        return quantize_vector(hardswish_value(dequantize_vector(q, a.scale, neg)), inverse, a.output_zero_point);
      },
      [&](uint8_t q) {
        return quantize_scalar(hardswish_value(dequantize_value(q, a.scale, a.zero_point)), output_scale,
                               a.output_zero_point);
      },
      out);
}

void quantized_hardsigmoid(const QuantizedActivationArgs& a, ActivationKernel kernel, std::span<uint8_t> out) {
  if (kernel == ActivationKernel::kQnnpack) {
    // eq. 6.11c
    return table_unary(a, [](float x) { return qnnpack_table_bin(kFixedInverseScale * hardsigmoid_value(x) + 0.0f); },
                       out);
  }
  // eq. 6.11b
  const float neg = scale_neg_zero_point(a.scale, a.zero_point);
  generic_unary(
      a,
      [&](uint8_t q) {
        return quantize_vector(hardsigmoid_value(dequantize_vector(q, a.scale, neg)), kFixedInverseScale, 0);
      },
      [&](uint8_t q) {
        return quantize_scalar(hardsigmoid_value(dequantize_value(q, a.scale, a.zero_point)), kFixedScale, 0);
      },
      out);
}

void quantized_sigmoid(const QuantizedActivationArgs& a, ActivationKernel kernel, std::span<uint8_t> out) {
  if (kernel == ActivationKernel::kQnnpack) {
    // eq. 6.12d: 256 / (1 + expf(-x)), in float.
    return table_unary(a, [](float x) { return qnnpack_table_bin(kFixedInverseScale / (1.0f + std::exp(-x))); },
                       out);
  }
  // eq. 6.12b: the vector lambda in float with Sleef, the scalar one divides in double.
  const float neg = scale_neg_zero_point(a.scale, a.zero_point);
  generic_unary(
      a,
      [&](uint8_t q) {
        const float x = dequantize_vector(q, a.scale, neg);
        return quantize_vector(1.0f / (1.0f + sleef_expf_avx2(0.0f - x)), kFixedInverseScale, 0);
      },
      [&](uint8_t q) {
        const float x = dequantize_value(q, a.scale, a.zero_point);
        const auto t = static_cast<float>(1.0 / (1.0 + static_cast<double>(std::exp(-x))));
        return quantize_scalar(t, kFixedScale, 0);
      },
      out);
}

void quantized_clamp(std::span<const uint8_t> q, float scale, int64_t zero_point, float min, float max,
                     std::span<uint8_t> out) {
  const auto lo = static_cast<uint8_t>(quantize_scalar(min, scale, zero_point));
  const auto hi = static_cast<uint8_t>(quantize_scalar(max, scale, zero_point));
  for (size_t i = 0; i < q.size(); ++i) out[i] = std::min(std::max(q[i], lo), hi);
}

}  // namespace qparity
