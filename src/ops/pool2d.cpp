#include "qparity/ops/pool2d.h"

#include <algorithm>
#include <cmath>

#include "qparity/numerics/quantize.h"
#include "qparity/numerics/requantize.h"
#include <stdexcept>
#include <string>

namespace qparity {
namespace {

// ATen's pooling_output_shape: floor division (div_rtn) of the padded span, + 1; with ceil_mode
// the span is rounded up, but the last window must start inside the input or left padding.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation,
                    bool ceil_mode) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

template <typename T, typename Better>
void max_pool(std::span<const T> x, const Shape4& in, const Pool2dWindow& w, std::span<T> out,
              Better better, bool clamp_taps = false) {
  const Shape4 o = pool2d_output_shape(in, w);
  for (int64_t p = 0; p < in.n * in.c; ++p) {
    const T* plane = x.data() + p * in.h * in.w;
    T* dst = out.data() + p * o.h * o.w;
    for (int64_t oh = 0; oh < o.h; ++oh) {
      for (int64_t ow = 0; ow < o.w; ++ow) {
        bool any = false;
        T best{};
        for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
          int64_t ih = oh * w.stride_h - w.pad_h + kh * w.dilation_h;
          if (clamp_taps) ih = std::clamp<int64_t>(ih, 0, in.h - 1);
          if (ih < 0 || ih >= in.h) continue;
          for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
            int64_t iw = ow * w.stride_w - w.pad_w + kw * w.dilation_w;
            if (clamp_taps) iw = std::clamp<int64_t>(iw, 0, in.w - 1);
            if (iw < 0 || iw >= in.w) continue;
            const T v = plane[ih * in.w + iw];
            if (!any || better(v, best)) best = v;
            any = true;
          }
        }
        dst[oh * o.w + ow] = best;
      }
    }
  }
}

// An average window as ATen bounds it: [h0, h1) x [w0, w1) clipped to the input, and `pool`, its
// size clipped to the padded input only (what count_include_pad divides by).
struct AvgWindow {
  int64_t h0, h1, w0, w1, pool;
};

AvgWindow avg_window(const Shape4& in, const Pool2dWindow& w, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * w.stride_h - w.pad_h;
  const int64_t w0 = ow * w.stride_w - w.pad_w;
  const int64_t h1 = std::min(h0 + w.kernel_h, in.h + w.pad_h);
  const int64_t w1 = std::min(w0 + w.kernel_w, in.w + w.pad_w);
  return {std::max<int64_t>(h0, 0), std::min(h1, in.h), std::max<int64_t>(w0, 0), std::min(w1, in.w),
          (h1 - h0) * (w1 - w0)};
}

}  // namespace

Shape4 pool2d_output_shape(const Shape4& input, const Pool2dWindow& w, bool allow_empty) {
  if (w.kernel_h < 1 || w.kernel_w < 1 || w.stride_h < 1 || w.stride_w < 1 ||
      w.dilation_h < 1 || w.dilation_w < 1 || w.pad_h < 0 || w.pad_w < 0 ||
      2 * w.pad_h > w.kernel_h || 2 * w.pad_w > w.kernel_w) {
    throw std::invalid_argument("pooling window is invalid (kernel, stride, padding, dilation)");
  }
  // A window larger than the padded input leaves no output without ceil_mode and one with it.
  const Shape4 out{input.n, input.c,
                   pooled_size(input.h, w.kernel_h, w.pad_h, w.stride_h, w.dilation_h, w.ceil_mode),
                   pooled_size(input.w, w.kernel_w, w.pad_w, w.stride_w, w.dilation_w, w.ceil_mode)};
  if (out.h < 0 || out.w < 0 || (!allow_empty && (out.h < 1 || out.w < 1))) {
    throw std::invalid_argument("pooling output size is too small: the window is larger than the padded input (" +
                                std::to_string(input.h) + "x" + std::to_string(input.w) + ")");
  }
  return out;
}

void max_pool2d_float(std::span<const float> x, const Shape4& in, const Pool2dWindow& w,
                      std::span<float> out) {
  max_pool<float>(x, in, w, out, [](float v, float best) { return v > best || std::isnan(v); });
}

void max_pool2d_bins(std::span<const uint8_t> x, const Shape4& in, const Pool2dWindow& w,
                     std::span<uint8_t> out) {
  max_pool<uint8_t>(x, in, w, out, [](uint8_t v, uint8_t best) { return v > best; });
}

void max_pool2d_bins_qnnpack(std::span<const uint8_t> x, const Shape4& in, const Pool2dWindow& w,
                             std::span<uint8_t> out) {
  if (w.kernel_h * w.kernel_w == 1) throw std::invalid_argument("QNNPACK refuses 1x1 max pooling windows");
  max_pool<uint8_t>(x, in, w, out, [](uint8_t v, uint8_t best) { return v > best; }, true);
}

