// Activations on both paths (docs/numerics.md eq. 6.10-6.12): hardswish, hardsigmoid and
// sigmoid on floats, and on quint8 bins with the kernel the engine runs (ATen's generic
// vector/scalar lambdas, or QNNPACK's lookup tables), plus the quantized clamp (relu6,
// hardtanh). Every quantized kernel takes its bins in memory order, the order ATen splits them.
#pragma once

#include <cstdint>
#include <span>

#include "qparity/ops/aten_loop.h"

namespace qparity {

// eq. 6.10a: x * clamp(x + 3, 0, 6) / 6, three float roundings.
void hardswish_float(std::span<const float> x, std::span<float> out);
// eq. 6.11a: clamp(x + 3, 0, 6) / 6.
void hardsigmoid_float(std::span<const float> x, std::span<float> out);
// eq. 6.12a: the vector lambda 1 / (1 + sleef_expf(-x)) on whole blocks, the scalar
// 1 / (1 + expf(-x)) on the tails, in float.
void sigmoid_float(std::span<const float> x, const AtenLoop& loop, std::span<float> out);

enum class ActivationKernel {
  kAtenGeneric,  // cpu_kernel_vec: vector lambda on blocks, scalar lambda on tails
  kQnnpack,      // QNNPACK's operator: a 256-entry table built from the input and output grids
};

struct QuantizedActivationArgs {
  std::span<const uint8_t> input;  // memory order
  float scale = 1.0f;
  int64_t zero_point = 0;
  double output_scale = 1.0;  // as the op receives it (hardswish); sigmoid / hardsigmoid: 1/256
  int64_t output_zero_point = 0;
  AtenLoop loop = kAtenQuint8Loop;
};

void quantized_hardswish(const QuantizedActivationArgs& args, ActivationKernel kernel, std::span<uint8_t> out);
void quantized_hardsigmoid(const QuantizedActivationArgs& args, ActivationKernel kernel, std::span<uint8_t> out);
void quantized_sigmoid(const QuantizedActivationArgs& args, ActivationKernel kernel, std::span<uint8_t> out);

// eq. 6.13: clamp(q, quantize_val(min), quantize_val(max)) on the input's grid (relu6: 0, 6).
void quantized_clamp(std::span<const uint8_t> q, float scale, int64_t zero_point, float min, float max,
                     std::span<uint8_t> out);

}  // namespace qparity
