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

TEST(FakeQuantize, DequantizesInDoubleWithOneRounding) {
  // (q - zp) * s in double then one rounding can differ from the float product of §5.2.
  const float s = 0.1f;
  const QuantGrid g{s, 0, {-100000, 100000}};
  for (int q = 1; q < 5000; ++q) {
    const float x = static_cast<float>(q) * s;
    const float expected = static_cast<float>(static_cast<double>(fake_quant_bin(x, g)) * s);
    ASSERT_EQ(fake_quantize_value(x, g), expected);
  }
}

}  // namespace
}  // namespace qparity
