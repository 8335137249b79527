#include "qparity/ops/conv2d.h"

#include "qparity/numerics/span_kernels.h"
#include "qparity/ops/conv2d_fast.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace qparity {
namespace {

// Index of element (n, c, h, w) in a contiguous NCHW tensor.
int64_t offset(const Shape4& s, int64_t n, int64_t c, int64_t h, int64_t w) {
  return ((n * s.c + c) * s.h + h) * s.w + w;
}

// Visits every (output index, input index or -1 for padding, weight index) triple of
// output (n, m, oh, ow) in (channel, kh, kw) order.
template <typename Visit>
void for_each_tap(const Shape4& in, const Shape4& wt, const Conv2dGeometry& g, int64_t n,
                  int64_t m, int64_t oh, int64_t ow, Visit&& visit) {
  const int64_t group_channels = in.c / g.groups;
  const int64_t outputs_per_group = wt.n / g.groups;
  const int64_t group = m / outputs_per_group;
  for (int64_t cg = 0; cg < group_channels; ++cg) {
    const int64_t c = group * group_channels + cg;
    for (int64_t kh = 0; kh < wt.h; ++kh) {
      const int64_t ih = oh * g.stride_h - g.pad_h + kh * g.dilation_h;
      for (int64_t kw = 0; kw < wt.w; ++kw) {
        const int64_t iw = ow * g.stride_w - g.pad_w + kw * g.dilation_w;
        const bool inside = ih >= 0 && ih < in.h && iw >= 0 && iw < in.w;
        visit(cg, inside ? offset(in, n, c, ih, iw) : -1, offset(wt, m, cg, kh, kw));
      }
    }
  }
}

template <typename PerOutput>
void for_each_output(const Shape4& out, PerOutput&& per_output) {
  for (int64_t n = 0; n < out.n; ++n)
    for (int64_t m = 0; m < out.c; ++m)
      for (int64_t oh = 0; oh < out.h; ++oh)
        for (int64_t ow = 0; ow < out.w; ++ow) per_output(n, m, oh, ow);
}

struct FloatConvSums {
  float sum = 0.0f, with_bias = 0.0f, output = 0.0f;
};

// One output of the reference float conv: products summed in float in tap order (channel, kh,
// kw; padding taps skipped), then the bias, then the ReLU. on_tap(input index, weight index) sees
// every product in summation order, which is how the trace shows the kernel's own arithmetic.
template <typename OnTap>
FloatConvSums float_conv_element(const FloatConv2dArgs& a, int64_t n, int64_t m, int64_t oh, int64_t ow,
                                 OnTap&& on_tap) {
  FloatConvSums s;
  for_each_tap(a.input_shape, a.weight_shape, a.geometry, n, m, oh, ow, [&](int64_t, int64_t xi, int64_t wi) {
    if (xi < 0) return;
    on_tap(xi, wi);
    s.sum += a.input[static_cast<size_t>(xi)] * a.weight[static_cast<size_t>(wi)];
  });
  s.with_bias = a.bias.empty() ? s.sum : s.sum + a.bias[static_cast<size_t>(m)];
  s.output = a.relu ? std::max(s.with_bias, 0.0f) : s.with_bias;
  return s;
}

void check_sizes(size_t have, int64_t want, const char* what) {
  if (static_cast<int64_t>(have) != want) {
    throw std::invalid_argument(std::string("conv2d: ") + what + " has " + std::to_string(have) +
                                " elements, shape needs " + std::to_string(want));
  }
}

int32_t wrap_add(int32_t a, int64_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}

// How a pair-saturating kernel orders the u8*s8 products of one output before vpmaddubsw sums
// them in pairs, and what a padded tap reads.
struct PairModel {
  enum class Order {
    kChannelsAtTap,   // channels (2j, 2j+1) of the group at one tap (eq. 6.5, 6.5b)
    kAlongReduction,  // k = tap * C_g + channel, pairs (2j, 2j+1) of k (eq. 6.6, 6.6b)
    kTapsPerChannel,  // taps (2p, 2p+1) in (kh, kw) order within one channel (eq. 6.6c)
  };
  Order order = Order::kChannelsAtTap;
  // FBGEMM fills padded taps with the bin x_zp and multiplies it like any other; oneDNN's
  // kernels leave padded taps out of the products and of the zero-point terms.
  bool padding_reads_zero_point = false;
};

PairModel pair_model_of(AccumulationModel model) {
  using Order = PairModel::Order;
  switch (model) {
    case AccumulationModel::kExactInt32:  // has no pairs; conv2d_accumulators never asks
    case AccumulationModel::kInt16PairSaturation:
      return {Order::kChannelsAtTap, false};
    case AccumulationModel::kInt16GemmPairSaturation:
      return {Order::kAlongReduction, false};
    case AccumulationModel::kFbgemmInt16GemmPairs:
      return {Order::kAlongReduction, true};
    case AccumulationModel::kFbgemmInt16ChannelPairs:
      return {Order::kChannelsAtTap, true};
    case AccumulationModel::kFbgemmInt16TapPairs:
      return {Order::kTapsPerChannel, true};
  }
  return {};
}

// Σ sat16(p_a + p_b) over the pairs `order` forms from `products` (indexed cg * taps + tap for
// the per-tap orders, tap * C_g + cg along the reduction); an unpaired last product stands alone.
int32_t sum_saturated_pairs(const std::vector<int32_t>& products, PairModel::Order order,
                            int64_t group_channels, int64_t taps) {
  const auto at = [&](int64_t k) { return static_cast<int64_t>(products[static_cast<size_t>(k)]); };
  int32_t sum = 0;
  switch (order) {
    case PairModel::Order::kAlongReduction:
      for (int64_t k = 0; k < group_channels * taps; k += 2) {
        sum =
            wrap_add(sum, saturate_int16(at(k) + (k + 1 < group_channels * taps ? at(k + 1) : 0)));
      }
      break;
    case PairModel::Order::kChannelsAtTap:
      for (int64_t cg = 0; cg < group_channels; cg += 2) {
        for (int64_t tap = 0; tap < taps; ++tap) {
          const int64_t second = cg + 1 < group_channels ? at((cg + 1) * taps + tap) : 0;
          sum = wrap_add(sum, saturate_int16(at(cg * taps + tap) + second));
        }
      }
      break;
    case PairModel::Order::kTapsPerChannel:
      for (int64_t cg = 0; cg < group_channels; ++cg) {
        for (int64_t tap = 0; tap < taps; tap += 2) {
          const int64_t second = tap + 1 < taps ? at(cg * taps + tap + 1) : 0;
          sum = wrap_add(sum, saturate_int16(at(cg * taps + tap) + second));
        }
      }
      break;
  }
  return sum;
}

// One output of a pair-saturating model: raw u8 bins times raw s8 weights summed in saturating
// pairs (S), then both zero points applied in int32 over the taps T that take part, as FBGEMM's
// col_offsets (Σw - w_zp·|T|) and row_offsets (Σx) do:
//   acc = S - x_zp·Σ_T w - w_zp·Σ_T x + |T|·x_zp·w_zp   (mod 2^32)
// which is Σ_T (x - x_zp)(w - w_zp) whenever no pair saturates.
int32_t pair_saturated_output(const QuantizedConv2dArgs& a, const PairModel& pairs, int64_t n,
                              int64_t m, int64_t oh, int64_t ow, int64_t w_zp,
                              std::vector<int32_t>& products) {
  const int64_t taps = a.weight_shape.h * a.weight_shape.w;
  const int64_t group_channels = a.weight_shape.c;
  const bool along_reduction = pairs.order == PairModel::Order::kAlongReduction;
  std::fill(products.begin(), products.end(), 0);
  int64_t weight_sum = 0;
  int64_t input_sum = 0;
  int64_t count = 0;
  for_each_tap(a.input_shape, a.weight_shape, a.geometry, n, m, oh, ow,
               [&](int64_t cg, int64_t xi, int64_t wi) {
                 if (xi < 0 && !pairs.padding_reads_zero_point) return;
                 const int64_t x = xi < 0 ? a.input_zero_point : a.input[static_cast<size_t>(xi)];
                 const int64_t w = a.weight[static_cast<size_t>(wi)];
                 const int64_t tap = wi % taps;
                 const int64_t k = along_reduction ? tap * group_channels + cg : cg * taps + tap;
                 products[static_cast<size_t>(k)] = static_cast<int32_t>(x * w);
                 weight_sum += w;
                 input_sum += x;
                 ++count;
               });
  int32_t sum = sum_saturated_pairs(products, pairs.order, group_channels, taps);
  sum = wrap_add(sum, -a.input_zero_point * weight_sum);
  sum = wrap_add(sum, -w_zp * input_sum);
  return wrap_add(sum, count * a.input_zero_point * w_zp);
}

}  // namespace

