// The vectorizable span kernels against their scalar references (the normative definitions),
// bit for bit, on random inputs biased to edges: exact .5 ties, saturation, huge values,
// infinities and NaN, zero points at the range ends.
#include <gtest/gtest.h>

#include <bit>
#include <iostream>
#include <string>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "qparity/numerics/fake_quant.h"
#include "qparity/diff/compare.h"
#include "qparity/numerics/span_kernels.h"
#include "qparity/version.h"

namespace qparity {
namespace {

// The multiversioned kernels run the clone the build asks for: with QPARITY_FORCE_BASELINE (the
// sanitized build of scripts/test.sh) the baseline code even on an AVX2 machine, so every test
// below then checks the code a CPU without AVX2 runs.
TEST(SpanKernels, RunTheCloneTheBuildAsksFor) {
  const std::string clone(kernel_clone());
  std::cout << "[ kernels  ] this process runs the " << clone << " clone\n";
  RecordProperty("kernel_clone", clone);
#if defined(QPARITY_FORCE_BASELINE) || !defined(__x86_64__) || !defined(__GNUC__) || \
    defined(__clang__)
  EXPECT_EQ(clone, "default");
#else
  EXPECT_EQ(clone, __builtin_cpu_supports("avx2") ? "avx2" : "default");
#endif
}

constexpr float kInf = std::numeric_limits<float>::infinity();

// Random floats on a grid's scale, with ties, extremes and non-finite values mixed in.
std::vector<float> edge_inputs(std::mt19937& rng, float scale, size_t n) {
  std::uniform_real_distribution<float> steps(-300.0f, 300.0f);
  std::uniform_int_distribution<int> kind(0, 9), integer(-300, 300);
  std::vector<float> x(n);
  for (float& v : x) {
    switch (kind(rng)) {
      case 0:
        v = (static_cast<float>(integer(rng)) + 0.5f) * scale;  // a tie in x/scale units
        break;
      case 1:
        v = std::nextafter((static_cast<float>(integer(rng)) + 0.5f) * scale, kInf);
        break;
      case 2:
        v = std::uniform_real_distribution<float>(-1e30f, 1e30f)(rng);  // beyond int64 steps
        break;
      case 3: {
        const float specials[] = {kInf, -kInf, std::nanf(""), 0.0f, -0.0f, 1e-40f};
        v = specials[std::uniform_int_distribution<int>(0, 5)(rng)];
        break;
      }
      default:
        v = steps(rng) * scale;
    }
  }
  return x;
}

std::vector<QuantGrid> u8_grids() {
  return {{1.0f / 255.0f, 0, {0, 255}},   {0.1f, 128, {0, 255}},  {0.037f, 255, {0, 255}},
          {6.1e-5f, 3, {0, 127}},          {2.5f, 0, {0, 255}},    {0.0078125f, 200, {10, 250}},
          {1e-30f, 7, {0, 255}}};
}

uint32_t bits(float v) { return std::bit_cast<uint32_t>(v); }

TEST(SpanKernels, FakeQuantizeEqualsEq41) {
  std::mt19937 rng(11);
  for (const QuantGrid& g : u8_grids()) {
    const std::vector<float> x = edge_inputs(rng, g.scale, 20000);
    std::vector<float> values(x.size()), values_only(x.size());
    std::vector<uint8_t> bins(x.size());
    fake_quantize_span(x, g, values, bins);
    fake_quantize_span(x, g, values_only, {});
    std::vector<uint8_t> bins_only(x.size());
    fake_quant_bins_span(x, g, bins_only);
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(bins_only[i], fake_quant_bin(x[i], g)) << x[i];
      ASSERT_EQ(bits(values[i]), bits(fake_quantize_value(x[i], g))) << x[i] << " scale " << g.scale;
      ASSERT_EQ(bits(values_only[i]), bits(values[i]));
      ASSERT_EQ(bins[i], fake_quant_bin(x[i], g)) << x[i];
    }
  }
}

TEST(SpanKernels, FakeQuantizeOnSignedAndWideRanges) {
  std::mt19937 rng(12);
  for (const QuantGrid& g : {QuantGrid{0.02f, -128, {-128, 127}}, QuantGrid{0.5f, 5, {-127, 127}},
                             QuantGrid{1e-3f, 0, {-2147483648LL, 2147483647LL}}}) {
    const std::vector<float> x = edge_inputs(rng, g.scale, 20000);
    std::vector<float> values(x.size());
    fake_quantize_span(x, g, values, {});
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(bits(values[i]), bits(fake_quantize_value(x[i], g))) << x[i];
    }
  }
}

