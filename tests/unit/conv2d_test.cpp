// Integer conv and requantization: accumulator models and the three requant schemes.
#include <gtest/gtest.h>

#include <bit>
#include <random>
#include <vector>

#include "qparity/ops/conv2d.h"

namespace qparity {
namespace {

BackendProfile profile(const char* name, bool vnni) {
  CpuFeatures cpu;
  cpu.avx512_vnni = vnni;
  return *make_backend_profile(name, cpu);
}

TEST(Conv2d, OutputShapeWithStridePaddingDilation) {
  const Conv2dGeometry g{.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .dilation_h = 2,
                         .dilation_w = 2};
  EXPECT_EQ(conv2d_output_shape({1, 4, 9, 9}, {8, 4, 3, 3}, g), (Shape4{1, 8, 4, 4}));
  EXPECT_THROW(conv2d_output_shape({1, 4, 9, 9}, {8, 3, 3, 3}, {}), std::invalid_argument);
}

TEST(Conv2d, ExactAccumulatorSubtractsZeroPointsAndSkipsPadding) {
  const std::vector<uint8_t> x{10, 20, 30, 40};  // 1x1x2x2
  const std::vector<int8_t> w{1, 1, 1, 1, 1, 1, 1, 1, 1};
  QuantizedConv2dArgs a{.input = x, .input_shape = {1, 1, 2, 2}, .input_zero_point = 10,
                        .weight = w, .weight_shape = {1, 1, 3, 3}, .weight_scales = {1.0f},
                        .weight_zero_points = {0},
                        .geometry = {.pad_h = 1, .pad_w = 1}};
  const auto acc = conv2d_accumulators(a, AccumulationModel::kExactInt32);
  // Every output sees all four inputs: (0 + 10 + 20 + 30).
  EXPECT_EQ(acc, (std::vector<int32_t>{60, 60, 60, 60}));
}

TEST(Conv2d, PairSaturationClampsAdjacentChannelProductsToInt16) {
  const std::vector<uint8_t> x{255, 255, 255};  // 1x3x1x1
  const std::vector<int8_t> w{127, 127, 127};
  QuantizedConv2dArgs a{.input = x, .input_shape = {1, 3, 1, 1}, .weight = w,
                        .weight_shape = {1, 3, 1, 1}, .weight_scales = {1.0f},
                        .weight_zero_points = {0}};
  EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kExactInt32)[0], 3 * 255 * 127);
  // Channels (0,1) saturate to 32767; channel 2 pairs with nothing.
  EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kInt16PairSaturation)[0], 32767 + 255 * 127);
}

TEST(Requantize, ZeroPointBeforeOrAfterRoundingSplitsTies) {
  // acc * multiplier = 2.5 exactly with an odd output zero point 3:
  // qnnpack / fbgemm round first: RNE(2.5) + 3 = 5; onednn adds in float: RNE(5.5) = 6.
  RequantInputs in{.input_scale = 0.5f, .weight_scale = 1.0f, .output_scale = 1.0f,
                   .output_zero_point = 3};
  EXPECT_EQ(requantize(5, prepare_requant(RequantScheme::kQnnpackFp32, in)), 5);
  EXPECT_EQ(requantize(5, prepare_requant(RequantScheme::kFbgemmFp32, in)), 5);
  EXPECT_EQ(requantize(5, prepare_requant(RequantScheme::kOnednnReciprocalFp32, in)), 6);
}

TEST(Requantize, QnnpackRoundsBiasToTheAccumulatorGrid) {
  // bias 0.3 on grid 1.0 -> 0 in qnnpack; onednn/fbgemm keep it as 0.3.
  RequantInputs in{.input_scale = 1.0f, .weight_scale = 1.0f, .output_scale = 1.0f,
                   .bias = 0.3f, .has_bias = true};
  EXPECT_EQ(prepare_requant(RequantScheme::kQnnpackFp32, in).int_bias, 0);
  EXPECT_EQ(requantize(2, prepare_requant(RequantScheme::kQnnpackFp32, in)), 2);
  in.bias = 0.6f;
  EXPECT_EQ(requantize(2, prepare_requant(RequantScheme::kQnnpackFp32, in)), 3);
  EXPECT_EQ(prepare_requant(RequantScheme::kFbgemmFp32, in).float_bias, 0.6f);
}

