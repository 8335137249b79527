// The fast conv kernels (conv2d_fast.h) against the normative reference kernels, bit for bit:
// every accumulation model, every ISA path this CPU runs, geometries drawn to reach each code
// path (depthwise, GEMM with one and several weight blocks and im2col blocks, odd channel and tap
// counts, padding wider than the kernel) and values biased to the edges that decide bits
// (bins 0 / 255, weights 127 / -128, zero points at the ends and far outside, pairs that
// saturate int16, sums that wrap int32; signed zeros, subnormals and cancellation in float).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

#include "qparity/ops/conv2d.h"
#include "qparity/ops/conv2d_fast.h"

namespace qparity {
namespace {

using Model = AccumulationModel;
constexpr Model kModels[] = {Model::kExactInt32,           Model::kInt16PairSaturation,
                             Model::kInt16GemmPairSaturation, Model::kFbgemmInt16GemmPairs,
                             Model::kFbgemmInt16ChannelPairs, Model::kFbgemmInt16TapPairs};

struct Geometry {
  Shape4 input, weight;
  Conv2dGeometry conv;
};

std::string describe(const Geometry& g) {
  std::ostringstream s;
  s << "input " << g.input.n << "x" << g.input.c << "x" << g.input.h << "x" << g.input.w
    << " weight " << g.weight.n << "x" << g.weight.c << "x" << g.weight.h << "x" << g.weight.w
    << " stride " << g.conv.stride_h << "," << g.conv.stride_w << " pad " << g.conv.pad_h << ","
    << g.conv.pad_w << " dilation " << g.conv.dilation_h << "," << g.conv.dilation_w
    << " groups " << g.conv.groups;
  return s.str();
}

// A random conv whose output is not empty. Case i cycles through the shapes that select the
// fast kernels' code paths: depthwise (1 channel per group, 1-3 outputs per group), small
// grouped and ungrouped GEMMs, and large ones (several 16-channel weight blocks, im2col rows
// longer than one 64 KiB block holds many of).
Geometry random_geometry(std::mt19937& rng, int i) {
  const auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (;;) {
    Geometry g;
    const int kind = i % 5;
    int64_t channels_per_group = pick(1, 9), outputs_per_group = pick(1, 20);
    g.conv.groups = pick(1, 3);
    if (kind == 0) {  // depthwise
      channels_per_group = 1;
      outputs_per_group = pick(1, 3);
      g.conv.groups = pick(1, 12);
    } else if (kind == 4) {  // large
      channels_per_group = pick(40, 70);
      outputs_per_group = pick(17, 40);
      g.conv.groups = pick(1, 2);
    }
    g.input = {pick(1, 3), g.conv.groups * channels_per_group, pick(1, 14), pick(1, 14)};
    g.weight = {g.conv.groups * outputs_per_group, channels_per_group, pick(1, 5), pick(1, 5)};
    g.conv.stride_h = pick(1, 3);
    g.conv.stride_w = pick(1, 3);
    g.conv.pad_h = pick(0, 3) * pick(0, 1);
    g.conv.pad_w = pick(0, 3) * pick(0, 1);
    g.conv.dilation_h = pick(1, 3) == 3 ? pick(2, 3) : 1;
    g.conv.dilation_w = pick(1, 3) == 3 ? pick(2, 3) : 1;
    if (kind == 3) {  // 1x1: half of them pointwise (the planar kernel below 32 outputs per
                      // group, the GEMM from 32), the others with stride or padding
      g.weight.h = g.weight.w = 1;
      g.weight.n = g.conv.groups * pick(1, 40);
      if (pick(0, 1)) g.conv = {.groups = g.conv.groups};
    }
    try {
      const Shape4 out = conv2d_output_shape(g.input, g.weight, g.conv);
      if (out.numel() > 0) return g;
    } catch (const std::invalid_argument&) {
    }
  }
}

// Bins and weights biased to the values that saturate pairs and decide rounding.
struct QuantizedCase {
  Geometry geometry;
  std::vector<uint8_t> input;
  std::vector<int8_t> weight;
  int64_t input_zero_point = 0;
  std::vector<int64_t> weight_zero_points;

