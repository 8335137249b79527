// Fast float conv: conv2d_float's bits. Each output still sums its products in float, one
// rounding per product and per addition (no FMA: -ffp-contract=off), starting from +0.0f, in
// (channel, kh, kw) order with the padded taps skipped, then adds the bias and applies the ReLU.
// What changes is only which outputs are computed side by side: a chunk of 8 outputs of one
// row for 4 output channels, accumulated in registers. Padded taps are skipped, never added as
// 0·w, because 0·inf is NaN.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "common/multiversion.h"
#include "qparity/ops/conv2d_fast.h"

namespace qparity {
namespace {

size_t sz(int64_t v) { return static_cast<size_t>(v); }

// The kernel taps [lo, hi) of one axis inside the input for one output coordinate (contiguous:
// the input coordinate grows with the tap).
struct TapRange {
  int64_t lo = 0, hi = 0;
};

TapRange inside_taps(int64_t o, int64_t inputs, int64_t kernel, int64_t stride, int64_t pad,
                     int64_t dilation) {
  TapRange r{0, 0};
  bool found = false;
  for (int64_t k = 0; k < kernel; ++k) {
    const int64_t i = o * stride - pad + k * dilation;
    if (i < 0 || i >= inputs) continue;
    if (!found) r.lo = k;
    found = true;
    r.hi = k + 1;
  }
  return r;
}

struct FloatPlan {
  const FloatConv2dArgs* args = nullptr;
  Shape4 out;
  int64_t group_channels = 0, group_outputs = 0, taps = 0;
  std::vector<TapRange> rows, cols;  // inside taps per output row / column
  // The columns [interior_lo, interior_hi) whose kw taps all lie inside (contiguous, maybe empty).
  int64_t interior_lo = 0, interior_hi = 0;
};

constexpr size_t kLanes = 8;  // output channels side by side in the channel-vectorised path

// Each group's weights in blocks of kLanes output channels, [group][block][cg][kh][kw][lane];
// lanes past the group's last channel hold 0 and their outputs are never stored.
std::vector<float> pack_channel_blocks(const FloatPlan& f) {
  const FloatConv2dArgs& a = *f.args;
  const int64_t lanes = static_cast<int64_t>(kLanes);
  const int64_t blocks = (f.group_outputs + lanes - 1) / lanes;
  const int64_t block_size = f.group_channels * f.taps * lanes;
  std::vector<float> packed(sz(a.geometry.groups * blocks * block_size), 0.0f);
  for (int64_t m = 0; m < f.out.c; ++m) {
    const int64_t group = m / f.group_outputs, local = m % f.group_outputs;
    float* block = packed.data() + (group * blocks + local / lanes) * block_size + local % lanes;
    for (int64_t k = 0; k < f.group_channels * f.taps; ++k) {
      block[k * lanes] = a.weight[sz(m * f.group_channels * f.taps + k)];
    }
  }
  return packed;
}

// Outputs (oh, ow0 .. ow0 + kCols) of the `lanes` channels from m0 whose packed weights are
// `w`: the same arithmetic as float_chunk, vectorised across output channels instead of columns,
// which suits narrow rows and any stride.
template <size_t kCols>
[[gnu::always_inline]] inline void lane_chunk(const FloatPlan& f, const float* w, int64_t n,
                                              int64_t m0, int64_t lanes, int64_t oh, int64_t ow0,
                                              TapRange rw, float* y) {
  const FloatConv2dArgs& a = *f.args;
  const Shape4& in = a.input_shape;
  const Conv2dGeometry& g = a.geometry;
  const TapRange rh = f.rows[sz(oh)];
  const int64_t first_channel = (m0 / f.group_outputs) * f.group_channels;
  float acc[kCols][kLanes] = {};  // +0.0f, as the reference's sum starts
  for (int64_t cg = 0; cg < f.group_channels; ++cg) {
    const float* plane = a.input.data() + ((n * in.c + first_channel + cg) * in.h) * in.w;
    for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
      const float* x_row = plane + (oh * g.stride_h - g.pad_h + kh * g.dilation_h) * in.w;
      for (int64_t kw = rw.lo; kw < rw.hi; ++kw) {
        const float* x = x_row + ow0 * g.stride_w - g.pad_w + kw * g.dilation_w;
        const float* wv = w + ((cg * a.weight_shape.h + kh) * a.weight_shape.w + kw) * static_cast<int64_t>(kLanes);
        for (size_t i = 0; i < kCols; ++i) {
          const float xv = x[static_cast<int64_t>(i) * g.stride_w];
          for (size_t q = 0; q < kLanes; ++q) acc[i][q] += xv * wv[q];
        }
      }
    }
  }
  const int64_t plane_out = f.out.h * f.out.w;
  for (size_t q = 0; q < static_cast<size_t>(lanes); ++q) {
    const int64_t mq = m0 + static_cast<int64_t>(q);
    float* yq = y + mq * plane_out + oh * f.out.w + ow0;
    for (size_t i = 0; i < kCols; ++i) {
      float v = acc[i][q];
      if (!a.bias.empty()) v = v + a.bias[sz(mq)];
      if (a.relu) v = std::max(v, 0.0f);
      yq[i] = v;
    }
  }
}

// Row oh of a block of output channels: interior columns 8 and then 4 at a time, the rest
// (borders, with their own inside kw taps, and the tail) one at a time.
[[gnu::always_inline]] inline void lane_row(const FloatPlan& f, const float* w, int64_t n,
                                            int64_t m0, int64_t lanes, int64_t oh, float* y) {
  const TapRange full{0, f.args->weight_shape.w};
  int64_t ow = 0;
  for (; ow < f.interior_lo; ++ow) lane_chunk<1>(f, w, n, m0, lanes, oh, ow, f.cols[sz(ow)], y);
  for (; ow + 8 <= f.interior_hi; ow += 8) lane_chunk<8>(f, w, n, m0, lanes, oh, ow, full, y);
  for (; ow + 4 <= f.interior_hi; ow += 4) lane_chunk<4>(f, w, n, m0, lanes, oh, ow, full, y);
  for (; ow < f.out.w; ++ow) lane_chunk<1>(f, w, n, m0, lanes, oh, ow, f.cols[sz(ow)], y);
}

// Outputs (oh, ow0 .. ow0 + kCols) of channels m .. m + kChans, every one of whose kw taps in
// `rw` (and kh taps in `rh`) lies inside the input: the reference's arithmetic, output by output.
// Always inlined, as float_row: a template left out of line would be compiled for the baseline
// ISA only, outside the multiversioned caller.
template <size_t kChans, size_t kCols>
[[gnu::always_inline]] inline void float_chunk(const FloatPlan& f, int64_t n, int64_t m, int64_t oh, int64_t ow0,
                        TapRange rh, TapRange rw, float* y) {
  const FloatConv2dArgs& a = *f.args;
  const Shape4& in = a.input_shape;
  const Conv2dGeometry& g = a.geometry;
  const int64_t kw_count = a.weight_shape.w;
  const int64_t first_channel = (m / f.group_outputs) * f.group_channels;
  const float* w = a.weight.data() + m * f.group_channels * f.taps;
  float acc[kChans][kCols] = {};  // +0.0f, as the reference's sum starts
  for (int64_t cg = 0; cg < f.group_channels; ++cg) {
    const float* plane = a.input.data() + ((n * in.c + first_channel + cg) * in.h) * in.w;
    for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
      const float* x_row = plane + (oh * g.stride_h - g.pad_h + kh * g.dilation_h) * in.w;
      for (int64_t kw = rw.lo; kw < rw.hi; ++kw) {
        const float* x = x_row + ow0 * g.stride_w - g.pad_w + kw * g.dilation_w;
        const int64_t tap = (cg * a.weight_shape.h + kh) * kw_count + kw;
        float wv[kChans];
        for (size_t q = 0; q < kChans; ++q) wv[q] = w[static_cast<int64_t>(q) * f.group_channels * f.taps + tap];
        for (size_t i = 0; i < kCols; ++i) {
          const float xv = x[static_cast<int64_t>(i) * g.stride_w];
          for (size_t q = 0; q < kChans; ++q) acc[q][i] += xv * wv[q];
        }
      }
    }
  }
  const int64_t plane_out = f.out.h * f.out.w;
  for (size_t q = 0; q < kChans; ++q) {
    const int64_t mq = m + static_cast<int64_t>(q);
    float* yq = y + mq * plane_out + oh * f.out.w + ow0;
    for (size_t i = 0; i < kCols; ++i) {
      float v = acc[q][i];
      if (!a.bias.empty()) v = v + a.bias[sz(mq)];
      if (a.relu) v = std::max(v, 0.0f);
      yq[i] = v;
    }
  }
}

