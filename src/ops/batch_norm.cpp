#include "qparity/ops/batch_norm.h"

#include <cmath>

namespace qparity {

void batch_norm_inference_float(const BatchNormArgs& args, std::span<float> out) {
  for (int64_t ch = 0; ch < args.c; ++ch) {
    const auto c = static_cast<size_t>(ch);
    const float inv_std =
        1.0f / std::sqrt(args.running_var[c] + static_cast<float>(args.eps));
    const float w = args.weight.empty() ? 1.0f : args.weight[c];
    const float b = args.bias.empty() ? 0.0f : args.bias[c];
    const float alpha = inv_std * w;
    const float beta = b - args.running_mean[c] * alpha;
    for (int64_t n = 0; n < args.n; ++n) {
      const int64_t base = (n * args.c + ch) * args.inner;
      for (int64_t i = 0; i < args.inner; ++i) {
        const auto at = static_cast<size_t>(base + i);
        out[at] = args.input[at] * alpha + beta;
      }
    }
  }
}

}  // namespace qparity