  QuantizedConv2dArgs args() const {
    return {.input = input, .input_shape = geometry.input, .input_zero_point = input_zero_point,
            .weight = weight, .weight_shape = geometry.weight,
            .weight_scales = std::vector<float>(weight_zero_points.size(), 1.0f),
            .weight_zero_points = weight_zero_points,
            .weight_per_channel = weight_zero_points.size() > 1, .geometry = geometry.conv};
  }
};

QuantizedCase random_quantized_case(std::mt19937& rng, int i) {
  const auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  QuantizedCase c{.geometry = random_geometry(rng, i)};
  // Some cases push every bin to one end so that most pairs saturate, the others mix.
  const int style = pick(0, 3);
  c.input.resize(static_cast<size_t>(c.geometry.input.numel()));
  for (auto& x : c.input) {
    const int r = pick(0, 9);
    x = static_cast<uint8_t>(style == 0 ? 255 : r < 3 ? 255 : r < 5 ? 0 : r < 6 ? pick(250, 254)
                                                                          : pick(0, 255));
  }
  c.weight.resize(static_cast<size_t>(c.geometry.weight.numel()));
  const int sign = pick(0, 1);
  for (auto& w : c.weight) {
    const int r = pick(0, 9);
    const int high = sign ? 127 : -128;
    w = static_cast<int8_t>(style == 0 ? high : r < 3 ? high : r < 4 ? -high - 1
                            : r < 5 ? 0 : pick(-128, 127));
  }
  const int zp_style = pick(0, 9);
  c.input_zero_point = zp_style < 3 ? 0 : zp_style < 5 ? 255 : zp_style < 8 ? pick(0, 255)
                       : zp_style < 9 ? -70000 : (int64_t{1} << 33) + 12345;  // far outside: wraps
  const auto weight_zp = [&] {
    const int r = pick(0, 4);
    return int64_t{r == 0 ? 0 : r == 1 ? 127 : r == 2 ? -128 : pick(-128, 127)};
  };
  if (pick(0, 1)) {
    c.weight_zero_points.assign(1, pick(0, 2) == 0 ? 0 : weight_zp());
  } else {
    for (int64_t m = 0; m < c.geometry.weight.n; ++m) c.weight_zero_points.push_back(weight_zp());
  }
  return c;
}

// Compares the fast accumulators with the reference's; on a mismatch prints the element, both
// values, the zero points and the geometry.
void expect_fast_equals_reference(const QuantizedCase& c, Model model, KernelIsa isa,
                                  const std::vector<int32_t>& reference, int case_index) {
  std::vector<int32_t> fast;
  const bool taken = conv2d_accumulators_fast(c.args(), model, isa, fast);
  const bool zp_is_a_bin = c.input_zero_point >= 0 && c.input_zero_point <= 255;
  const bool reads_padding_as_zp = model == Model::kFbgemmInt16GemmPairs ||
                                   model == Model::kFbgemmInt16ChannelPairs ||
                                   model == Model::kFbgemmInt16TapPairs;
  ASSERT_EQ(taken, zp_is_a_bin || !reads_padding_as_zp) << "case " << case_index;
  if (!taken) return;
  ASSERT_EQ(fast.size(), reference.size());
  const Shape4 out = conv2d_output_shape(c.geometry.input, c.geometry.weight, c.geometry.conv);
  for (size_t e = 0; e < fast.size(); ++e) {
    if (fast[e] == reference[e]) continue;
    const auto i = static_cast<int64_t>(e);
    const int64_t m = i / (out.h * out.w) % out.c;
    FAIL() << to_string(model) << " on " << to_string(isa) << ", case " << case_index << ": "
           << describe(c.geometry) << "\noutput (n " << i / (out.c * out.h * out.w) << ", m " << m
           << ", oh " << i / out.w % out.h << ", ow " << i % out.w << "): fast " << fast[e]
           << ", reference " << reference[e] << "; x_zp " << c.input_zero_point << ", w_zp "
           << c.weight_zero_points[c.weight_zero_points.size() > 1 ? static_cast<size_t>(m) : 0];
  }
}

TEST(Conv2dFast, RunsThePortablePathAndAvx2WhereTheCpuHasIt) {
  const auto isas = runnable_kernel_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), KernelIsa::kPortable);
  EXPECT_EQ(preferred_kernel_isa(), isas.back());
  EXPECT_EQ(isas.size() > 1, detect_cpu_features().avx2);
}

