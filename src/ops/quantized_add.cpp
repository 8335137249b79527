#include "qparity/ops/quantized_add.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

#include "qparity/numerics/float32.h"
#include "qparity/numerics/quantize.h"
#include "qparity/numerics/requantize.h"
#include "qparity/ops/aten_quint8.h"

namespace qparity {

void quantized_add_qnnpack(const QuantizedBinaryArgs& args, std::span<uint8_t> out) {
  // eq. 6.7a: relative scales in float, the larger one's exponent sets the shift.
  const float a_rel = args.a_scale / args.output_scale;
  const float b_rel = args.b_scale / args.output_scale;
  const float largest = std::max(a_rel, b_rel);
  if (args.relu && args.output_zero_point >= 255) {
    // QNNPACK's add operator needs its clamp range [zp, 255] non-empty.
    throw std::invalid_argument("QNNPACK refuses add_relu with output zero point 255 (an empty output range)");
  }
  if (!(largest >= 0x1.0p-14f) || !(largest < 0x1.0p+8f)) {
    throw std::invalid_argument(
        "qnnpack add: the relative scale input_scale / output_scale must lie in [2^-14, 2^8)");
  }
  const int32_t exponent = static_cast<int32_t>(std::bit_cast<uint32_t>(largest) >> 23) - 127;
  const auto shift = static_cast<uint32_t>(21 - exponent);
  const float pow2 = std::bit_cast<float>(static_cast<uint32_t>(21 - exponent + 127) << 23);
  const auto a_mult = static_cast<uint32_t>(convert_to_int32_x86(a_rel * pow2));
  const auto b_mult = static_cast<uint32_t>(convert_to_int32_x86(b_rel * pow2));
  const auto zero_product = static_cast<int32_t>(
      0u - (a_mult * static_cast<uint32_t>(args.a_zero_point) +
            b_mult * static_cast<uint32_t>(args.b_zero_point)));
  const int32_t mask = static_cast<int32_t>((uint32_t{1} << shift) - 1u);
  const int32_t threshold = mask >> 1;
  const int32_t lo = args.relu ? static_cast<int32_t>(args.output_zero_point) : 0;
  for (size_t i = 0; i < args.a.size(); ++i) {
    // eq. 6.7b: int32 accumulation (wrapping as the lanes do), then the rounding shift.
    const auto acc = static_cast<int32_t>(static_cast<uint32_t>(zero_product) +
                                          args.a[i] * a_mult + args.b[i] * b_mult);
    const int32_t remainder = (acc & mask) - (acc < 0 ? 1 : 0);
    const int32_t q = (acc >> shift) + (remainder > threshold ? 1 : 0);
    // eq. 6.7c: saturate to int16, add the zero point (saturating), clamp.
    const int32_t y = saturate_int16(saturate_int16(q) + args.output_zero_point);
    out[i] = static_cast<uint8_t>(std::clamp(y, std::max(lo, 0), 255));
  }
}

namespace {

// eq. 6.7d-e for element i: dequantize with the lambda's formula, add, relu, quantize (eq. 5.1).
uint8_t generic_add_one(const QuantizedBinaryArgs& args, size_t i, bool vectorized, const QuantGrid& grid) {
  float da = 0.0f;
  float db = 0.0f;
  if (vectorized) {
    da = dequantize_vector(args.a[i], args.a_scale, scale_neg_zero_point(args.a_scale, args.a_zero_point));
    db = dequantize_vector(args.b[i], args.b_scale, scale_neg_zero_point(args.b_scale, args.b_zero_point));
  } else {
    da = dequantize_value(args.a[i], args.a_scale, args.a_zero_point);
    db = dequantize_value(args.b[i], args.b_scale, args.b_zero_point);
  }
  float c = da + db;
  if (args.relu) c = std::max(c, 0.0f);
  return static_cast<uint8_t>(quantize_value(c, grid));
}

}  // namespace

void quantized_add_generic(const QuantizedBinaryArgs& args, const AtenLoop& loop, std::span<uint8_t> out) {
  const QuantGrid grid{args.output_scale, args.output_zero_point, {0, 255}};
  for_each_aten_range(static_cast<int64_t>(args.a.size()), loop, [&](int64_t begin, int64_t end, bool vectorized) {
    for (auto i = static_cast<size_t>(begin); i < static_cast<size_t>(end); ++i) {
      out[i] = generic_add_one(args, i, vectorized, grid);
    }
  });
}

}  // namespace qparity
