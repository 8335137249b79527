// quantized::mul / mul_relu, and the scalar ops add_scalar / mul_scalar that choose their own
// output grid (docs/numerics.md eq. 6.14-6.16).
#pragma once

#include <cstdint>
#include <span>

#include "qparity/ops/quantized_binary.h"

namespace qparity {

// eq. 6.14: requantize_from_int((a - za)(b - zb), f(f(s_a s_b) f(1/s))), both lambdas alike.
void quantized_mul(const QuantizedBinaryArgs& args, std::span<uint8_t> out);

// The grid a scalar op's output lands on, as the op computes it (doubles, as the tensor keeps them).
struct ScalarOpGrid {
  double scale = 1.0;
  int64_t zero_point = 0;
};

// eq. 6.15: adds c_q = RNE(c / s) bins, moving the zero point by -c_q; when that leaves
// [0, 255] the scale widens instead and the bins are requantized.
ScalarOpGrid quantized_add_scalar(std::span<const uint8_t> q, double scale, int64_t zero_point, double c, bool relu,
                                  std::span<uint8_t> out);

// eq. 6.16: c > 0 scales the grid, c = 0 zeroes every bin, c < 0 mirrors the bins (255 - q).
ScalarOpGrid quantized_mul_scalar(std::span<const uint8_t> q, double scale, int64_t zero_point, double c, bool relu,
                                  std::span<uint8_t> out);

}  // namespace qparity
