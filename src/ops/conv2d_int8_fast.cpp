// Fast int8 conv accumulation: the reference conv2d_accumulators' bits (eq. 6.1, 6.5, 6.5b, 6.6,
// 6.6b, 6.6c) by im2col blocks and a 4x16 GEMM micro-kernel, or a direct depthwise kernel.
//
// Every accumulation model is computed as the reference's decomposition (conv2d.cpp,
// pair_saturated_output), all in wrapping 32-bit arithmetic:
//   acc = S - w_zp·X - x_zp·W_T   (mod 2^32)
// S = Σ over the model's pairs of sat16(x_a·w_a + x_b·w_b) of the raw u8 / s8 bins (no sat16 for
// the exact model), X = Σ_T x, W_T = Σ_T (w - w_zp), T the taps that take part: all of them when
// padding reads the bin x_zp (FBGEMM), the ones inside the input otherwise (padding then holds 0,
// which adds nothing to S or X). For the exact model this is Σ_T (x - x_zp)(w - w_zp) expanded.
//
// Why the pairs survive: each model's pairs are laid out as adjacent slots (2j, 2j+1) of the
// im2col row (ReductionLayout), which is exactly what vpmaddubsw pairs. The pair sums are then
// added in a different order than the reference adds them, which changes nothing: 32-bit
// wrapping addition is associative and commutative; only which products share a sat16 matters.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/multiversion.h"
#include "qparity/ops/conv2d_fast.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define QPARITY_AVX2_KERNELS 1
#endif

namespace qparity {
namespace {

constexpr int64_t kTileRows = 4;   // output positions per micro-tile
constexpr int64_t kTileCols = 16;  // output channels per micro-tile: two 8-lane int32 registers
// Pointwise convs with fewer outputs per group than this run a plane at a time (bench/conv_bench).
constexpr int64_t kPlanarBelowOutputs = 32;

size_t sz(int64_t v) { return static_cast<size_t>(v); }
int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Where the products of one output sit in an im2col row, so that each pair the model sums
// with one sat16 occupies slots (2j, 2j+1).
struct ReductionLayout {
  enum class Order {
    kTapMajor,   // slot = tap·C_g + cg: pairs along the reduction (eq. 6.6, 6.6b), any pairs (6.1)
    kTapMajorEvenChannels,  // slot = tap·⌈C_g⌉₂ + cg: channels (2j, 2j+1) at one tap (6.5, 6.5b)
    kChannelMajorEvenTaps,  // slot = cg·⌈taps⌉₂ + tap: taps (2p, 2p+1) of one channel (6.6c)
  };
  Order order = Order::kTapMajor;
  int64_t stride = 0;  // slots per tap (tap-major) or per channel (channel-major)
  int64_t length = 0;  // slots per row, a multiple of 4 (one 32-bit broadcast); spare slots 0