Shape4 conv2d_output_shape(const Shape4& input, const Shape4& weight, const Conv2dGeometry& g) {
  if (g.groups <= 0 || input.c % g.groups != 0 || weight.n % g.groups != 0 ||
      weight.c * g.groups != input.c) {
    throw std::invalid_argument("conv2d: channels " + std::to_string(input.c) +
                                " and weight shape do not match groups " +
                                std::to_string(g.groups));
  }
  if (g.stride_h <= 0 || g.stride_w <= 0 || g.dilation_h <= 0 || g.dilation_w <= 0 ||
      g.pad_h < 0 || g.pad_w < 0) {
    throw std::invalid_argument("conv2d: stride and dilation must be positive, padding >= 0");
  }
  const int64_t span_h = g.dilation_h * (weight.h - 1) + 1;
  const int64_t span_w = g.dilation_w * (weight.w - 1) + 1;
  const int64_t oh = (input.h + 2 * g.pad_h - span_h) / g.stride_h + 1;
  const int64_t ow = (input.w + 2 * g.pad_w - span_w) / g.stride_w + 1;
  if (input.h + 2 * g.pad_h < span_h || input.w + 2 * g.pad_w < span_w) {
    throw std::invalid_argument("conv2d: kernel larger than padded input");
  }
  return {input.n, weight.n, oh, ow};
}

