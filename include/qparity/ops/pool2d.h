// 2-D pooling, NCHW: max pooling (floats, and quint8 bins, where the max of bins is the bin of
// the max), and qparity's reference average pooling in floats (sums in window order).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "qparity/ops/conv2d.h"

namespace qparity {

struct Pool2dWindow {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  bool ceil_mode = false;
};

// ATen's pooling_output_shape for both spatial dims; throws std::invalid_argument when the
// window does not fit.
Shape4 pool2d_output_shape(const Shape4& input, const Pool2dWindow& w);

// max over each window, padded taps ignored; NaN wins as in ATen (`val > max || isnan(val)`).
void max_pool2d_float(std::span<const float> x, const Shape4& in, const Pool2dWindow& w,
                      std::span<float> out);
void max_pool2d_bins(std::span<const uint8_t> x, const Shape4& in, const Pool2dWindow& w,
                     std::span<uint8_t> out);

// Reference float average pooling: the window's sum in (h, w) order, divided by the divisor
// (count_include_pad / divisor_override as ATen).
void avg_pool2d_float(std::span<const float> x, const Shape4& in, const Pool2dWindow& w,
                      bool count_include_pad, int64_t divisor_override, std::span<float> out);

// Reference adaptive average pooling: window [floor(o*I/O), ceil((o+1)*I/O)).
void adaptive_avg_pool2d_float(std::span<const float> x, const Shape4& in, int64_t out_h,
                               int64_t out_w, std::span<float> out);

}  // namespace qparity