  int64_t slot(int64_t cg, int64_t tap) const {
    return order == Order::kChannelMajorEvenTaps ? cg * stride + tap : tap * stride + cg;
  }
};

// What an accumulation model asks of the fast kernels.
struct FastModel {
  bool saturate_pairs = false;            // sat16 on every pair; false: exact (eq. 6.1)
  bool padding_reads_zero_point = false;  // FBGEMM's im2col fills padded taps with x_zp
  ReductionLayout::Order order = ReductionLayout::Order::kTapMajor;
};

FastModel fast_model_of(AccumulationModel model) {
  using Order = ReductionLayout::Order;
  switch (model) {
    case AccumulationModel::kExactInt32:
      return {false, false, Order::kTapMajor};
    case AccumulationModel::kInt16PairSaturation:
      return {true, false, Order::kTapMajorEvenChannels};
    case AccumulationModel::kInt16GemmPairSaturation:
      return {true, false, Order::kTapMajor};
    case AccumulationModel::kFbgemmInt16GemmPairs:
      return {true, true, Order::kTapMajor};
    case AccumulationModel::kFbgemmInt16ChannelPairs:
      return {true, true, Order::kTapMajorEvenChannels};
    case AccumulationModel::kFbgemmInt16TapPairs:
      return {true, true, Order::kChannelMajorEvenTaps};
  }
  throw std::invalid_argument("conv2d: unknown accumulation model");
}

ReductionLayout layout_of(ReductionLayout::Order order, int64_t group_channels, int64_t taps) {
  using Order = ReductionLayout::Order;
  ReductionLayout l{.order = order};
  switch (order) {
    case Order::kTapMajor: l.stride = group_channels; break;
    case Order::kTapMajorEvenChannels: l.stride = round_up(group_channels, 2); break;
    case Order::kChannelMajorEvenTaps: l.stride = round_up(taps, 2); break;
  }
  const int64_t used = order == Order::kChannelMajorEvenTaps ? group_channels * l.stride
                                                             : taps * l.stride;
  l.length = round_up(used, 4);
  return l;
}

// The kernel taps [lo, hi) of one axis that fall inside the input for one output coordinate.
struct TapRange {
  int64_t lo = 0, hi = 0;
};

std::vector<TapRange> inside_taps(int64_t outputs, int64_t inputs, int64_t kernel, int64_t stride,
                                  int64_t pad, int64_t dilation) {
  std::vector<TapRange> ranges(sz(outputs));
  for (int64_t o = 0; o < outputs; ++o) {
    TapRange r{kernel, kernel};
    for (int64_t k = 0; k < kernel; ++k) {
      const int64_t i = o * stride - pad + k * dilation;
      if (i < 0 || i >= inputs) continue;
      if (r.lo == kernel) r.lo = k;
      r.hi = k + 1;
    }
    if (r.lo == kernel) r = {0, 0};
    ranges[sz(o)] = r;
  }
  return ranges;
}

// Everything one call shares: shapes, the model and the zero-point terms of the header's
// decomposition.
struct ConvPlan {
  const QuantizedConv2dArgs* args = nullptr;
  Shape4 out;
  int64_t group_channels = 0, group_outputs = 0, taps = 0, plane = 0;
  FastModel model;
  uint8_t padding_bin = 0;              // what a padded tap reads: x_zp (FBGEMM) or 0
  uint32_t x_zp = 0;                    // x_zp mod 2^32
  std::vector<uint32_t> w_zp;           // [M] w_zp mod 2^32
  std::vector<uint32_t> tap_weight;     // [M][taps] Σ_cg (w - w_zp) mod 2^32
  std::vector<uint32_t> full_weight;    // [M] Σ over every tap
  std::vector<TapRange> rows, cols;     // inside taps per output row / column

  // Whether every tap of output p takes part, so that W_T is full_weight.
  bool all_taps_take_part(int64_t p) const {
    if (model.padding_reads_zero_point) return true;
    const TapRange& rh = rows[sz(p / out.w)];
    const TapRange& rw = cols[sz(p % out.w)];
    return rh.hi - rh.lo == args->weight_shape.h && rw.hi - rw.lo == args->weight_shape.w;
  }

  // W_T of output channel m at output p.
  uint32_t weight_term(int64_t m, int64_t p) const {
    if (all_taps_take_part(p)) return full_weight[sz(m)];
    const TapRange& rh = rows[sz(p / out.w)];
    const TapRange& rw = cols[sz(p % out.w)];
    const int64_t kw = args->weight_shape.w;
    uint32_t sum = 0;
    for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
      for (int64_t k = rw.lo; k < rw.hi; ++k) sum += tap_weight[sz(m * taps + kh * kw + k)];
    }
    return sum;
  }