// Row oh of channels m .. m + kChans of image n: full chunks of 8 over the columns whose taps
// all lie inside, one output at a time elsewhere (each with its own inside kw taps).
template <size_t kChans>
[[gnu::always_inline]] inline void float_row(const FloatPlan& f, int64_t n, int64_t m, int64_t oh, float* y) {
  const FloatConv2dArgs& a = *f.args;
  const Conv2dGeometry& g = a.geometry;
  const TapRange rh =
      inside_taps(oh, a.input_shape.h, a.weight_shape.h, g.stride_h, g.pad_h, g.dilation_h);
  constexpr size_t kChunk = 8;
  constexpr auto kChunkLength = static_cast<int64_t>(kChunk);
  int64_t ow = 0;
  while (ow < f.out.w) {
    const TapRange rw =
        inside_taps(ow, a.input_shape.w, a.weight_shape.w, g.stride_w, g.pad_w, g.dilation_w);
    const bool full = rw.lo == 0 && rw.hi == a.weight_shape.w;
    if (full && ow + kChunkLength <= f.out.w) {
      const TapRange last = inside_taps(ow + kChunkLength - 1, a.input_shape.w, a.weight_shape.w,
                                        g.stride_w, g.pad_w, g.dilation_w);
      if (last.lo == 0 && last.hi == a.weight_shape.w) {  // interior columns are contiguous
        float_chunk<kChans, kChunk>(f, n, m, oh, ow, rh, rw, y);
        ow += kChunkLength;
        continue;
      }
    }
    float_chunk<kChans, 1>(f, n, m, oh, ow, rh, rw, y);
    ++ow;
  }
}

