// Reference float linear: y[n, m] = Σ_k x[n, k] w[m, k] (k ascending, in float) + b[m].
#pragma once

#include <cstdint>
#include <span>

namespace qparity {

struct FloatLinearArgs {
  std::span<const float> input;  // [rows, in_features]
  int64_t rows = 1;
  int64_t in_features = 1;
  std::span<const float> weight;  // [out_features, in_features]
  int64_t out_features = 1;
  std::span<const float> bias;    // empty = none
};

void linear_float(const FloatLinearArgs& args, std::span<float> out);

}  // namespace qparity