  // The accumulator from S, X and W_T (header: acc = S - w_zp·X - x_zp·W_T).
  int32_t finish(uint32_t s, uint32_t x_sum, int64_t m, uint32_t w_t) const {
    return static_cast<int32_t>(s - w_zp[sz(m)] * x_sum - x_zp * w_t);
  }
};

ConvPlan make_plan(const QuantizedConv2dArgs& a, const FastModel& model, const Shape4& out) {
  ConvPlan plan;
  plan.args = &a;
  plan.out = out;
  plan.model = model;
  plan.group_channels = a.weight_shape.c;
  plan.group_outputs = a.weight_shape.n / a.geometry.groups;
  plan.taps = a.weight_shape.h * a.weight_shape.w;
  plan.plane = out.h * out.w;
  plan.padding_bin = model.padding_reads_zero_point ? static_cast<uint8_t>(a.input_zero_point) : 0;
  plan.x_zp = static_cast<uint32_t>(a.input_zero_point);
  const bool per_channel = a.weight_zero_points.size() > 1;
  const int64_t channels = a.weight_shape.n;
  plan.w_zp.resize(sz(channels));
  plan.tap_weight.assign(sz(channels * plan.taps), 0);
  plan.full_weight.assign(sz(channels), 0);
  for (int64_t m = 0; m < channels; ++m) {
    const int64_t w_zp = a.weight_zero_points[per_channel ? sz(m) : 0];
    plan.w_zp[sz(m)] = static_cast<uint32_t>(w_zp);
    for (int64_t cg = 0; cg < plan.group_channels; ++cg) {
      for (int64_t tap = 0; tap < plan.taps; ++tap) {
        const int64_t w = a.weight[sz((m * plan.group_channels + cg) * plan.taps + tap)];
        plan.tap_weight[sz(m * plan.taps + tap)] += static_cast<uint32_t>(w - w_zp);
      }
    }
    for (int64_t tap = 0; tap < plan.taps; ++tap) {
      plan.full_weight[sz(m)] += plan.tap_weight[sz(m * plan.taps + tap)];
    }
  }
  const Conv2dGeometry& g = a.geometry;
  plan.rows = inside_taps(out.h, a.input_shape.h, a.weight_shape.h, g.stride_h, g.pad_h, g.dilation_h);
  plan.cols = inside_taps(out.w, a.input_shape.w, a.weight_shape.w, g.stride_w, g.pad_w, g.dilation_w);
  return plan;
}

// ---- GEMM micro-kernels: tile[r][c] = Σ over slot pairs of the row r of `a` and column c of the
// packed weights, for 4 rows and 16 columns. Pair kernels: sat16 on every pair (vpmaddubsw);
// wide kernels: exact int16 x int16 pairs (vpmaddwd). Both wrap in int32 lanes.
//
// Packed weights, per block of 16 output channels: pair kernels [length/4][16][4] s8, wide
// kernels [length/2][16][2] s16, so one 32-byte load holds 8 channels' next 4 (2) slots.

using PairTile = void (*)(const uint8_t* a, int64_t length, const int8_t* b, uint32_t* tile);
using WideTile = void (*)(const int16_t* a, int64_t length, const int16_t* b, uint32_t* tile);

int32_t saturate_to_int16(int32_t v) { return std::clamp(v, -32768, 32767); }

void pair_tile_portable(const uint8_t* a, int64_t length, const int8_t* b, uint32_t* tile) {
  for (int64_t r = 0; r < kTileRows; ++r) {
    const uint8_t* row = a + r * length;
    for (int64_t c = 0; c < kTileCols; ++c) {
      uint32_t s = 0;
      for (int64_t k = 0; k < length; k += 2) {
        const int8_t* w = b + ((k / 4) * kTileCols + c) * 4 + k % 4;
        s += static_cast<uint32_t>(saturate_to_int16(row[k] * w[0] + row[k + 1] * w[1]));
      }
      tile[r * kTileCols + c] = s;
    }
  }
}

void wide_tile_portable(const int16_t* a, int64_t length, const int16_t* b, uint32_t* tile) {
  for (int64_t r = 0; r < kTileRows; ++r) {
    const int16_t* row = a + r * length;
    for (int64_t c = 0; c < kTileCols; ++c) {
      uint32_t s = 0;
      for (int64_t k = 0; k < length; k += 2) {
        const int16_t* w = b + ((k / 2) * kTileCols + c) * 2;
        s += static_cast<uint32_t>(row[k] * w[0] + row[k + 1] * w[1]);
      }
      tile[r * kTileCols + c] = s;
    }
  }
}

#ifdef QPARITY_AVX2_KERNELS
// One broadcast 4-byte (pair kernel) or 2x16-bit (wide kernel) group of slots of a row.
__attribute__((target("avx2"))) inline __m256i broadcast_word(const void* p) {
  int32_t word = 0;
  std::memcpy(&word, p, sizeof word);
  return _mm256_set1_epi32(word);
}

// vpmaddubsw: u8·s8 slot pairs (2j, 2j+1) summed with int16 saturation, as the real kernels do;
// vpmaddwd by 1 widens the two sat16 pairs of a 32-bit lane to int32 exactly.
__attribute__((target("avx2"))) void pair_tile_avx2(const uint8_t* a, int64_t length,
                                                    const int8_t* b, uint32_t* tile) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[kTileRows][2];
  for (auto& row : acc) row[0] = row[1] = _mm256_setzero_si256();
  for (int64_t k = 0; k < length; k += 4) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k * kTileCols));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k * kTileCols + 32));
    for (int64_t r = 0; r < kTileRows; ++r) {
      const __m256i x = broadcast_word(a + r * length + k);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b0), ones));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b1), ones));
    }
  }
  for (int64_t r = 0; r < kTileRows; ++r) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + r * kTileCols), acc[r][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + r * kTileCols + 8), acc[r][1]);
  }
}

