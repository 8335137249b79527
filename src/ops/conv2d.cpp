#include "qparity/ops/conv2d.h"

#include "common/multiversion.h"
#include "qparity/numerics/span_kernels.h"

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

// 1x1 kernel, stride 1, no padding, no dilation: every output pixel reads the same pixel of
// each input channel of its group, so a plane-at-a-time loop does the reference's arithmetic.
bool is_pointwise(const Shape4& weight, const Conv2dGeometry& g) {
  return weight.h == 1 && weight.w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
         g.pad_w == 0;
}

// One output plane of the pointwise float conv with the channel count known at compile time,
// so each element is computed in one pass: the same operations as the reference, in its order.
template <int kChannels>
void pointwise_float_plane(const float* const* x, const float* w, const float* bias, bool relu,
                           float* y, size_t plane) {
  for (size_t p = 0; p < plane; ++p) {
    float sum = 0.0f;
    for (int c = 0; c < kChannels; ++c) sum += x[c][p] * w[c];
    if (bias != nullptr) sum += *bias;
    if (relu) sum = std::max(sum, 0.0f);
    y[p] = sum;
  }
}

// Fast pointwise float conv: per output element the same float operations, in the same order,
// as the reference (0, + x*w per channel, + bias, ReLU); proven identical in conv2d_test.cpp.
QPARITY_MULTIVERSION
void conv2d_float_pointwise(const FloatConv2dArgs& a, const Shape4& out, std::vector<float>& result) {
  const auto plane = static_cast<size_t>(out.h * out.w);
  const int64_t group_channels = a.input_shape.c / a.geometry.groups;
  const int64_t outputs_per_group = a.weight_shape.n / a.geometry.groups;
  std::vector<const float*> x(static_cast<size_t>(group_channels));
  for (int64_t n = 0; n < out.n; ++n) {
    for (int64_t m = 0; m < out.c; ++m) {
      float* y = result.data() + static_cast<size_t>(n * out.c + m) * plane;
      const int64_t first_channel = (m / outputs_per_group) * group_channels;
      for (int64_t cg = 0; cg < group_channels; ++cg) {
        x[static_cast<size_t>(cg)] =
            a.input.data() + static_cast<size_t>(n * a.input_shape.c + first_channel + cg) * plane;
      }
      const float* w = a.weight.data() + static_cast<size_t>(m * group_channels);
      const float* b = a.bias.empty() ? nullptr : &a.bias[static_cast<size_t>(m)];
      switch (group_channels) {
        case 1: pointwise_float_plane<1>(x.data(), w, b, a.relu, y, plane); continue;
        case 2: pointwise_float_plane<2>(x.data(), w, b, a.relu, y, plane); continue;
        case 3: pointwise_float_plane<3>(x.data(), w, b, a.relu, y, plane); continue;
        case 4: pointwise_float_plane<4>(x.data(), w, b, a.relu, y, plane); continue;
        default: break;
      }
      std::fill(y, y + plane, 0.0f);
      for (int64_t cg = 0; cg < group_channels; ++cg) {
        const float wc = w[cg];
        const float* xc = x[static_cast<size_t>(cg)];
        for (size_t p = 0; p < plane; ++p) y[p] += xc[p] * wc;
      }
      if (b != nullptr) {
        for (size_t p = 0; p < plane; ++p) y[p] += *b;
      }
      if (a.relu) {
        for (size_t p = 0; p < plane; ++p) y[p] = std::max(y[p], 0.0f);
      }
    }
  }
}

template <int kChannels>
void pointwise_accumulator_plane(const uint8_t* const* x, const int32_t* w, int32_t x_zp,
                                 uint32_t* sum, size_t plane) {
  for (size_t p = 0; p < plane; ++p) {
    uint32_t s = 0;
    for (int c = 0; c < kChannels; ++c) {
      s += static_cast<uint32_t>((static_cast<int32_t>(x[c][p]) - x_zp) * w[c]);
    }
    sum[p] = s;
  }
}

