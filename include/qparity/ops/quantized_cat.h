// quantized::cat / cat_relu along channels of channels-last inputs: ATen's NHWC fast path
// (docs/numerics.md eq. 6.17). Other cats dequantize (eq. 5.2), concatenate and quantize
// (eq. 5.1), which the executor composes from those kernels.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qparity {

struct QuantizedCatInput {
  std::span<const uint8_t> bins;  // NHWC memory order
  int64_t channels = 0;
  double scale = 1.0;
  int64_t zero_point = 0;
};

struct QuantizedCatArgs {
  std::vector<QuantizedCatInput> inputs;
  int64_t pixels = 0;  // N * H * W
  double output_scale = 1.0;
  int64_t output_zero_point = 0;
  bool relu = false;
};

// Writes NHWC output bins (channels = the inputs' sum). Per input and pixel: a plain copy when
// its grid equals the output's (and no relu), else the vector lambda on the first
// 8 * floor(C / 8) channels and the scalar lambda on the rest.
void quantized_cat_channels_last(const QuantizedCatArgs& args, std::span<uint8_t> out);

}  // namespace qparity