std::vector<float> conv2d_float(const FloatConv2dArgs& a) {
  std::vector<float> result;
  conv2d_float(a, result);
  return result;
}

void conv2d_float(const FloatConv2dArgs& a, std::vector<float>& result) {
  const Shape4 out = conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  check_sizes(a.input.size(), a.input_shape.numel(), "input");
  check_sizes(a.weight.size(), a.weight_shape.numel(), "weight");
  if (!a.bias.empty()) check_sizes(a.bias.size(), a.weight_shape.n, "bias");
  result.resize(static_cast<size_t>(out.numel()));
  if (!a.force_reference) {
    conv2d_float_fast(a, result);
    return;
  }
  size_t i = 0;
  for_each_output(out, [&](int64_t n, int64_t m, int64_t oh, int64_t ow) {
    result[i++] = float_conv_element(a, n, m, oh, ow, [](int64_t, int64_t) {}).output;
  });
}

FloatConv2dTrace conv2d_float_trace(const FloatConv2dArgs& a, int64_t n, int64_t m, int64_t oh, int64_t ow) {
  const Shape4 out = conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  if (n < 0 || m < 0 || oh < 0 || ow < 0 || n >= out.n || m >= out.c || oh >= out.h || ow >= out.w) {
    throw std::invalid_argument("conv2d_float_trace: the element lies outside the output");
  }
  FloatConv2dTrace t;
  const FloatConvSums sums = float_conv_element(a, n, m, oh, ow, [&](int64_t xi, int64_t wi) {
    t.taps.push_back({xi, wi, a.input[static_cast<size_t>(xi)], a.weight[static_cast<size_t>(wi)]});
  });
  t.sum = sums.sum;
  t.with_bias = sums.with_bias;
  t.output = sums.output;
  return t;
}

std::vector<int32_t> conv2d_accumulators(const QuantizedConv2dArgs& a, AccumulationModel model) {
  std::vector<int32_t> acc;
  conv2d_accumulators(a, model, acc);
  return acc;
}

void conv2d_accumulators(const QuantizedConv2dArgs& a, AccumulationModel model,
                         std::vector<int32_t>& acc) {
  const Shape4 out = conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  check_sizes(a.input.size(), a.input_shape.numel(), "input");
  check_sizes(a.weight.size(), a.weight_shape.numel(), "weight");
  const bool per_channel = a.weight_zero_points.size() > 1;
  acc.resize(static_cast<size_t>(out.numel()));
  if (!a.force_reference && conv2d_accumulators_fast(a, model, preferred_kernel_isa(), acc)) {
    return;
  }
  const int64_t taps = a.weight_shape.h * a.weight_shape.w;
  const int64_t group_channels = a.weight_shape.c;
  const PairModel pairs = pair_model_of(model);
  // Raw u8*s8 products of one output for the pair-saturating models, indexed as each model's
  // kernel orders its reduction.
  std::vector<int32_t> products(static_cast<size_t>(group_channels * taps), 0);
  size_t i = 0;
  for_each_output(out, [&](int64_t n, int64_t m, int64_t oh, int64_t ow) {
    const int64_t w_zp = a.weight_zero_points[per_channel ? static_cast<size_t>(m) : 0];
    int32_t sum = 0;
    if (model == AccumulationModel::kExactInt32) {
      // eq. 6.1: Σ (x - x_zp)(w - w_zp); padding stands for x_zp and adds nothing.
      for_each_tap(a.input_shape, a.weight_shape, a.geometry, n, m, oh, ow,
                   [&](int64_t, int64_t xi, int64_t wi) {
                     if (xi < 0) return;
                     const int64_t x = a.input[static_cast<size_t>(xi)] - a.input_zero_point;
                     const int64_t w = a.weight[static_cast<size_t>(wi)] - w_zp;
                     sum = wrap_add(sum, x * w);
                   });
    } else {
      sum = pair_saturated_output(a, pairs, n, m, oh, ow, w_zp, products);
    }
    acc[i++] = sum;
  });
}

