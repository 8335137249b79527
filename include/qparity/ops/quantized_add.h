// quantized::add / add_relu on quint8 tensors of one shape (docs/numerics.md §6.7).
#pragma once

#include <cstdint>
#include <span>

#include "qparity/ops/aten_loop.h"
#include "qparity/ops/quantized_binary.h"

namespace qparity {

// qnnpack's fixed-point add (eq. 6.7a-c): integer multipliers with a shift of 21 - e, round
// half away from zero. Throws std::invalid_argument, as qnnpack refuses, when a relative scale
// f(a_s / s) or f(b_s / s) is outside [2^-14, 2^8).
void quantized_add_qnnpack(const QuantizedBinaryArgs& args, std::span<uint8_t> out);

// ATen's generic add (onednn and fbgemm engines, eq. 6.7d-e): dequantize with a fused
// multiply-add in the vector blocks of `loop` (the scalar formula in the tails), add in float,
// requantize with RNE. a and b in memory order.
void quantized_add_generic(const QuantizedBinaryArgs& args, const AtenLoop& loop, std::span<uint8_t> out);

}  // namespace qparity
