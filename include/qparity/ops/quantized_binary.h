// The operands of quantized::add and quantized::mul: two quint8 tensors of one size (the caller
// expands a broadcast operand) on their grids, the output grid and the fused ReLU.
#pragma once

#include <cstdint>
#include <span>

namespace qparity {

struct QuantizedBinaryArgs {
  std::span<const uint8_t> a;
  float a_scale = 1.0f;
  int64_t a_zero_point = 0;
  std::span<const uint8_t> b;
  float b_scale = 1.0f;
  int64_t b_zero_point = 0;
  float output_scale = 1.0f;
  int64_t output_zero_point = 0;
  bool relu = false;
};

}  // namespace qparity