std::string_view to_string(FbgemmConvPath path) {
  switch (path) {
    case FbgemmConvPath::kDepthwise:
      return "depthwise";
    case FbgemmConvPath::kGroupwise:
      return "groupwise";
    case FbgemmConvPath::kPointwise:
      return "pointwise";
    case FbgemmConvPath::kIm2col:
      return "im2col";
  }
  return "?";
}

namespace {

// takeDepthWiseFastPath (src/FbgemmConv.cc:17-52) for 2-D convs with qparity's symmetric pads.
bool fbgemm_takes_depthwise(const Shape4& input, const Shape4& weight, const Conv2dGeometry& g) {
  const auto stride_ok = [](int64_t s) { return s == 1 || s == 2; };
  const int64_t k = weight.h;
  return g.groups == input.c && (weight.n == g.groups || weight.n == 2 * g.groups) &&
         g.groups % 8 == 0 && stride_ok(g.stride_h) && stride_ok(g.stride_w) && weight.w == k &&
         (k == 3 || k == 5 || k == 7) && g.dilation_h == 1 && g.dilation_w == 1 &&
         g.pad_h == (k - 1) / 2 && g.pad_w == (k - 1) / 2;
}

// fbgemmOptimizedGConv (src/Fbgemm.cc:209-252) with numOfGroupsTogether
// (src/PackWeightMatrixForGConv.cc:52-70): a 256-bit (AVX2) or 512-bit register of weights must
// hold at least one group's output channels times max(C_g, 4) bytes.
bool fbgemm_takes_groupwise(FbgemmIsa isa, const Shape4& input, const Shape4& weight,
                            const Conv2dGeometry& g) {
  const int64_t in_per_group = input.c / g.groups;
  const int64_t out_per_group = weight.n / g.groups;
  const int64_t register_bytes = isa == FbgemmIsa::kAvx2 ? 32 : 64;
  const int64_t together =
      std::max<int64_t>(register_bytes / out_per_group / std::max<int64_t>(in_per_group, 4), 1);
  const bool channels_ok =
      in_per_group == out_per_group &&
      (in_per_group == 2 || in_per_group == 4 || in_per_group == 8 || in_per_group == 16);
  const bool strides_ok =
      (g.stride_h == 1 && g.stride_w == 1) || (g.stride_h == 2 && g.stride_w == 2);
  return channels_ok && g.groups >= together && weight.h == 3 && weight.w == 3 && g.pad_h == 1 &&
         g.pad_w == 1 && g.dilation_h == 1 && g.dilation_w == 1 && strides_ok;
}

}  // namespace

FbgemmConvPath fbgemm_conv_path(FbgemmIsa isa, const Shape4& input, const Shape4& weight,
                                const Conv2dGeometry& g) {
  if (g.groups <= 0) return FbgemmConvPath::kIm2col;  // conv2d_output_shape reports the error
  if (fbgemm_takes_depthwise(input, weight, g)) return FbgemmConvPath::kDepthwise;
  if (fbgemm_takes_groupwise(isa, input, weight, g)) return FbgemmConvPath::kGroupwise;
  // takePointWiseFastPath: kernel, strides and dilations all 1, no padding.
  if (weight.h == 1 && weight.w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 &&
      g.dilation_w == 1 && g.pad_h == 0 && g.pad_w == 0) {
    return FbgemmConvPath::kPointwise;
  }
  return FbgemmConvPath::kIm2col;
}