// vpmaddwd: exact x·w pair sums of 16-bit operands (|x·w| < 2^15, so a pair fits int32).
__attribute__((target("avx2"))) void wide_tile_avx2(const int16_t* a, int64_t length,
                                                    const int16_t* b, uint32_t* tile) {
  __m256i acc[kTileRows][2];
  for (auto& row : acc) row[0] = row[1] = _mm256_setzero_si256();
  for (int64_t k = 0; k < length; k += 2) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k * kTileCols));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k * kTileCols + 16));
    for (int64_t r = 0; r < kTileRows; ++r) {
      const __m256i x = broadcast_word(a + r * length + k);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(x, b0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(x, b1));
    }
  }
  for (int64_t r = 0; r < kTileRows; ++r) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + r * kTileCols), acc[r][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + r * kTileCols + 8), acc[r][1]);
  }
}
#endif

struct TileKernels {
  PairTile pair = pair_tile_portable;
  WideTile wide = wide_tile_portable;
};

TileKernels tile_kernels(KernelIsa isa) {
#ifdef QPARITY_AVX2_KERNELS
  if (isa == KernelIsa::kAvx2) return {pair_tile_avx2, wide_tile_avx2};
#endif
  (void)isa;
  return {};
}

// The weights of group g packed for the micro-kernels (header of the micro-kernels).
struct PackedWeights {
  std::vector<int8_t> pairs;
  std::vector<int16_t> wide;
  int64_t blocks = 0;
};

void pack_weights(const ConvPlan& plan, const ReductionLayout& layout, int64_t g, PackedWeights& pw) {
  const QuantizedConv2dArgs& a = *plan.args;
  const bool wide = !plan.model.saturate_pairs;
  pw.blocks = (plan.group_outputs + kTileCols - 1) / kTileCols;
  const auto size = sz(pw.blocks * layout.length * kTileCols);
  if (wide) {
    pw.wide.assign(size, 0);
  } else {
    pw.pairs.assign(size, 0);
  }
  for (int64_t m = 0; m < plan.group_outputs; ++m) {
    const int64_t block = m / kTileCols, c = m % kTileCols;
    for (int64_t cg = 0; cg < plan.group_channels; ++cg) {
      for (int64_t tap = 0; tap < plan.taps; ++tap) {
        const int8_t w =
            a.weight[sz(((g * plan.group_outputs + m) * plan.group_channels + cg) * plan.taps + tap)];
        const int64_t k = layout.slot(cg, tap);
        const int64_t base = block * layout.length * kTileCols;
        if (wide) {
          pw.wide[sz(base + ((k / 2) * kTileCols + c) * 2 + k % 2)] = w;
        } else {
          pw.pairs[sz(base + ((k / 4) * kTileCols + c) * 4 + k % 4)] = w;
        }
      }
    }
  }
}

// The input of image n channels-last ([h][w][c]), so a tap-major im2col row copies runs of C_g.
void to_channels_last(const QuantizedConv2dArgs& a, int64_t n, std::vector<uint8_t>& nhwc) {
  const Shape4& s = a.input_shape;
  const int64_t pixels = s.h * s.w;
  nhwc.resize(sz(pixels * s.c));
  const uint8_t* x = a.input.data() + n * s.c * pixels;
  for (int64_t c = 0; c < s.c; ++c) {
    for (int64_t p = 0; p < pixels; ++p) nhwc[sz(p * s.c + c)] = x[c * pixels + p];
  }
}