// 1200 random cases x 6 models x every runnable ISA path. Guards against a vacuous proof: enough
// cases must saturate pairs (the model differs from exact), reach each kernel, and wrap.
TEST(Conv2dFast, Int8AccumulatorsEqualTheReferenceForEveryModelAndIsa) {
  std::mt19937 rng(2026);
  constexpr int kCases = 1200;
  int saturating = 0, depthwise = 0, multi_block = 0, odd_channels = 0, far_zero_point = 0;
  int planar = 0, pointwise_gemm = 0;
  const auto isas = runnable_kernel_isas();
  for (int i = 0; i < kCases; ++i) {
    const QuantizedCase c = random_quantized_case(rng, i);
    QuantizedConv2dArgs reference_args = c.args();
    reference_args.force_reference = true;
    const std::vector<int32_t> exact = conv2d_accumulators(reference_args, Model::kExactInt32);
    bool saturated = false;
    for (const Model model : kModels) {
      const std::vector<int32_t> reference =
          model == Model::kExactInt32 ? exact : conv2d_accumulators(reference_args, model);
      if (model == Model::kInt16GemmPairSaturation && reference != exact) saturated = true;
      for (const KernelIsa isa : isas) {
        expect_fast_equals_reference(c, model, isa, reference, i);
        if (HasFatalFailure()) return;
      }
    }
    saturating += saturated;
    depthwise += c.geometry.weight.c == 1;
    multi_block += c.geometry.weight.n / c.geometry.conv.groups > 16;
    odd_channels += c.geometry.weight.c % 2 == 1 && c.geometry.weight.c > 1;
    far_zero_point += c.input_zero_point < 0 || c.input_zero_point > 255;
    const Geometry& g = c.geometry;
    const bool pointwise = g.weight.h == 1 && g.weight.w == 1 && g.conv.stride_h == 1 &&
                           g.conv.stride_w == 1 && g.conv.pad_h == 0 && g.conv.pad_w == 0;
    planar += pointwise && g.weight.n / g.conv.groups < 32;
    pointwise_gemm += pointwise && g.weight.n / g.conv.groups >= 32;
  }
  EXPECT_GT(saturating, kCases / 5);
  EXPECT_GT(depthwise, kCases / 6);
  EXPECT_GT(multi_block, kCases / 10);
  EXPECT_GT(odd_channels, kCases / 6);
  EXPECT_GT(far_zero_point, kCases / 20);
  EXPECT_GT(planar, kCases / 20);
  EXPECT_GT(pointwise_gemm, kCases / 100);
}

// A reduction long enough that the exact sum itself leaves int32: 2100 channels x 16 taps of
// (255 - 0)(-128 - 127) = -65025 sum to -2.18e9; the pair models saturate every pair.
TEST(Conv2dFast, Int8AccumulatorsWrapLikeInt32Lanes) {
  QuantizedCase c{.geometry = {.input = {1, 2100, 4, 5}, .weight = {18, 2100, 4, 4}}};
  c.input.assign(static_cast<size_t>(c.geometry.input.numel()), 255);
  c.weight.assign(static_cast<size_t>(c.geometry.weight.numel()), -128);
  c.weight[7] = 127;
  c.weight_zero_points = {127};
  QuantizedConv2dArgs reference_args = c.args();
  reference_args.force_reference = true;
  const auto exact = conv2d_accumulators(reference_args, Model::kExactInt32);
  const int64_t unwrapped = int64_t{2100} * 16 * 255 * (-128 - 127);
  EXPECT_LT(unwrapped, std::numeric_limits<int32_t>::min());
  EXPECT_EQ(exact[2], static_cast<int32_t>(static_cast<uint32_t>(unwrapped)));
  for (const Model model : kModels) {
    const auto reference = conv2d_accumulators(reference_args, model);
    for (const KernelIsa isa : runnable_kernel_isas()) {
      expect_fast_equals_reference(c, model, isa, reference, 0);
    }
  }
}