TEST(Requantize, ReluClampsAtTheZeroPoint) {
  RequantInputs in{.output_zero_point = 100, .relu = true};
  for (auto scheme : {RequantScheme::kQnnpackFp32, RequantScheme::kOnednnReciprocalFp32,
                      RequantScheme::kFbgemmFp32}) {
    const auto r = prepare_requant(scheme, in);
    EXPECT_EQ(requantize(-50, r), 100);
    EXPECT_EQ(requantize(50, r), 150);
    EXPECT_EQ(requantize(1000, r), 255);
  }
}

TEST(Requantize, QnnpackRefusesNonNormalMultipliers) {
  RequantInputs in{.input_scale = 1e-30f, .weight_scale = 1e-20f, .output_scale = 1.0f};
  EXPECT_THROW(prepare_requant(RequantScheme::kQnnpackFp32, in), std::invalid_argument);
}

TEST(BackendProfile, OnednnAccumulationDependsOnVnni) {
  EXPECT_EQ(profile("onednn", true).accumulation, AccumulationModel::kExactInt32);
  EXPECT_EQ(profile("onednn", false).accumulation, AccumulationModel::kInt16PairSaturation);
  EXPECT_FALSE(profile("fbgemm", true).verified_against_real_kernel);
  EXPECT_FALSE(make_backend_profile("tpu", {}).has_value());
}

// The pointwise fast kernels must equal the reference bit for bit on random data, with groups,
// biases, ReLU, zero points anywhere and values that make float sums round.
TEST(Conv2d, PointwiseFastKernelsEqualTheReference) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> real(-3.0f, 3.0f);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t groups = 1 + trial % 3;
    const Shape4 in{1 + trial % 2, 2 * groups * (1 + trial % 2), 3 + trial % 4, 5 + trial % 3};
    const Shape4 wt{groups * (1 + trial % 3), in.c / groups, 1, 1};
    std::vector<float> xf(static_cast<size_t>(in.numel())), wf(static_cast<size_t>(wt.numel()));
    std::vector<float> bias(static_cast<size_t>(wt.n));
    for (auto* v : {&xf, &wf, &bias}) for (float& e : *v) e = real(rng);
    FloatConv2dArgs fa{.input = xf, .input_shape = in, .weight = wf, .weight_shape = wt,
                       .bias = trial % 2 ? std::span<const float>(bias) : std::span<const float>(),
                       .geometry = {.groups = groups}, .relu = trial % 3 == 0};
    const auto fast = conv2d_float(fa);
    fa.force_reference = true;
    const auto reference = conv2d_float(fa);
    ASSERT_EQ(fast.size(), reference.size());
    for (size_t i = 0; i < fast.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(fast[i]), std::bit_cast<uint32_t>(reference[i])) << i;
    }

    std::vector<uint8_t> xq(static_cast<size_t>(in.numel()));
    std::vector<int8_t> wq(static_cast<size_t>(wt.numel()));
    for (auto& e : xq) e = static_cast<uint8_t>(u8(rng));
    for (auto& e : wq) e = static_cast<int8_t>(s8(rng));
    std::vector<int64_t> zps(static_cast<size_t>(wt.n));
    for (auto& z : zps) z = s8(rng);
    QuantizedConv2dArgs qa{.input = xq, .input_shape = in, .input_zero_point = u8(rng),
                           .weight = wq, .weight_shape = wt,
                           .weight_scales = std::vector<float>(zps.size(), 1.0f),
                           .weight_zero_points = zps, .geometry = {.groups = groups}};
    const auto fast_acc = conv2d_accumulators(qa, AccumulationModel::kExactInt32);
    qa.force_reference = true;
    EXPECT_EQ(fast_acc, conv2d_accumulators(qa, AccumulationModel::kExactInt32));
  }
}

TEST(Conv2d, OnednnRejectsNonzeroWeightZeroPoint) {
  const std::vector<uint8_t> x{1};
  const std::vector<int8_t> w{1};
  QuantizedConv2dArgs a{.input = x, .input_shape = {1, 1, 1, 1}, .weight = w,
                        .weight_shape = {1, 1, 1, 1}, .weight_scales = {1.0f},
                        .weight_zero_points = {3}};
  EXPECT_THROW(conv2d_quantized(profile("onednn", true), a), std::invalid_argument);
  EXPECT_NO_THROW(conv2d_quantized(profile("qnnpack", true), a));
}

}  // namespace
}  // namespace qparity