// One im2col row: the bins output p of image n, group g reads, in `layout`'s slots; padded
// taps read plan.padding_bin, spare slots 0. Returns X = Σ_T x of the header.
uint32_t im2col_row(const ConvPlan& plan, const ReductionLayout& layout, const uint8_t* nhwc,
                    int64_t n, int64_t g, int64_t p, uint8_t* row) {
  const QuantizedConv2dArgs& a = *plan.args;
  const Shape4& in = a.input_shape;
  const Conv2dGeometry& geo = a.geometry;
  const int64_t oh = p / plan.out.w, ow = p % plan.out.w;
  if (plan.taps == 1 && layout.order == ReductionLayout::Order::kTapMajor && geo.pad_h == 0 &&
      geo.pad_w == 0) {  // 1x1 without padding: the row is the pixel's channels of the group
    const uint8_t* pixel = nhwc + ((oh * geo.stride_h) * in.w + ow * geo.stride_w) * in.c +
                           g * plan.group_channels;
    std::memcpy(row, pixel, sz(plan.group_channels));
    std::memset(row + plan.group_channels, 0, sz(layout.length - plan.group_channels));
    uint32_t x_sum = 0;
    for (int64_t k = 0; k < plan.group_channels; ++k) x_sum += row[k];
    return x_sum;
  }
  std::memset(row, 0, sz(layout.length));
  for (int64_t kh = 0; kh < a.weight_shape.h; ++kh) {
    const int64_t ih = oh * geo.stride_h - geo.pad_h + kh * geo.dilation_h;
    for (int64_t kw = 0; kw < a.weight_shape.w; ++kw) {
      const int64_t iw = ow * geo.stride_w - geo.pad_w + kw * geo.dilation_w;
      const bool inside = ih >= 0 && ih < in.h && iw >= 0 && iw < in.w;
      const int64_t tap = kh * a.weight_shape.w + kw;
      if (layout.order != ReductionLayout::Order::kChannelMajorEvenTaps) {
        uint8_t* dst = row + layout.slot(0, tap);
        if (inside) {
          std::memcpy(dst, nhwc + (ih * in.w + iw) * in.c + g * plan.group_channels,
                      sz(plan.group_channels));
        } else {
          std::memset(dst, plan.padding_bin, sz(plan.group_channels));
        }
        continue;
      }
      for (int64_t cg = 0; cg < plan.group_channels; ++cg) {
        const int64_t c = g * plan.group_channels + cg;
        row[layout.slot(cg, tap)] =
            inside ? a.input[sz(((n * in.c + c) * in.h + ih) * in.w + iw)] : plan.padding_bin;
      }
    }
  }
  uint32_t x_sum = 0;
  for (int64_t k = 0; k < layout.length; ++k) x_sum += row[k];
  return x_sum;
}

// The accumulators of image n, group g by im2col blocks of `block_rows` outputs and the tile
// kernels.
struct GemmScratch {
  std::vector<uint8_t> nhwc, rows;
  std::vector<int16_t> wide_rows;
  std::vector<uint32_t> x_sums;
  PackedWeights weights;
};

void gemm_group(const ConvPlan& plan, const ReductionLayout& layout, const TileKernels& kernels,
                int64_t n, int64_t g, GemmScratch& s, int32_t* acc) {
  const bool wide = !plan.model.saturate_pairs;
  // Rows per block: about 64 KiB of im2col, a multiple of the tile's rows.
  const int64_t block_rows = std::clamp<int64_t>((65536 / layout.length) / kTileRows * kTileRows,
                                                 kTileRows, round_up(plan.plane, kTileRows));
  s.rows.resize(sz(block_rows * layout.length));
  if (wide) s.wide_rows.resize(s.rows.size());
  s.x_sums.resize(sz(block_rows));
  uint32_t tile[kTileRows * kTileCols];
  for (int64_t p0 = 0; p0 < plan.plane; p0 += block_rows) {
    const int64_t count = std::min(block_rows, plan.plane - p0);
    const int64_t padded = round_up(count, kTileRows);
    for (int64_t r = 0; r < padded; ++r) {
      uint8_t* row = s.rows.data() + r * layout.length;
      if (r < count) {
        s.x_sums[sz(r)] = im2col_row(plan, layout, s.nhwc.data(), n, g, p0 + r, row);
      } else {
        std::memset(row, 0, sz(layout.length));
      }
    }
    if (wide) {
      std::copy(s.rows.begin(), s.rows.begin() + padded * layout.length, s.wide_rows.begin());
    }
    for (int64_t block = 0; block < s.weights.blocks; ++block) {
      const int64_t base = block * layout.length * kTileCols;
      const int64_t columns = std::min(kTileCols, plan.group_outputs - block * kTileCols);
      for (int64_t r0 = 0; r0 < padded; r0 += kTileRows) {
        if (wide) {
          kernels.wide(s.wide_rows.data() + r0 * layout.length, layout.length,
                       s.weights.wide.data() + base, tile);
        } else {
          kernels.pair(s.rows.data() + r0 * layout.length, layout.length,
                       s.weights.pairs.data() + base, tile);
        }
        for (int64_t r = r0; r < std::min(r0 + kTileRows, count); ++r) {
          const int64_t p = p0 + r;
          const bool all_taps = plan.all_taps_take_part(p);
          for (int64_t c = 0; c < columns; ++c) {
            const int64_t m = g * plan.group_outputs + block * kTileCols + c;
            const uint32_t w_t = all_taps ? plan.full_weight[sz(m)] : plan.weight_term(m, p);
            acc[m * plan.plane + p] = plan.finish(tile[(r - r0) * kTileCols + c], s.x_sums[sz(r)], m, w_t);
          }
        }
      }
    }
  }
}

