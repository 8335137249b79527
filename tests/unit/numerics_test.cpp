// Contracts of the scalar primitives: rounding, quantize, dequantize, fake quantize.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "qparity/numerics/fake_quant.h"
#include "qparity/numerics/float32.h"
#include "qparity/numerics/quantize.h"

namespace qparity {
namespace {

TEST(Float32, TruncationMatchesX86IndefiniteInteger) {
  EXPECT_EQ(truncate_to_int64_x86(2.9f), 2);
  EXPECT_EQ(truncate_to_int64_x86(-2.9f), -2);
  EXPECT_EQ(truncate_to_int64_x86(std::numeric_limits<float>::infinity()),
            std::numeric_limits<int64_t>::min());
  EXPECT_EQ(truncate_to_int64_x86(-std::numeric_limits<float>::infinity()),
            std::numeric_limits<int64_t>::min());
  EXPECT_EQ(truncate_to_int64_x86(std::nanf("")), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(truncate_to_int64_x86(1e19f), std::numeric_limits<int64_t>::min());
}

TEST(Float32, RoundHalfEvenEqualsNearbyintOnEveryFloat) {
  // Exhaustive: all 2^32 bit patterns, compared bit for bit (signed zeros and NaN payloads too).
  uint64_t mismatches = 0;
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; ++bits) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(bits));
    const float expected = std::nearbyint(x);
    const float got = round_half_even(x);
    if (std::bit_cast<uint32_t>(expected) != std::bit_cast<uint32_t>(got) &&
        !(std::isnan(expected) && std::isnan(got))) {
      if (mismatches++ < 5) ADD_FAILURE() << "x = " << x << " (bits " << bits << ")";
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(Float32, Cvtps2dqRoundsHalfToEvenAndOverflowsToIntMin) {
  EXPECT_EQ(convert_to_int32_x86(2.5f), 2);
  EXPECT_EQ(convert_to_int32_x86(3.5f), 4);
  EXPECT_EQ(convert_to_int32_x86(-2.5f), -2);
  EXPECT_EQ(convert_to_int32_x86(2147483648.0f), std::numeric_limits<int32_t>::min());
}

TEST(Float32, UlpDistanceCountsRepresentableSteps) {
  EXPECT_EQ(ulp_distance(1.0f, std::nextafter(1.0f, 2.0f)), 1);
  EXPECT_EQ(ulp_distance(1.0f, 1.0f), 0);
  EXPECT_EQ(ulp_distance(std::nextafter(0.0f, 1.0f), -std::nextafter(0.0f, 1.0f)), -2);
}

TEST(Quantize, RoundsHalfToEvenBeforeAddingTheZeroPoint) {
  // In x/scale units 0.5 -> 0 and 1.5 -> 2; with an odd zero point the result is odd,
  // which rounding after the zero point add (0.5 + 1 = 1.5 -> 2) would not give.
  const QuantGrid g{1.0f, 1, {0, 255}};
  EXPECT_EQ(quantize_value(0.5f, g), 1);
  EXPECT_EQ(quantize_value(1.5f, g), 3);
  EXPECT_EQ(quantize_value(2.5f, g), 3);
  EXPECT_EQ(quantize_value(-0.5f, g), 1);
}

TEST(Quantize, SaturatesToTheRange) {
  const QuantGrid g{0.5f, 0, {-128, 127}};
  EXPECT_EQ(quantize_value(1000.0f, g), 127);
  EXPECT_EQ(quantize_value(-1000.0f, g), -128);
  // An infinite x/scale becomes INT64_MIN in the unchecked cast, then qmin.
  EXPECT_EQ(quantize_value(std::numeric_limits<float>::infinity(), g), -128);
}

TEST(Quantize, MultipliesByTheFloatReciprocal) {
  // Near .5 ties in x/s units, x * f(1/s) and x / s can round to different bins; the
  // quantizer must follow the reciprocal product (eq. 5.1). Guard: the search must find
  // such cases, or the test would prove nothing.
  int differing = 0;
  for (const float scale : {0.1f, 0.0123f, 3.7e-3f, 1.0f / 255.0f}) {
    const float inv = 1.0f / scale;
    const QuantGrid g{scale, 0, {-1000000, 1000000}};
    for (int n = 0; n < 20000; ++n) {
      const auto tie = static_cast<float>((n + 0.5) * static_cast<double>(scale));
      for (const float x : {std::nextafter(tie, 0.0f), tie, std::nextafter(tie, 1e9f)}) {
        const float by_product = std::nearbyint(x * inv);
        const float by_division = std::nearbyint(x / scale);
        ASSERT_EQ(quantize_value(x, g), static_cast<int64_t>(by_product)) << x << " / " << scale;
        differing += by_product != by_division;
      }
    }
  }
  EXPECT_GT(differing, 0) << "the search must contain cases that tell the two apart";
}

TEST(Dequantize, PerTensorIsFloatProduct) {
  EXPECT_EQ(dequantize_value(255, 1.0f / 255.0f, 0), (1.0f / 255.0f) * 255.0f);
  EXPECT_EQ(dequantize_value(-128, 0.5f, 1), -64.5f);
}

TEST(FakeQuantize, OutputAndBinFollowEq41) {
  const QuantGrid g{0.25f, 3, {0, 15}};
  EXPECT_EQ(fake_quant_bin(0.375f, g), 5);  // 1.5 -> 2 (even), + 3
  EXPECT_EQ(fake_quantize_value(0.375f, g), 0.5f);
  EXPECT_EQ(fake_quant_bin(100.0f, g), 15);
  EXPECT_EQ(fake_quantize_value(100.0f, g), 3.0f);  // (15 - 3) * 0.25
  EXPECT_EQ(fake_quant_bin(-100.0f, g), 0);
  EXPECT_EQ(fake_quantize_value(-100.0f, g), -0.75f);
}

// eq. 4.1, second line: y = f((clamp(q) - zp) * s), the exact product rounded to float once.
// (This replaces DequantizesInDoubleWithOneRounding, which compared the implementation with its
// own formula: a product of two floats is exact in double, so "in double, then one rounding" and
// the float product f((q - zp) * s) are the same operation and no test can tell them apart. What
// can go wrong is a second rounding, e.g. f(f(q * s) - f(zp * s)), or dequantizing the
// unclamped bin.) The expected value is derived from the definition, not from the code: the
// exact product, held in a double (proved exact below), and the float nearest to it, ties to
// even, found by comparing y with its two float neighbours.
TEST(FakeQuantize, OutputIsTheExactProductRoundedOnce) {
  int64_t checked = 0, two_roundings_differ = 0, clamped = 0;
  for (const float s : {0.1f, 1.0f / 255.0f, 0.0078431377f, 3.0517578e-5f, 7.3f, 1e-30f}) {
    for (const int64_t zp : {int64_t{-128}, int64_t{-3}, int64_t{0}, int64_t{1}, int64_t{37},
                             int64_t{127}, int64_t{255}}) {
      const QuantGrid g{s, zp, {-128, 255}};
      for (int64_t step = -500; step <= 500; ++step) {
        // Inputs on and between the grid points, beyond both ends of the range too.
        const float x = static_cast<float>(static_cast<double>(step) * 0.5 * static_cast<double>(s));
        const int64_t bin = fake_quant_bin(x, g);
        ASSERT_GE(bin, g.range.min);
        ASSERT_LE(bin, g.range.max);
        clamped += bin != fake_quant_unclamped_bin(x, g.scale, g.zero_point);
        const double a = static_cast<double>(bin - zp), b = static_cast<double>(s);
        const double exact = a * b;
        ASSERT_EQ(std::fma(a, b, -exact), 0.0) << "the product must be exact in double";
        const float y = fake_quantize_value(x, g);
        const double below = std::nextafter(y, -std::numeric_limits<float>::infinity());
        const double above = std::nextafter(y, std::numeric_limits<float>::infinity());
        const double error = std::abs(static_cast<double>(y) - exact);
        ASSERT_LE(error, std::abs(below - exact)) << "x " << x << " s " << s << " zp " << zp;
        ASSERT_LE(error, std::abs(above - exact)) << "x " << x << " s " << s << " zp " << zp;
        if (error == std::abs(below - exact) || error == std::abs(above - exact)) {
          ASSERT_EQ(std::bit_cast<uint32_t>(y) & 1u, 0u) << "a tie rounds to even: " << exact;
        }
        const float twice = static_cast<float>(bin) * s - static_cast<float>(zp) * s;
        two_roundings_differ += twice != y;
        ++checked;
      }
    }
  }
  // Guards against a vacuous test: the cases must tell one rounding from two, and clamp.
  EXPECT_GT(two_roundings_differ, 100) << "of " << checked;
  EXPECT_GT(clamped, 100) << "of " << checked;
}

}  // namespace
}  // namespace qparity
