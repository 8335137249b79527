// quantized::add / add_relu on quint8 tensors of one shape (docs/numerics.md §6.7).
#pragma once

#include <cstdint>
#include <span>

#include "qparity/ops/aten_loop.h"

namespace qparity {

struct QuantizedAddArgs {
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

// qnnpack's fixed-point add (eq. 6.7a-c): integer multipliers with a shift of 21 - e, round
// half away from zero. Throws std::invalid_argument, as qnnpack refuses, when a relative scale
// f(a_s / s) or f(b_s / s) is outside [2^-14, 2^8).
void quantized_add_qnnpack(const QuantizedAddArgs& args, std::span<uint8_t> out);

// ATen's generic add (onednn and fbgemm engines, eq. 6.7d-e): dequantize with a fused
// multiply-add in the vector blocks of `loop` (the scalar formula in the tails), add in float,
// requantize with RNE. a and b in memory order.
void quantized_add_generic(const QuantizedAddArgs& args, const AtenLoop& loop, std::span<uint8_t> out);

}  // namespace qparity
