#include "qparity/ops/quantized_cat.h"

#include <algorithm>
#include <cstring>

#include "qparity/ops/aten_quint8.h"

namespace qparity {

void quantized_cat_channels_last(const QuantizedCatArgs& args, std::span<uint8_t> out) {
  int64_t total = 0;
  for (const auto& in : args.inputs) total += in.channels;
  const auto inverse = static_cast<float>(1.0 / args.output_scale);  // eq. 6.17b: reciprocal in double
  const auto output_scale = static_cast<float>(args.output_scale);
  constexpr int64_t kFloatLanes = 8;  // Vectorized<float>::size() on AVX2
  for (int64_t p = 0; p < args.pixels; ++p) {
    int64_t offset = 0;
    for (const auto& in : args.inputs) {
      const uint8_t* src = in.bins.data() + p * in.channels;
      uint8_t* dst = out.data() + p * total + offset;
      offset += in.channels;
      if (in.scale == args.output_scale && in.zero_point == args.output_zero_point && !args.relu) {
        std::memcpy(dst, src, static_cast<size_t>(in.channels));  // eq. 6.17a
        continue;
      }
      const auto scale = static_cast<float>(in.scale);
      const float neg = scale_neg_zero_point(scale, in.zero_point);
      const int64_t vector_end = in.channels / kFloatLanes * kFloatLanes;
      for (int64_t c = 0; c < in.channels; ++c) {
        float x = c < vector_end ? dequantize_vector(src[c], scale, neg) : dequantize_value(src[c], scale, in.zero_point);
        if (args.relu) x = std::max(x, 0.0f);
        dst[c] = c < vector_end ? quantize_vector(x, inverse, args.output_zero_point)
                                : quantize_scalar(x, output_scale, args.output_zero_point);
      }
    }
  }
}

}  // namespace qparity