// Float values that make bits depend on the order of operations and on skipping padded taps:
// infinities (a padded tap multiplied as 0·inf would turn an output into NaN), signed zeros,
// subnormals, magnitudes far apart (1e8 + 1 - 1e8), near-ties. NaN payloads are excluded from
// the bitwise claim: an IEEE add is commutative, GCC may order its operands either way in
// either kernel, and x86 returns the first NaN operand's payload; both kernels must still
// produce a NaN there.
float edge_float(std::mt19937& rng) {
  const auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  switch (pick(0, 11)) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return std::numeric_limits<float>::denorm_min() * static_cast<float>(pick(-5, 5));
    case 3: return pick(0, 1) ? 1e8f : -1e8f;
    case 4: return pick(0, 40) == 0 ? std::numeric_limits<float>::infinity() : 1.0f;
    case 5: return 0.5f + std::ldexp(1.0f, -24) * static_cast<float>(pick(-2, 2));
    default: return std::uniform_real_distribution<float>(-3.0f, 3.0f)(rng);
  }
}

bool same_float(float a, float b) {
  return std::isnan(a) ? std::isnan(b) : std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

// 1500 random convs, with and without bias and ReLU.
TEST(Conv2dFast, FloatConvEqualsTheReferenceBitForBit) {
  std::mt19937 rng(1913);
  constexpr int kCases = 1500;
  int non_finite = 0, channel_vectorised = 0, planar = 0;
  for (int i = 0; i < kCases; ++i) {
    const Geometry g = random_geometry(rng, i);
    std::vector<float> x(static_cast<size_t>(g.input.numel())), w(static_cast<size_t>(g.weight.numel()));
    std::vector<float> bias(static_cast<size_t>(g.weight.n));
    for (auto* v : {&x, &w, &bias}) for (float& e : *v) e = edge_float(rng);
    if (i % 7 == 0) std::fill(bias.begin(), bias.end(), -0.0f);
    FloatConv2dArgs a{.input = x, .input_shape = g.input, .weight = w, .weight_shape = g.weight,
                      .bias = i % 3 == 0 ? std::span<const float>() : std::span<const float>(bias),
                      .geometry = g.conv, .relu = i % 4 == 0, .force_reference = true};
    const auto reference = conv2d_float(a);
    channel_vectorised += g.weight.n / g.conv.groups >= 8;  // the path for groups of 8+ outputs
    planar += g.weight.h * g.weight.w == 1 && g.conv.stride_h == 1 && g.conv.stride_w == 1 &&
              g.conv.pad_h == 0 && g.conv.pad_w == 0 && g.weight.n / g.conv.groups < 8;
    std::vector<float> fast;
    conv2d_float_fast(a, fast);
    ASSERT_EQ(fast.size(), reference.size());
    for (size_t e = 0; e < fast.size(); ++e) {
      ASSERT_TRUE(same_float(fast[e], reference[e]))
          << "case " << i << " " << describe(g) << " element " << e << ": fast " << fast[e]
          << " (0x" << std::hex << std::bit_cast<uint32_t>(fast[e]) << "), reference "
          << reference[e] << " (0x" << std::bit_cast<uint32_t>(reference[e]) << ")";
      non_finite += !std::isfinite(reference[e]);
    }
  }
  EXPECT_GT(non_finite, 20);  // infinities reached outputs, so skipping padding mattered
  EXPECT_GT(channel_vectorised, kCases / 4);
  EXPECT_LT(channel_vectorised, kCases * 3 / 4);  // and the column-vectorised path as often
  EXPECT_GT(planar, kCases / 100);                // pointwise under 8 outputs per group
}

}  // namespace
}  // namespace qparity
