#include "qparity/ops/linear.h"

namespace qparity {

void linear_float(const FloatLinearArgs& args, std::span<float> out) {
  for (int64_t r = 0; r < args.rows; ++r) {
    const float* x = args.input.data() + r * args.in_features;
    for (int64_t m = 0; m < args.out_features; ++m) {
      const float* w = args.weight.data() + m * args.in_features;
      float sum = 0.0f;
      for (int64_t k = 0; k < args.in_features; ++k) sum += x[k] * w[k];
      if (!args.bias.empty()) sum += args.bias[static_cast<size_t>(m)];
      out[static_cast<size_t>(r * args.out_features + m)] = sum;
    }
  }
}

}  // namespace qparity
