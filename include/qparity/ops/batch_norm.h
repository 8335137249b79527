// Reference float batch norm in inference form: y = (x - mean) / sqrt(var + eps) * w + b per
// channel of NC... data, each step rounded to float.
#pragma once

#include <cstdint>
#include <span>

namespace qparity {

struct BatchNormArgs {
  std::span<const float> input;  // [N, C, inner]
  int64_t n = 1, c = 1, inner = 1;
  std::span<const float> weight;  // empty = 1
  std::span<const float> bias;    // empty = 0
  std::span<const float> running_mean;
  std::span<const float> running_var;
  double eps = 1e-5;
};

void batch_norm_inference_float(const BatchNormArgs& args, std::span<float> out);

}  // namespace qparity
