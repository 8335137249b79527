// Integer conv and requantization: accumulator models and the three requant schemes.
#include <gtest/gtest.h>

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