AccumulationModel conv2d_accumulation(const BackendProfile& profile,
                                      const QuantizedConv2dArgs& a) {
  if (profile.accumulation_override) return *profile.accumulation_override;
  const int64_t groups = a.geometry.groups;
  if (groups <= 0) return profile.accumulation;  // conv2d_output_shape reports the error
  if (profile.fbgemm_isa) {
    const FbgemmIsa isa = *profile.fbgemm_isa;
    const bool vnni = isa == FbgemmIsa::kAvx512Vnni;
    switch (fbgemm_conv_path(isa, a.input_shape, a.weight_shape, a.geometry)) {
      case FbgemmConvPath::kDepthwise:
        // The JIT depthwise kernel is AVX2 code on every CPU: vpmaddubsw on tap pairs.
        return AccumulationModel::kFbgemmInt16TapPairs;
      case FbgemmConvPath::kGroupwise:
        return vnni ? AccumulationModel::kExactInt32 : AccumulationModel::kFbgemmInt16ChannelPairs;
      case FbgemmConvPath::kPointwise:
      case FbgemmConvPath::kIm2col:
        return vnni ? AccumulationModel::kExactInt32 : AccumulationModel::kFbgemmInt16GemmPairs;
    }
  }
  return conv_accumulation(profile, groups, a.weight_shape.c, a.weight_shape.n / groups);
}

std::vector<RequantChannel> conv2d_requant_channels(const BackendProfile& profile,
                                                    const QuantizedConv2dArgs& a) {
  const int64_t channels = a.weight_shape.n;
  if (a.weight_scales.empty() || a.weight_scales.size() != a.weight_zero_points.size() ||
      (a.weight_scales.size() != 1 && static_cast<int64_t>(a.weight_scales.size()) != channels)) {
    throw std::invalid_argument("conv2d: need 1 or " + std::to_string(channels) +
                                " weight scales and zero points");
  }
  if (!a.bias.empty()) check_sizes(a.bias.size(), channels, "bias");
  std::vector<RequantChannel> result;
  result.reserve(static_cast<size_t>(channels));
  for (int64_t m = 0; m < channels; ++m) {
    const size_t wq = a.weight_scales.size() == 1 ? 0 : static_cast<size_t>(m);
    if (profile.requires_zero_weight_zero_point && a.weight_zero_points[wq] != 0) {
      throw std::invalid_argument(profile.name + ": weight zero point must be 0, got " +
                                  std::to_string(a.weight_zero_points[wq]));
    }
    const RequantInputs in{
        .input_scale = a.input_scale,
        .weight_scale = a.weight_scales[wq],
        .weight_per_channel = a.weight_per_channel,
        .output_scale = a.output_scale,
        .output_zero_point = a.output_zero_point,
        .bias = a.bias.empty() ? 0.0f : a.bias[static_cast<size_t>(m)],
        .has_bias = !a.bias.empty(),
        .relu = a.relu,
        .per_tensor_bias_add = profile.per_tensor_bias_add,
    };
    result.push_back(prepare_requant(profile.requant, in));
  }
  if (profile.checks_padded_unit_weight_scale) {
    // The padding channels (weight scale 1.0) pass the same check; their constants are unused.
    (void)prepare_requant(profile.requant, {.input_scale = a.input_scale,
                                            .weight_scale = 1.0f,
                                            .output_scale = a.output_scale,
                                            .output_zero_point = a.output_zero_point,
                                            .relu = a.relu});
  }
  return result;
}

std::vector<uint8_t> conv2d_quantized(const BackendProfile& profile,
                                      const QuantizedConv2dArgs& a) {
  std::vector<uint8_t> result;
  std::vector<int32_t> acc;
  conv2d_quantized(profile, a, result, acc);
  return result;
}

void conv2d_quantized(const BackendProfile& profile, const QuantizedConv2dArgs& a,
                      std::vector<uint8_t>& result, std::vector<int32_t>& acc) {
  const std::vector<RequantChannel> channels = conv2d_requant_channels(profile, a);
  conv2d_accumulators(a, conv2d_accumulation(profile, a), acc);
  const Shape4 out = conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  const auto plane = static_cast<size_t>(out.h * out.w);
  result.resize(acc.size());
  const std::span<const int32_t> all(acc);
  for (size_t start = 0; start < acc.size(); start += plane) {
    const RequantChannel& channel = channels[(start / plane) % static_cast<size_t>(out.c)];
    requantize_span(all.subspan(start, plane), channel, std::span(result).subspan(start, plane));
  }
}

}  // namespace qparity