TEST(SpanKernels, QuantizeEqualsEq51) {
  std::mt19937 rng(13);
  for (const QuantGrid& g : u8_grids()) {
    const std::vector<float> x = edge_inputs(rng, g.scale, 20000);
    std::vector<uint8_t> q(x.size());
    quantize_span(x, g, q);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(q[i], quantize_value(x[i], g)) << x[i];
  }
}

TEST(SpanKernels, DequantizeEqualsEq52) {
  std::vector<uint8_t> q(256);
  for (int b = 0; b < 256; ++b) q[static_cast<size_t>(b)] = static_cast<uint8_t>(b);
  for (const QuantGrid& g : u8_grids()) {
    std::vector<float> out(q.size());
    dequantize_span(q, g.scale, g.zero_point, out);
    for (size_t i = 0; i < q.size(); ++i) {
      ASSERT_EQ(bits(out[i]), bits(dequantize_value(q[i], g.scale, g.zero_point)));
    }
  }
}

TEST(SpanKernels, RequantizeEqualsEachSchemesScalarTail) {
  std::mt19937 rng(14);
  std::uniform_int_distribution<int32_t> acc_small(-100000, 100000);
  std::uniform_int_distribution<int32_t> acc_any(std::numeric_limits<int32_t>::min(),
                                                 std::numeric_limits<int32_t>::max());
  std::uniform_real_distribution<float> log_scale(-6.0f, 1.5f), bias(-50.0f, 50.0f);
  std::uniform_int_distribution<int> zp(0, 255), coin(0, 1);
  int saturated = 0;
  for (int trial = 0; trial < 300; ++trial) {
    for (RequantScheme scheme : {RequantScheme::kQnnpackFp32, RequantScheme::kOnednnReciprocalFp32,
                                 RequantScheme::kFbgemmFp32}) {
      const RequantInputs in{.input_scale = std::pow(10.0f, log_scale(rng)),
                             .weight_scale = std::pow(10.0f, log_scale(rng)),
                             .output_scale = std::pow(10.0f, log_scale(rng)),
                             .output_zero_point = zp(rng),
                             .bias = bias(rng),
                             .has_bias = coin(rng) == 1,
                             .relu = coin(rng) == 1};
      RequantChannel r;
      try {
        r = prepare_requant(scheme, in);
      } catch (const std::invalid_argument&) {
        continue;  // qnnpack refuses non-normal multipliers; nothing to compare
      }
      std::vector<int32_t> acc(512);
      for (size_t i = 0; i < acc.size(); ++i) acc[i] = i % 4 == 0 ? acc_any(rng) : acc_small(rng);
      std::vector<uint8_t> out(acc.size());
      requantize_span(acc, r, out);
      for (size_t i = 0; i < acc.size(); ++i) {
        const uint8_t expected = requantize(acc[i], r);
        ASSERT_EQ(out[i], expected) << "scheme " << static_cast<int>(scheme) << " acc " << acc[i];
        saturated += expected == 0 || expected == 255;
      }
    }
  }
  EXPECT_GT(saturated, 0) << "the inputs must reach the clamps";
}

}  // namespace
}  // namespace qparity

namespace qparity {
namespace {

// count_mismatches is the fast path of compare_paths' two counts: they must agree, with one
// shared value table (floats follow bins) and with two different ones.
TEST(Compare, CountMismatchesEqualsTheFullComparison) {
  std::mt19937 rng(21);
  std::uniform_int_distribution<int> bin(0, 255), coin(0, 3);
  const Shape4 shape{1, 3, 7, 256};
  std::array<float, 256> a{}, b{}, c{};
  for (int i = 0; i < 256; ++i) {
    a[static_cast<size_t>(i)] = static_cast<float>(i) * 0.01f;
    b[static_cast<size_t>(i)] = static_cast<float>(i) * 0.0100001f;
    c[static_cast<size_t>(i)] = static_cast<float>(i / 2);  // not injective
  }
  for (const auto* tables : {&a, &b, &c}) {
    std::vector<uint8_t> x(static_cast<size_t>(shape.numel())), y(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = static_cast<uint8_t>(bin(rng));
      y[i] = coin(rng) == 0 ? static_cast<uint8_t>(bin(rng)) : x[i];
    }
    const PathOutputs first{x, &a};
    const PathOutputs second{y, tables};
    const Comparison full = compare_paths(shape, first, second);
    const MismatchCounts fast = count_mismatches(first, second);
    EXPECT_EQ(fast.bins, full.bin_mismatch_count);
    EXPECT_EQ(fast.floats, full.fp32_mismatch_count);
    EXPECT_GT(fast.bins, 0);
  }
}

}  // namespace
}  // namespace qparity