// Groups with at least kLanes output channels take the channel-vectorised path, the others
// (depthwise, narrow groups) the column-vectorised one.
QPARITY_MULTIVERSION
void float_conv_rows(const FloatPlan& f, const std::vector<float>& packed, std::vector<float>& y) {
  constexpr size_t kChans = 4;
  constexpr auto kBlock = static_cast<int64_t>(kChans);
  const auto lanes = static_cast<int64_t>(kLanes);
  const int64_t blocks = (f.group_outputs + lanes - 1) / lanes;
  const int64_t block_size = f.group_channels * f.taps * lanes;
  for (int64_t n = 0; n < f.out.n; ++n) {
    float* yn = y.data() + n * f.out.c * f.out.h * f.out.w;
    for (int64_t group = 0; group * f.group_outputs < f.out.c; ++group) {
      const int64_t first = group * f.group_outputs, last = first + f.group_outputs;
      if (f.group_outputs >= lanes) {
        for (int64_t b = 0; b < blocks; ++b) {
          const float* w = packed.data() + (group * blocks + b) * block_size;
          const int64_t m0 = first + b * lanes;
          for (int64_t oh = 0; oh < f.out.h; ++oh) {
            lane_row(f, w, n, m0, std::min(lanes, last - m0), oh, yn);
          }
        }
        continue;
      }
      int64_t m = first;
      for (; m + kBlock <= last; m += kBlock) {
        for (int64_t oh = 0; oh < f.out.h; ++oh) float_row<kChans>(f, n, m, oh, yn);
      }
      for (; m < last; ++m) {
        for (int64_t oh = 0; oh < f.out.h; ++oh) float_row<1>(f, n, m, oh, yn);
      }
    }
  }
}

// ---- Pointwise with fewer than kLanes outputs per group (e.g. the seed's 3 -> 3): a plane at a
// time, each element in one pass with the channel count known at compile time up to 4.

template <int kChannels>
[[gnu::always_inline]] inline void planar_float(const float* const* x, const float* w,
                                                const float* bias, bool relu, float* y,
                                                int64_t plane) {
  for (int64_t p = 0; p < plane; ++p) {
    float sum = 0.0f;
    for (int c = 0; c < kChannels; ++c) sum += x[c][p] * w[c];
    if (bias != nullptr) sum += *bias;
    if (relu) sum = std::max(sum, 0.0f);
    y[p] = sum;
  }
}