void avg_pool2d_float(std::span<const float> x, const Shape4& in, const Pool2dWindow& w,
                      bool count_include_pad, int64_t divisor_override, std::span<float> out) {
  const Shape4 o = pool2d_output_shape(in, w);
  for (int64_t p = 0; p < in.n * in.c; ++p) {
    const float* plane = x.data() + p * in.h * in.w;
    for (int64_t oh = 0; oh < o.h; ++oh) {
      for (int64_t ow = 0; ow < o.w; ++ow) {
        const AvgWindow aw = avg_window(in, w, oh, ow);
        const int64_t padded_count = aw.pool;
        float sum = 0.0f;
        for (int64_t ih = aw.h0; ih < aw.h1; ++ih) {
          for (int64_t iw = aw.w0; iw < aw.w1; ++iw) sum += plane[ih * in.w + iw];
        }
        const int64_t divisor = divisor_override > 0 ? divisor_override
                                : count_include_pad ? padded_count
                                                    : (aw.h1 - aw.h0) * (aw.w1 - aw.w0);
        out[static_cast<size_t>((p * o.h + oh) * o.w + ow)] = sum / static_cast<float>(divisor);
      }
    }
  }
}

void adaptive_avg_pool2d_float(std::span<const float> x, const Shape4& in, int64_t out_h,
                               int64_t out_w, std::span<float> out) {
  for (int64_t p = 0; p < in.n * in.c; ++p) {
    const float* plane = x.data() + p * in.h * in.w;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const int64_t h0 = oh * in.h / out_h;
      const int64_t h1 = ((oh + 1) * in.h + out_h - 1) / out_h;
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const int64_t w0 = ow * in.w / out_w;
        const int64_t w1 = ((ow + 1) * in.w + out_w - 1) / out_w;
        float sum = 0.0f;
        for (int64_t ih = h0; ih < h1; ++ih) {
          for (int64_t iw = w0; iw < w1; ++iw) sum += plane[ih * in.w + iw];
        }
        out[static_cast<size_t>((p * out_h + oh) * out_w + ow)] =
            sum / static_cast<float>((h1 - h0) * (w1 - w0));
      }
    }
  }
}

bool aten_channels_last(const Shape4& shape, bool stored_channels_last) {
  return stored_channels_last || (shape.h == 1 && shape.w == 1) || shape.c == 1;
}

QuantizedAvgPoolKernel quantized_adaptive_pool_kernel(bool qnnpack_engine, const Shape4& in, int64_t out_h,
                                                      int64_t out_w, bool channels_last_input) {
  const bool resizes = in.h != out_h || in.w != out_w;
  if (qnnpack_engine && resizes && in.h % out_h == 0 && in.w % out_w == 0) return QuantizedAvgPoolKernel::kQnnpack;
  if (aten_channels_last(in, channels_last_input)) return QuantizedAvgPoolKernel::kAtenChannelsLast;
  return QuantizedAvgPoolKernel::kAtenContiguous;
}

QuantizedAvgPoolKernel quantized_avg_pool_kernel(bool qnnpack_engine, const Pool2dWindow& w,
                                                 bool channels_last_input) {
  if (qnnpack_engine && !w.ceil_mode) return QuantizedAvgPoolKernel::kQnnpack;
  return channels_last_input ? QuantizedAvgPoolKernel::kAtenChannelsLast : QuantizedAvgPoolKernel::kAtenContiguous;
}

void quantized_avg_pool2d(const QuantizedAvgPoolArgs& a, QuantizedAvgPoolKernel kernel, std::span<uint8_t> out) {
  const Shape4& in = a.input_shape;
  const Pool2dWindow& w = a.window;
  const Shape4 o = pool2d_output_shape(in, w, kernel != QuantizedAvgPoolKernel::kQnnpack);
  const int64_t taps = w.kernel_h * w.kernel_w;
  if (kernel == QuantizedAvgPoolKernel::kQnnpack && taps == 1) {
    throw std::invalid_argument("QNNPACK refuses 1x1 average pooling windows");
  }
  const auto zp = static_cast<int32_t>(a.zero_point);
  // eq. 6.19a: QNNPACK's requantization scale for K taps.
  const float qnnpack_scale = a.scale / (a.scale * static_cast<float>(taps));
  constexpr int64_t kFloatLanes = 8;  // the NHWC kernel's vector lanes (AVX2)
  const int64_t vector_channels = in.c / kFloatLanes * kFloatLanes;
  for (int64_t p = 0; p < in.n * in.c; ++p) {
    const int64_t channel = p % in.c;
    const uint8_t* plane = a.input.data() + p * in.h * in.w;
    for (int64_t oh = 0; oh < o.h; ++oh) {
      for (int64_t ow = 0; ow < o.w; ++ow) {
        const AvgWindow aw = avg_window(in, w, oh, ow);
        const int64_t pool = aw.pool;
        const int64_t inside = (aw.h1 - aw.h0) * (aw.w1 - aw.w0);
        int64_t sum = 0;
        for (int64_t ih = aw.h0; ih < aw.h1; ++ih) {
          for (int64_t iw = aw.w0; iw < aw.w1; ++iw) sum += plane[ih * in.w + iw];
        }
        const int64_t divisor = a.divisor_override > 0 ? a.divisor_override : a.count_include_pad ? pool : inside;
        const auto acc = static_cast<int32_t>(sum - inside * zp);
        int32_t y = 0;
        switch (kernel) {
          case QuantizedAvgPoolKernel::kQnnpack: {
            // eq. 6.19a: padded taps read zp and add 0; always divides by K; zp after rounding.
            const int32_t r = convert_to_int32_x86(static_cast<float>(acc) * qnnpack_scale);
            y = std::clamp(saturate_int16(saturate_int16(r) + zp), 0, 255);
            break;
          }
          case QuantizedAvgPoolKernel::kAtenContiguous: {
            // eq. 6.19b: the zero point is added in float before rounding.
            const auto mult = static_cast<float>(1.0 / static_cast<double>(divisor));
            const float v = static_cast<float>(acc) * mult + static_cast<float>(zp);
            y = std::clamp(convert_to_int32_x86(v), 0, 255);
            break;
          }
          case QuantizedAvgPoolKernel::kAtenChannelsLast: {
            // eq. 6.19c: vector lanes quantize with mult, the channel tail with quantize_val(1 / mult).
            const float mult = 1.0f / static_cast<float>(divisor);
            if (channel < vector_channels) {
              const int64_t q = static_cast<int64_t>(convert_to_int32_x86(static_cast<float>(acc) * mult)) + zp;
              y = static_cast<int32_t>(std::clamp<int64_t>(q, 0, 255));
            } else {
              y = static_cast<int32_t>(quantize_value(static_cast<float>(acc), {1.0f / mult, a.zero_point, {0, 255}}));
            }
            break;
          }
        }
        out[static_cast<size_t>((p * o.h + oh) * o.w + ow)] = static_cast<uint8_t>(y);
      }
    }
  }
}