void gemm_conv(const ConvPlan& plan, KernelIsa isa, std::vector<int32_t>& out) {
  const QuantizedConv2dArgs& a = *plan.args;
  const ReductionLayout layout = layout_of(plan.model.order, plan.group_channels, plan.taps);
  const TileKernels kernels = tile_kernels(isa);
  GemmScratch s;
  for (int64_t n = 0; n < plan.out.n; ++n) {
    if (layout.order != ReductionLayout::Order::kChannelMajorEvenTaps) to_channels_last(a, n, s.nhwc);
    for (int64_t g = 0; g < a.geometry.groups; ++g) {
      if (n == 0 || a.geometry.groups > 1) pack_weights(plan, layout, g, s.weights);
      gemm_group(plan, layout, kernels, n, g, s, out.data() + n * plan.out.c * plan.plane);
    }
  }
}

// ---- Depthwise (one input channel per group): taps (2p, 2p+1) in (kh, kw) order summed as
// one pair, a row of outputs at a time over a padded copy of the channel. With one channel
// per group the reduction is the taps, so the along-reduction and tap models pair exactly
// these (eq. 6.6, 6.6b, 6.6c), and the exact and channel-pair models saturate nothing.

// Always inlined into the multiversioned depthwise_sums, so that each ISA clone has its copy.
template <bool kSaturate>
[[gnu::always_inline]] inline void depthwise_pair_row(const uint8_t* x0, const uint8_t* x1, int32_t w0, int32_t w1,
                               int64_t stride, int64_t count, uint32_t* s, uint32_t* x_sum) {
  for (int64_t o = 0; o < count; ++o) {
    const int32_t a = x0[o * stride], b = x1[o * stride];
    int32_t v = a * w0 + b * w1;
    if constexpr (kSaturate) v = saturate_to_int16(v);
    s[o] += static_cast<uint32_t>(v);
    x_sum[o] += static_cast<uint32_t>(a + b);
  }
}

[[gnu::always_inline]] inline void depthwise_single_row(const uint8_t* x0, int32_t w0, int64_t stride, int64_t count,
                                 uint32_t* s, uint32_t* x_sum) {
  for (int64_t o = 0; o < count; ++o) {
    const int32_t a = x0[o * stride];
    s[o] += static_cast<uint32_t>(a * w0);
    x_sum[o] += static_cast<uint32_t>(a);
  }
}

struct DepthwisePlane {
  const uint8_t* padded = nullptr;  // the channel with its padding, rows of `width`
  int64_t width = 0;
  const int8_t* weight = nullptr;  // the taps of one output channel
};