bool takes_planar_float(const FloatPlan& f) {
  const FloatConv2dArgs& a = *f.args;
  const Conv2dGeometry& g = a.geometry;
  return f.taps == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0 &&
         f.group_outputs < static_cast<int64_t>(kLanes);
}

QPARITY_MULTIVERSION
void planar_float_conv(const FloatPlan& f, std::vector<float>& result) {
  const FloatConv2dArgs& a = *f.args;
  const int64_t plane = f.out.h * f.out.w;
  std::vector<const float*> x(sz(f.group_channels));
  for (int64_t n = 0; n < f.out.n; ++n) {
    for (int64_t m = 0; m < f.out.c; ++m) {
      float* y = result.data() + (n * f.out.c + m) * plane;
      const int64_t first_channel = (m / f.group_outputs) * f.group_channels;
      for (int64_t cg = 0; cg < f.group_channels; ++cg) {
        x[sz(cg)] = a.input.data() + (n * a.input_shape.c + first_channel + cg) * plane;
      }
      const float* w = a.weight.data() + m * f.group_channels;
      const float* b = a.bias.empty() ? nullptr : &a.bias[sz(m)];
      switch (f.group_channels) {
        case 1: planar_float<1>(x.data(), w, b, a.relu, y, plane); continue;
        case 2: planar_float<2>(x.data(), w, b, a.relu, y, plane); continue;
        case 3: planar_float<3>(x.data(), w, b, a.relu, y, plane); continue;
        case 4: planar_float<4>(x.data(), w, b, a.relu, y, plane); continue;
        default: break;
      }
      // More channels: the same operations per element, a channel at a time over the plane.
      std::fill(y, y + plane, 0.0f);
      for (int64_t cg = 0; cg < f.group_channels; ++cg) {
        const float wc = w[cg];
        const float* xc = x[sz(cg)];
        for (int64_t p = 0; p < plane; ++p) y[p] += xc[p] * wc;
      }
      if (b != nullptr) {
        for (int64_t p = 0; p < plane; ++p) y[p] += *b;
      }
      if (a.relu) {
        for (int64_t p = 0; p < plane; ++p) y[p] = std::max(y[p], 0.0f);
      }
    }
  }
}

}  // namespace

void conv2d_float_fast(const FloatConv2dArgs& a, std::vector<float>& out) {
  const Shape4 shape = conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  if (static_cast<int64_t>(a.input.size()) != a.input_shape.numel() ||
      static_cast<int64_t>(a.weight.size()) != a.weight_shape.numel() ||
      (!a.bias.empty() && static_cast<int64_t>(a.bias.size()) != a.weight_shape.n)) {
    throw std::invalid_argument("conv2d: input, weight or bias size does not match its shape");
  }
  FloatPlan f{.args = &a,
              .out = shape,
              .group_channels = a.weight_shape.c,
              .group_outputs = a.weight_shape.n / a.geometry.groups,
              .taps = a.weight_shape.h * a.weight_shape.w};
  out.resize(sz(shape.numel()));
  if (takes_planar_float(f)) return planar_float_conv(f, out);
  const Conv2dGeometry& g = a.geometry;
  for (int64_t oh = 0; oh < shape.h; ++oh) {
    f.rows.push_back(inside_taps(oh, a.input_shape.h, a.weight_shape.h, g.stride_h, g.pad_h, g.dilation_h));
  }
  for (int64_t ow = 0; ow < shape.w; ++ow) {
    f.cols.push_back(inside_taps(ow, a.input_shape.w, a.weight_shape.w, g.stride_w, g.pad_w, g.dilation_w));
  }
  const auto is_full = [&](const TapRange& r) { return r.lo == 0 && r.hi == a.weight_shape.w; };
  while (f.interior_lo < shape.w && !is_full(f.cols[sz(f.interior_lo)])) ++f.interior_lo;
  f.interior_hi = f.interior_lo;
  while (f.interior_hi < shape.w && is_full(f.cols[sz(f.interior_hi)])) ++f.interior_hi;
  out.resize(sz(shape.numel()));
  const std::vector<float> packed =
      f.group_outputs >= static_cast<int64_t>(kLanes) ? pack_channel_blocks(f) : std::vector<float>();
  float_conv_rows(f, packed, out);
}

}  // namespace qparity
