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

// ATen's pooling_output_shape for both spatial dims; throws std::invalid_argument for an invalid
// window and, unless `allow_empty` (ATen's generic quantized avg_pool2d returns an empty tensor),
// for a window larger than the padded input ("Output size is too small").
Shape4 pool2d_output_shape(const Shape4& input, const Pool2dWindow& w, bool allow_empty = false);

// max over each window, padded taps ignored; NaN wins as in ATen (`val > max || isnan(val)`).
void max_pool2d_float(std::span<const float> x, const Shape4& in, const Pool2dWindow& w,
                      std::span<float> out);
void max_pool2d_bins(std::span<const uint8_t> x, const Shape4& in, const Pool2dWindow& w,
                     std::span<uint8_t> out);
// QNNPACK's u8maxpool (eq. 6.18b): every tap index is clamped into the input (replicate
// padding), which differs from the above with dilation and padding. It refuses 1x1 windows
// (std::invalid_argument), as QNNPACK does.
void max_pool2d_bins_qnnpack(std::span<const uint8_t> x, const Shape4& in, const Pool2dWindow& w,
                             std::span<uint8_t> out);

// Reference float average pooling: the window's sum in (h, w) order, divided by the divisor
// (count_include_pad / divisor_override as ATen).
void avg_pool2d_float(std::span<const float> x, const Shape4& in, const Pool2dWindow& w,
                      bool count_include_pad, int64_t divisor_override, std::span<float> out);

// Reference adaptive average pooling: window [floor(o*I/O), ceil((o+1)*I/O)).
void adaptive_avg_pool2d_float(std::span<const float> x, const Shape4& in, int64_t out_h,
                               int64_t out_w, std::span<float> out);

// Quantized adaptive average pooling of quint8 bins; the output keeps the input's grid. Which
// of ATen's kernels runs decides the rounding (docs/numerics.md eq. 6.8):
enum class QuantizedAvgPoolKernel {
  kQnnpack,             // q8avgpool, kernel = stride = (H/OH, W/OW): Σ(x - zp), RNE, + zp (6.8a)
  kAtenChannelsLast,    // ATen's NHWC kernel: -zp*size + Σx, quantize_val (6.8b)
  kAtenContiguous,      // ATen's NCHW kernel: raw bins averaged, no zero point (6.8c)
};

struct QuantizedAdaptivePoolArgs {
  std::span<const uint8_t> input;
  Shape4 input_shape;
  float scale = 1.0f;
  int64_t zero_point = 0;
  int64_t out_h = 1, out_w = 1;
};

// Whether ATen takes a 4-d tensor for channels-last (is_contiguous(ChannelsLast)): stored NHWC,
// or NCHW with one channel or a 1x1 image, whose two layouts coincide (docs/numerics.md §6.8).
bool aten_channels_last(const Shape4& shape, bool stored_channels_last);

// The kernel ATen 1.13.1 dispatches to.
QuantizedAvgPoolKernel quantized_adaptive_pool_kernel(bool qnnpack_engine, const Shape4& in, int64_t out_h,
                                                      int64_t out_w, bool channels_last_input);

void quantized_adaptive_avg_pool2d(const QuantizedAdaptivePoolArgs& args, QuantizedAvgPoolKernel kernel,
                                   std::span<uint8_t> out);

// Quantized avg_pool2d of quint8 bins (NCHW logical order in and out); the output keeps the
// input's grid (docs/numerics.md eq. 6.19).
struct QuantizedAvgPoolArgs {
  std::span<const uint8_t> input;
  Shape4 input_shape;
  float scale = 1.0f;
  int64_t zero_point = 0;
  Pool2dWindow window;
  bool count_include_pad = true;
  int64_t divisor_override = 0;  // 0: none
};

// qnnpack takes every avg_pool2d without ceil_mode; ATen's NHWC or NCHW kernel the rest.
QuantizedAvgPoolKernel quantized_avg_pool_kernel(bool qnnpack_engine, const Pool2dWindow& w,
                                                 bool channels_last_input);

// Throws std::invalid_argument for a 1x1 window on the QNNPACK kernel, as QNNPACK refuses it.
void quantized_avg_pool2d(const QuantizedAvgPoolArgs& args, QuantizedAvgPoolKernel kernel, std::span<uint8_t> out);

}  // namespace qparity
