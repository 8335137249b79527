#include "qparity/ops/conv2d.h"

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

void check_sizes(size_t have, int64_t want, const char* what) {
  if (static_cast<int64_t>(have) != want) {
    throw std::invalid_argument(std::string("conv2d: ") + what + " has " + std::to_string(have) +
                                " elements, shape needs " + std::to_string(want));
  }
}

int32_t wrap_add(int32_t a, int64_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
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
  const Shape4 out = conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  check_sizes(a.input.size(), a.input_shape.numel(), "input");
  check_sizes(a.weight.size(), a.weight_shape.numel(), "weight");
  if (!a.bias.empty()) check_sizes(a.bias.size(), a.weight_shape.n, "bias");
  std::vector<float> result(static_cast<size_t>(out.numel()));
  size_t i = 0;
  for_each_output(out, [&](int64_t n, int64_t m, int64_t oh, int64_t ow) {
    float sum = 0.0f;
    for_each_tap(a.input_shape, a.weight_shape, a.geometry, n, m, oh, ow,
                 [&](int64_t, int64_t xi, int64_t wi) {
                   if (xi >= 0) sum += a.input[static_cast<size_t>(xi)] * a.weight[static_cast<size_t>(wi)];
                 });
    if (!a.bias.empty()) sum += a.bias[static_cast<size_t>(m)];
    if (a.relu) sum = std::max(sum, 0.0f);
    result[i++] = sum;
  });
  return result;
}

std::vector<int32_t> conv2d_accumulators(const QuantizedConv2dArgs& a, AccumulationModel model) {
  const Shape4 out = conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  check_sizes(a.input.size(), a.input_shape.numel(), "input");
  check_sizes(a.weight.size(), a.weight_shape.numel(), "weight");
  const bool per_channel = a.weight_zero_points.size() > 1;
  std::vector<int32_t> acc(static_cast<size_t>(out.numel()));
  const int64_t taps = a.weight_shape.h * a.weight_shape.w;
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
      // eq. 6.5: products of input channels (2j, 2j+1) at one tap are summed into a
      // saturating int16 (vpmaddubsw) before widening; the input zero point is applied as
      // an int32 compensation over the non-padded taps. Weights must have zero point 0.
      std::vector<int32_t> tap_products(static_cast<size_t>(a.weight_shape.c * taps), 0);
      int64_t weight_sum = 0;
      for_each_tap(a.input_shape, a.weight_shape, a.geometry, n, m, oh, ow,
                   [&](int64_t cg, int64_t xi, int64_t wi) {
                     const int64_t tap = wi % taps;
                     if (xi < 0) return;
                     const int64_t w = a.weight[static_cast<size_t>(wi)];
                     tap_products[static_cast<size_t>(cg * taps + tap)] =
                         static_cast<int32_t>(a.input[static_cast<size_t>(xi)] * w);
                     weight_sum += w;
                   });
      for (int64_t cg = 0; cg < a.weight_shape.c; cg += 2) {
        for (int64_t tap = 0; tap < taps; ++tap) {
          int64_t pair = tap_products[static_cast<size_t>(cg * taps + tap)];
          if (cg + 1 < a.weight_shape.c) pair += tap_products[static_cast<size_t>((cg + 1) * taps + tap)];
          sum = wrap_add(sum, saturate_int16(pair));
        }
      }
      sum = wrap_add(sum, -a.input_zero_point * weight_sum);
    }
    acc[i++] = sum;
  });
  return acc;
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
  return result;
}

std::vector<uint8_t> conv2d_quantized(const BackendProfile& profile,
                                      const QuantizedConv2dArgs& a) {
  const std::vector<RequantChannel> channels = conv2d_requant_channels(profile, a);
  const std::vector<int32_t> acc = conv2d_accumulators(a, profile.accumulation);
  const Shape4 out = conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  const int64_t plane = out.h * out.w;
  std::vector<uint8_t> result(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) {
    const auto m = static_cast<size_t>((static_cast<int64_t>(i) / plane) % out.c);
    result[i] = requantize(acc[i], channels[m]);
  }
  return result;
}

}  // namespace qparity