// Fast pointwise exact accumulation (eq. 6.1) in wrapping int32 lanes; proven identical.
QPARITY_MULTIVERSION
void conv2d_accumulators_pointwise(const QuantizedConv2dArgs& a, const Shape4& out,
                                   std::vector<int32_t>& acc) {
  const auto plane = static_cast<size_t>(out.h * out.w);
  const int64_t group_channels = a.input_shape.c / a.geometry.groups;
  const int64_t outputs_per_group = a.weight_shape.n / a.geometry.groups;
  const bool per_channel = a.weight_zero_points.size() > 1;
  const auto x_zp = static_cast<int32_t>(a.input_zero_point);
  std::vector<const uint8_t*> x(static_cast<size_t>(group_channels));
  std::vector<int32_t> w(static_cast<size_t>(group_channels));
  for (int64_t n = 0; n < out.n; ++n) {
    for (int64_t m = 0; m < out.c; ++m) {
      auto* sum = reinterpret_cast<uint32_t*>(acc.data()) + static_cast<size_t>(n * out.c + m) * plane;
      const auto w_zp = static_cast<int32_t>(a.weight_zero_points[per_channel ? static_cast<size_t>(m) : 0]);
      const int64_t first_channel = (m / outputs_per_group) * group_channels;
      for (int64_t cg = 0; cg < group_channels; ++cg) {
        w[static_cast<size_t>(cg)] = a.weight[static_cast<size_t>(m * group_channels + cg)] - w_zp;
        x[static_cast<size_t>(cg)] =
            a.input.data() + static_cast<size_t>(n * a.input_shape.c + first_channel + cg) * plane;
      }
      switch (group_channels) {
        case 1: pointwise_accumulator_plane<1>(x.data(), w.data(), x_zp, sum, plane); continue;
        case 2: pointwise_accumulator_plane<2>(x.data(), w.data(), x_zp, sum, plane); continue;
        case 3: pointwise_accumulator_plane<3>(x.data(), w.data(), x_zp, sum, plane); continue;
        case 4: pointwise_accumulator_plane<4>(x.data(), w.data(), x_zp, sum, plane); continue;
        default: break;
      }
      std::fill(sum, sum + plane, 0u);
      for (int64_t cg = 0; cg < group_channels; ++cg) {
        const int32_t wc = w[static_cast<size_t>(cg)];
        const uint8_t* xc = x[static_cast<size_t>(cg)];
        for (size_t p = 0; p < plane; ++p) {
          sum[p] += static_cast<uint32_t>((static_cast<int32_t>(xc[p]) - x_zp) * wc);
        }
      }
    }
  }
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
  if (is_pointwise(a.weight_shape, a.geometry) && !a.force_reference) {
    conv2d_float_pointwise(a, out, result);
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
  if (model == AccumulationModel::kExactInt32 && is_pointwise(a.weight_shape, a.geometry) &&
      !a.force_reference) {
    conv2d_accumulators_pointwise(a, out, acc);
    return;
  }
  const int64_t taps = a.weight_shape.h * a.weight_shape.w;
  const int64_t group_channels = a.weight_shape.c;
  // Raw u8*s8 products of one output (0 at padded taps) for the pair-saturating models;
  // indexed as each model's kernel orders its reduction.
  std::vector<int32_t> products(static_cast<size_t>(group_channels * taps), 0);
  size_t i = 0;
  for_each_output(out, [&](int64_t n, int64_t m, int64_t oh, int64_t ow) {
    const int64_t w_zp = a.weight_zero_points[per_channel ? static_cast<size_t>(m) : 0];
    int32_t sum = 0;
    switch (model) {
      case AccumulationModel::kExactInt32:
        // eq. 6.1: Σ (x - x_zp)(w - w_zp); padding stands for x_zp and adds nothing.
        for_each_tap(a.input_shape, a.weight_shape, a.geometry, n, m, oh, ow,
                     [&](int64_t, int64_t xi, int64_t wi) {
                       if (xi < 0) return;
                       const int64_t x = a.input[static_cast<size_t>(xi)] - a.input_zero_point;
                       const int64_t w = a.weight[static_cast<size_t>(wi)] - w_zp;
                       sum = wrap_add(sum, x * w);
                     });
        break;
      case AccumulationModel::kInt16PairSaturation:
      case AccumulationModel::kInt16GemmPairSaturation: {
        // eq. 6.5 / 6.6: raw u8*s8 products (weights have zero point 0), summed in pairs into
        // a saturating int16 (vpmaddubsw) before widening; the input zero point is applied as
        // an int32 compensation over the non-padded taps. 6.5 orders the reduction
        // (channel, tap), pairing channels (2j, 2j+1) at one tap; 6.6 orders it (tap, channel),
        // channel fastest, so consecutive pairs cross into the next tap when the group's
        // channel count is odd.
        const bool gemm = model == AccumulationModel::kInt16GemmPairSaturation;
        std::fill(products.begin(), products.end(), 0);
        int64_t weight_sum = 0;
        for_each_tap(a.input_shape, a.weight_shape, a.geometry, n, m, oh, ow,
                     [&](int64_t cg, int64_t xi, int64_t wi) {
                       const int64_t tap = wi % taps;
                       if (xi < 0) return;
                       const int64_t w = a.weight[static_cast<size_t>(wi)];
                       const int64_t k = gemm ? tap * group_channels + cg : cg * taps + tap;
                       products[static_cast<size_t>(k)] =
                           static_cast<int32_t>(a.input[static_cast<size_t>(xi)] * w);
                       weight_sum += w;
                     });
        if (gemm) {
          // eq. 6.6: pairs (k, k+1) along k = tap * C_g + c; an odd last product stands alone.
          for (size_t k = 0; k < products.size(); k += 2) {
            int64_t pair = products[k];
            if (k + 1 < products.size()) pair += products[k + 1];
            sum = wrap_add(sum, saturate_int16(pair));
          }
        } else {
          // eq. 6.5: pairs of channels (c, c+1) at each tap; an odd last channel stands alone.
          for (int64_t cg = 0; cg < group_channels; cg += 2) {
            for (int64_t tap = 0; tap < taps; ++tap) {
              int64_t pair = products[static_cast<size_t>(cg * taps + tap)];
              if (cg + 1 < group_channels) {
                pair += products[static_cast<size_t>((cg + 1) * taps + tap)];
              }
              sum = wrap_add(sum, saturate_int16(pair));
            }
          }
        }
        sum = wrap_add(sum, -a.input_zero_point * weight_sum);
        break;
      }
    }
    acc[i++] = sum;
  });
}

AccumulationModel conv2d_accumulation(const BackendProfile& profile,
                                      const QuantizedConv2dArgs& a) {
  const int64_t groups = a.geometry.groups;
  if (groups <= 0) return profile.accumulation;  // conv2d_output_shape reports the error
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