// S and X (header) of one output channel, rows of plan.out.w outputs.
QPARITY_MULTIVERSION
void depthwise_sums(const ConvPlan& plan, const DepthwisePlane& d, bool saturate, uint32_t* s,
                    uint32_t* x_sum) {
  const Conv2dGeometry& g = plan.args->geometry;
  const int64_t kw_count = plan.args->weight_shape.w;
  const int64_t ow_count = plan.out.w;
  const auto tap_row = [&](int64_t oh, int64_t tap) {
    return d.padded + (oh * g.stride_h + (tap / kw_count) * g.dilation_h) * d.width +
           (tap % kw_count) * g.dilation_w;
  };
  std::fill(s, s + plan.plane, 0u);
  std::fill(x_sum, x_sum + plan.plane, 0u);
  for (int64_t oh = 0; oh < plan.out.h; ++oh) {
    uint32_t* so = s + oh * ow_count;
    uint32_t* xo = x_sum + oh * ow_count;
    int64_t tap = 0;
    for (; tap + 1 < plan.taps; tap += 2) {
      const uint8_t* x0 = tap_row(oh, tap);
      const uint8_t* x1 = tap_row(oh, tap + 1);
      const int32_t w0 = d.weight[tap], w1 = d.weight[tap + 1];
      // Stride 1 spelled out so the loads are contiguous and the loop vectorizes.
      if (saturate && g.stride_w == 1) depthwise_pair_row<true>(x0, x1, w0, w1, 1, ow_count, so, xo);
      else if (saturate) depthwise_pair_row<true>(x0, x1, w0, w1, g.stride_w, ow_count, so, xo);
      else if (g.stride_w == 1) depthwise_pair_row<false>(x0, x1, w0, w1, 1, ow_count, so, xo);
      else depthwise_pair_row<false>(x0, x1, w0, w1, g.stride_w, ow_count, so, xo);
    }
    if (tap < plan.taps) {
      depthwise_single_row(tap_row(oh, tap), d.weight[tap], g.stride_w, ow_count, so, xo);
    }
  }
}

void depthwise_conv(const ConvPlan& plan, std::vector<int32_t>& out) {
  const QuantizedConv2dArgs& a = *plan.args;
  const Shape4& in = a.input_shape;
  const Conv2dGeometry& g = a.geometry;
  // A channel-pair model pairs channels of one group; with one channel there is no pair.
  const bool saturate =
      plan.model.saturate_pairs && plan.model.order != ReductionLayout::Order::kTapMajorEvenChannels;
  const int64_t height = in.h + 2 * g.pad_h, width = in.w + 2 * g.pad_w;
  std::vector<uint8_t> padded(sz(height * width));
  std::vector<uint32_t> s(sz(plan.plane)), x_sum(sz(plan.plane));
  for (int64_t n = 0; n < in.n; ++n) {
    for (int64_t c = 0; c < in.c; ++c) {
      std::fill(padded.begin(), padded.end(), plan.padding_bin);
      const uint8_t* x = a.input.data() + (n * in.c + c) * in.h * in.w;
      for (int64_t ih = 0; ih < in.h; ++ih) {
        std::memcpy(padded.data() + (ih + g.pad_h) * width + g.pad_w, x + ih * in.w, sz(in.w));
      }
      for (int64_t mg = 0; mg < plan.group_outputs; ++mg) {
        const int64_t m = c * plan.group_outputs + mg;
        depthwise_sums(plan, {padded.data(), width, a.weight.data() + m * plan.taps}, saturate,
                       s.data(), x_sum.data());
        int32_t* acc = out.data() + (n * plan.out.c + m) * plan.plane;
        for (int64_t p = 0; p < plan.plane; ++p) {
          acc[p] = plan.finish(s[sz(p)], x_sum[sz(p)], m, plan.weight_term(m, p));
        }
      }
    }
  }
}

// ---- Pointwise with few channels (e.g. the seed's 3 -> 3 1x1 conv): a plane at a time, where a
// 16-channel GEMM tile would mostly hold padding. One tap and no padding: every model pairs
// channels (2j, 2j+1) (eq. 6.5, 6.5b, 6.6, 6.6b); an odd last channel stands alone.

template <bool kSaturate>
[[gnu::always_inline]] inline void planar_pair(const uint8_t* x0, const uint8_t* x1, int32_t w0,
                                               int32_t w1, int64_t plane, uint32_t* s) {
  for (int64_t p = 0; p < plane; ++p) {
    int32_t v = x0[p] * w0 + x1[p] * w1;
    if constexpr (kSaturate) v = saturate_to_int16(v);
    s[p] += static_cast<uint32_t>(v);
  }
}