namespace {

// ATen's adaptive window bounds, computed through float as the kernel does.
int64_t window_start(int64_t o, int64_t in, int64_t out) {
  return static_cast<int64_t>(std::floor(static_cast<float>(o * in) / static_cast<float>(out)));
}
int64_t window_end(int64_t o, int64_t in, int64_t out) {
  return static_cast<int64_t>(std::ceil(static_cast<float>((o + 1) * in) / static_cast<float>(out)));
}

}  // namespace

void quantized_adaptive_avg_pool2d(const QuantizedAdaptivePoolArgs& a, QuantizedAvgPoolKernel kernel,
                                   std::span<uint8_t> out) {
  const Shape4& in = a.input_shape;
  const auto zp = static_cast<int32_t>(a.zero_point);
  for (int64_t p = 0; p < in.n * in.c; ++p) {
    const uint8_t* plane = a.input.data() + p * in.h * in.w;
    for (int64_t oh = 0; oh < a.out_h; ++oh) {
      const int64_t h0 = window_start(oh, in.h, a.out_h);
      const int64_t h1 = window_end(oh, in.h, a.out_h);
      for (int64_t ow = 0; ow < a.out_w; ++ow) {
        const int64_t w0 = window_start(ow, in.w, a.out_w);
        const int64_t w1 = window_end(ow, in.w, a.out_w);
        const int64_t size = (h1 - h0) * (w1 - w0);
        int64_t sum = 0;
        for (int64_t ih = h0; ih < h1; ++ih) {
          for (int64_t iw = w0; iw < w1; ++iw) sum += plane[ih * in.w + iw];
        }
        int32_t y = 0;
        switch (kernel) {
          case QuantizedAvgPoolKernel::kQnnpack: {
            // eq. 6.8a: scale = f(s / f(s * f(K))), y = clamp(sat16(RNE(f(f(acc) * scale))) + zp).
            const float scale = a.scale / (a.scale * static_cast<float>(size));
            const auto acc = static_cast<int32_t>(sum - size * zp);
            const int32_t r = convert_to_int32_x86(static_cast<float>(acc) * scale);
            y = std::clamp(saturate_int16(saturate_int16(r) + zp), 0, 255);
            break;
          }
          case QuantizedAvgPoolKernel::kAtenChannelsLast: {
            // eq. 6.8b: mult = f(f(s / s) / size), quantize_val(f(1 / mult), zp, -zp*size + Σx).
            const float mult = (a.scale / a.scale) / static_cast<float>(size);
            const QuantGrid g{1.0f / mult, a.zero_point, {0, 255}};
            y = static_cast<int32_t>(quantize_value(static_cast<float>(sum - size * zp), g));
            break;
          }
          case QuantizedAvgPoolKernel::kAtenContiguous: {
            // eq. 6.8c: r = f(f(1 / kH) / kW), y = uint8(RNE(f(f(Σx) * r))).
            const float r = (1.0f / static_cast<float>(h1 - h0)) / static_cast<float>(w1 - w0);
            y = convert_to_int32_x86(static_cast<float>(sum) * r) & 0xFF;
            break;
          }
        }
        out[static_cast<size_t>((p * a.out_h + oh) * a.out_w + ow)] = static_cast<uint8_t>(y);
      }
    }
  }
}

}  // namespace qparity
