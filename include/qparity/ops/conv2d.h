// conv2d: float reference and integer (int32 accumulation + requantization), NCHW.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "qparity/numerics/requantize.h"
#include "qparity/profile/backend_profile.h"

namespace qparity {

struct Shape4 {
  int64_t n = 1, c = 1, h = 1, w = 1;
  int64_t numel() const { return n * c * h * w; }
  friend bool operator==(const Shape4&, const Shape4&) = default;
};

struct Conv2dGeometry {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// Output shape; throws std::invalid_argument for inconsistent shapes.
Shape4 conv2d_output_shape(const Shape4& input, const Shape4& weight, const Conv2dGeometry& g);

struct FloatConv2dArgs {
  std::span<const float> input;
  Shape4 input_shape;
  std::span<const float> weight;  // [M, C/groups, KH, KW]
  Shape4 weight_shape;
  std::span<const float> bias;  // empty = no bias
  Conv2dGeometry geometry;
  bool relu = false;
  bool force_reference = false;  // skip fast kernels (tests compare the two)
};

// Float conv: each output sums its products in float in (channel, kh, kw) order, then adds
// the bias. Bit-exact to PyTorch whenever an output has at most one nonzero product (the
// seed family); for longer sums PyTorch's summation order is not emulated.
std::vector<float> conv2d_float(const FloatConv2dArgs& args);
// The same into a caller's buffer (resized), so loops over blocks reuse memory.
void conv2d_float(const FloatConv2dArgs& args, std::vector<float>& out);

// One output element of conv2d_float as the reference kernel computes it: every product's
// input and weight (flat indices and values) in summation order, the sum, the sum with the
// bias, and the output (after the ReLU when fused). The trace walks the taps with the kernel's
// own code, so `output` is the kernel's element bit for bit (tests/unit/conv2d_test.cpp).
struct FloatConvTap {
  int64_t input_index = 0, weight_index = 0;
  float input = 0.0f, weight = 0.0f;
};
struct FloatConv2dTrace {
  std::vector<FloatConvTap> taps;
  float sum = 0.0f;
  float with_bias = 0.0f;
  float output = 0.0f;
};
FloatConv2dTrace conv2d_float_trace(const FloatConv2dArgs& args, int64_t n, int64_t m, int64_t oh, int64_t ow);

struct QuantizedConv2dArgs {
  std::span<const uint8_t> input;  // quint8 bins
  Shape4 input_shape;
  float input_scale = 1.0f;
  int64_t input_zero_point = 0;
  std::span<const int8_t> weight;  // qint8 bins [M, C/groups, KH, KW]
  Shape4 weight_shape;
  std::vector<float> weight_scales;         // 1 (per tensor) or M (per channel)
  std::vector<int64_t> weight_zero_points;  // same size as weight_scales
  bool weight_per_channel = false;
  std::span<const float> bias;  // float32, empty = none
  float output_scale = 1.0f;
  int64_t output_zero_point = 0;
  bool relu = false;
  Conv2dGeometry geometry;
  bool force_reference = false;  // skip fast kernels (tests compare the two)
};

// The int32 accumulators (eq. 6.1, 6.5, 6.5b, 6.6, 6.6b, 6.6c), wrapping like the kernels' int32
// lanes. Every model subtracts both zero points: Σ (x - x_zp)(w - w_zp) when nothing saturates.
std::vector<int32_t> conv2d_accumulators(const QuantizedConv2dArgs& args, AccumulationModel model);
void conv2d_accumulators(const QuantizedConv2dArgs& args, AccumulationModel model,
                         std::vector<int32_t>& out);

// The kernel FBGEMM 0d98c26's fbgemmConv runs a 2-D conv on (ConvFastPath, src/FbgemmConv.cc:
// 95-114). A linear layer runs FBGEMM's GEMM, which accumulates as the pointwise path does.
enum class FbgemmConvPath {
  kDepthwise,  // groups = in channels, 1 or 2 outputs per group, groups % 8 == 0, square 3/5/7
               // kernel, "same" padding, stride 1 or 2, no dilation: JIT depthwise kernel
  kGroupwise,  // 2, 4, 8 or 16 channels in and out per group, 3x3, padding 1, strides both 1
               // or both 2, no dilation, enough groups for one SIMD register (fbgemmOptimizedGConv)
  kPointwise,  // 1x1, stride 1, no padding, no dilation: GEMM on the input as it is
  kIm2col,     // everything else: GEMM on the im2col matrix, padded taps filled with x_zp
};

std::string_view to_string(FbgemmConvPath path);

// The path FBGEMM on a CPU of class `isa` takes for this conv. The ISA matters for the groupwise
// path only: how many groups one register holds (numOfGroupsTogether).
FbgemmConvPath fbgemm_conv_path(FbgemmIsa isa, const Shape4& input, const Shape4& weight,
                                const Conv2dGeometry& g);

// The accumulation model `profile` uses for this conv. onednn: conv_accumulation() with its groups
// and per-group channel counts. fbgemm: by fbgemm_conv_path() and the ISA class: depthwise pairs
// taps on every CPU (eq. 6.6c); without VNNI groupwise pairs channels (6.5b) and the GEMM paths
// pair along the reduction (6.6b); with VNNI those two are exact (6.1). conv2d_quantized uses it.
AccumulationModel conv2d_accumulation(const BackendProfile& profile,
                                      const QuantizedConv2dArgs& args);

// Requantization constants of every output channel under a profile.
std::vector<RequantChannel> conv2d_requant_channels(const BackendProfile& profile,
                                                    const QuantizedConv2dArgs& args);

// quantized::conv2d / conv2d_relu under a profile (accumulating with conv2d_accumulation):
// quint8 output bins.
std::vector<uint8_t> conv2d_quantized(const BackendProfile& profile,
                                      const QuantizedConv2dArgs& args);
// The same into caller's buffers (resized): output bins and the accumulator scratch.
void conv2d_quantized(const BackendProfile& profile, const QuantizedConv2dArgs& args,
                      std::vector<uint8_t>& out, std::vector<int32_t>& accumulators);

}  // namespace qparity