// S, X and the accumulators (header) of image n, plane by plane.
QPARITY_MULTIVERSION
void planar_pointwise_image(const ConvPlan& plan, int64_t n, bool saturate, uint32_t* x_sum,
                            int32_t* acc) {
  const QuantizedConv2dArgs& a = *plan.args;
  const int64_t plane = plan.plane, channels = plan.group_channels;
  for (int64_t group = 0; group < a.geometry.groups; ++group) {
    const uint8_t* x = a.input.data() + (n * a.input_shape.c + group * channels) * plane;
    std::fill(x_sum, x_sum + plane, 0u);
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t p = 0; p < plane; ++p) x_sum[p] += x[c * plane + p];
    }
    for (int64_t mg = 0; mg < plan.group_outputs; ++mg) {
      const int64_t m = group * plan.group_outputs + mg;
      const int8_t* w = a.weight.data() + m * channels;
      auto* s = reinterpret_cast<uint32_t*>(acc + (n * plan.out.c + m) * plane);
      std::fill(s, s + plane, 0u);
      int64_t c = 0;
      for (; c + 1 < channels; c += 2) {
        const uint8_t* x0 = x + c * plane;
        if (saturate) {
          planar_pair<true>(x0, x0 + plane, w[c], w[c + 1], plane, s);
        } else {
          planar_pair<false>(x0, x0 + plane, w[c], w[c + 1], plane, s);
        }
      }
      if (c < channels) {
        const uint8_t* x0 = x + c * plane;
        const int32_t w0 = w[c];
        for (int64_t p = 0; p < plane; ++p) s[p] += static_cast<uint32_t>(x0[p] * w0);
      }
      const uint32_t w_zp = plan.w_zp[sz(m)], weight_term = plan.x_zp * plan.full_weight[sz(m)];
      for (int64_t p = 0; p < plane; ++p) s[p] = s[p] - w_zp * x_sum[p] - weight_term;
    }
  }
}

bool takes_planar_pointwise(const ConvPlan& plan) {
  const QuantizedConv2dArgs& a = *plan.args;
  const Conv2dGeometry& g = a.geometry;
  const bool pointwise = a.weight_shape.h == 1 && a.weight_shape.w == 1 && g.stride_h == 1 &&
                         g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
  // A channel-major (tap-pair) model on one tap pairs nothing: left to the GEMM, which knows.
  return pointwise && plan.model.order != ReductionLayout::Order::kChannelMajorEvenTaps &&
         plan.group_outputs < kPlanarBelowOutputs;
}

void planar_pointwise(const ConvPlan& plan, std::vector<int32_t>& out) {
  std::vector<uint32_t> x_sum(sz(plan.plane));
  for (int64_t n = 0; n < plan.out.n; ++n) {
    planar_pointwise_image(plan, n, plan.model.saturate_pairs, x_sum.data(), out.data());
  }
}

}  // namespace

std::string_view to_string(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kPortable: return "portable";
    case KernelIsa::kAvx2: return "avx2";
  }
  return "?";
}

std::vector<KernelIsa> runnable_kernel_isas() {
  std::vector<KernelIsa> isas{KernelIsa::kPortable};
#ifdef QPARITY_AVX2_KERNELS
  if (detect_cpu_features().avx2) isas.push_back(KernelIsa::kAvx2);
#endif
  return isas;
}

KernelIsa preferred_kernel_isa() {
  static const KernelIsa isa = runnable_kernel_isas().back();  // the CPU does not change
  return isa;
}

bool conv2d_accumulators_fast(const QuantizedConv2dArgs& a, AccumulationModel model,
                              KernelIsa isa, std::vector<int32_t>& out) {
  const Shape4 shape = conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  if (static_cast<int64_t>(a.input.size()) != a.input_shape.numel() ||
      static_cast<int64_t>(a.weight.size()) != a.weight_shape.numel()) {
    throw std::invalid_argument("conv2d: input or weight size does not match its shape");
  }
  const FastModel fast = fast_model_of(model);
  if (fast.padding_reads_zero_point && (a.input_zero_point < 0 || a.input_zero_point > 255)) {
    return false;  // the padded bin x_zp would not fit the u8 im2col
  }
  out.resize(sz(shape.numel()));
  const ConvPlan plan = make_plan(a, fast, shape);
  if (takes_planar_pointwise(plan)) {
    planar_pointwise(plan, out);
  } else if (plan.group_channels == 1) {
    depthwise_conv(plan, out);
  } else {
    gemm_conv(plan, isa, out);
  }
  return true;
}

}  // namespace qparity
