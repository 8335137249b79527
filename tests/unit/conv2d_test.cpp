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

// A CPU of each oneDNN ISA class, as cpuid would describe it.
CpuFeatures cpu_of(OnednnIsa isa) {
  CpuFeatures cpu;
  cpu.avx2 = true;
  if (isa != OnednnIsa::kAvx2) cpu.avx512f = cpu.avx512bw = cpu.avx512vl = cpu.avx512dq = true;
  cpu.avx512_vnni = isa == OnednnIsa::kVnni;
  return cpu;
}

BackendProfile onednn_on(OnednnIsa isa) { return *make_backend_profile("onednn", cpu_of(isa)); }

// The output bins of requantizing `acc` with the profile's per-channel constants.
std::vector<uint8_t> requantized(const BackendProfile& p, const QuantizedConv2dArgs& a,
                                 const std::vector<int32_t>& acc) {
  const auto channels = conv2d_requant_channels(p, a);
  const Shape4 out = conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  const auto plane = static_cast<size_t>(out.h * out.w);
  std::vector<uint8_t> bins;
  for (size_t i = 0; i < acc.size(); ++i) {
    bins.push_back(requantize(acc[i], channels[(i / plane) % static_cast<size_t>(out.c)]));
  }
  return bins;
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

TEST(Conv2d, QnnpackAlsoChecksItsPaddingChannelsOfScaleOne) {
  // Weight scale 1e30 keeps the real channel's multiplier normal, but a padding channel's
  // f(1 * x_s) * f(1 / out_s) = 1e-39 is subnormal: real qnnpack refuses to create the op
  // (PyTorch 1.13.1 QnnpackUtils.h make_zero_points_and_scales_tensor); onednn does not check.
  const std::vector<uint8_t> x{1};
  const std::vector<int8_t> w{1};
  QuantizedConv2dArgs a{.input = x, .input_shape = {1, 1, 1, 1}, .input_scale = 1e-30f,
                        .weight = w, .weight_shape = {1, 1, 1, 1}, .weight_scales = {1e30f},
                        .weight_zero_points = {0}, .output_scale = 1e9f};
  EXPECT_THROW(conv2d_quantized(profile("qnnpack", true), a), std::invalid_argument);
  EXPECT_NO_THROW(conv2d_quantized(profile("onednn", true), a));
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

TEST(BackendProfile, OnednnIsaClassFromCpuFeatures) {
  EXPECT_EQ(onednn_isa_of(cpu_of(OnednnIsa::kVnni)), OnednnIsa::kVnni);
  EXPECT_EQ(onednn_isa_of(cpu_of(OnednnIsa::kAvx512Core)), OnednnIsa::kAvx512Core);
  EXPECT_EQ(onednn_isa_of(cpu_of(OnednnIsa::kAvx2)), OnednnIsa::kAvx2);
  CpuFeatures avx_vnni = cpu_of(OnednnIsa::kAvx2);
  avx_vnni.avx_vnni = true;  // AVX-VNNI without AVX-512 multiplies exactly too
  EXPECT_EQ(onednn_isa_of(avx_vnni), OnednnIsa::kVnni);
  CpuFeatures partial = cpu_of(OnednnIsa::kAvx512Core);
  partial.avx512vl = false;  // avx512_core needs F, BW, VL and DQ
  EXPECT_EQ(onednn_isa_of(partial), OnednnIsa::kAvx2);
  EXPECT_EQ(onednn_isa_of(CpuFeatures{}), OnednnIsa::kAvx2);
  // Whatever this machine is, the detected flags are consistent with the CPUs that exist.
  const CpuFeatures here = detect_cpu_features();
  if (here.avx512_vnni) {
    EXPECT_TRUE(here.avx512f);
  }
  if (here.has_avx512_core()) {
    EXPECT_TRUE(here.avx2);
  }
  EXPECT_EQ(onednn_on(OnednnIsa::kAvx512Core).onednn_isa, OnednnIsa::kAvx512Core);
  EXPECT_FALSE(profile("qnnpack", false).onednn_isa.has_value());
}

// oneDNN 2.6.3's dispatch as ONEDNN_VERBOSE shows it: the jit kernels take every ungrouped conv,
// depthwise, and grouped convs with both per-group channel counts multiples of 4.
TEST(BackendProfile, ConvAccumulationFollowsOnednnKernelDispatch) {
  const auto vnni = onednn_on(OnednnIsa::kVnni);
  const auto avx512 = onednn_on(OnednnIsa::kAvx512Core);
  const auto avx2 = onednn_on(OnednnIsa::kAvx2);
  using M = AccumulationModel;
  // (groups, in per group, out per group)
  for (const auto& p : {avx512, avx2}) {
    EXPECT_EQ(conv_accumulation(p, 1, 3, 5), M::kInt16PairSaturation);   // ungrouped: jit
    EXPECT_EQ(conv_accumulation(p, 2, 8, 4), M::kInt16PairSaturation);   // aligned groups: jit
    EXPECT_EQ(conv_accumulation(p, 16, 1, 1), M::kExactInt32);           // depthwise widens
  }
  for (int64_t in : {1, 2, 3, 5, 6}) {
    EXPECT_EQ(conv_accumulation(avx512, 2, in, 2), M::kInt16GemmPairSaturation) << in;
    EXPECT_EQ(conv_accumulation(avx2, 2, in, 2), M::kExactInt32) << in;  // ref_int8
    EXPECT_EQ(conv_accumulation(vnni, 2, in, 2), M::kExactInt32) << in;
  }
  EXPECT_EQ(conv_accumulation(avx512, 2, 4, 3), M::kInt16GemmPairSaturation);
  EXPECT_EQ(conv_accumulation(avx512, 4, 1, 2), M::kInt16GemmPairSaturation);  // multiplier 2
  EXPECT_EQ(conv_accumulation(profile("qnnpack", false), 2, 3, 2), M::kExactInt32);
  // fbgemm's shape-free answer is its GEMM kernels' model; a conv's own is conv2d_accumulation's.
  EXPECT_EQ(conv_accumulation(profile("fbgemm", false), 2, 3, 2), M::kFbgemmInt16GemmPairs);
  EXPECT_EQ(conv_accumulation(profile("fbgemm", true), 2, 3, 2), M::kExactInt32);
}

// eq. 6.6 on a grouped conv with 3 input channels per group (odd), a 1x2 kernel and every
// product 255 * 127 = 32385: the reduction k = tap * 3 + c pairs (t0c0, t0c1), (t0c2, t1c0)
// across the two taps, and (t1c1, t1c2), each saturating to 32767.
TEST(Conv2d, GemmPairSaturationPairsAlongTheReductionAcrossTaps) {
  const std::vector<uint8_t> x(12, 255);  // 1x6x1x2
  const std::vector<int8_t> w(12, 127);   // 2x3x1x2
  QuantizedConv2dArgs a{.input = x, .input_shape = {1, 6, 1, 2}, .weight = w,
                        .weight_shape = {2, 3, 1, 2}, .weight_scales = {1.0f},
                        .weight_zero_points = {0}, .output_scale = 4096.0f,
                        .geometry = {.groups = 2}};
  EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kExactInt32),
            (std::vector<int32_t>{6 * 32385, 6 * 32385}));
  // eq. 6.5 pairs (c0, c1) at each tap, c2 alone: 2 * (32767 + 32385).
  EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kInt16PairSaturation),
            (std::vector<int32_t>{2 * (32767 + 32385), 2 * (32767 + 32385)}));
  const std::vector<int32_t> gemm{3 * 32767, 3 * 32767};
  EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kInt16GemmPairSaturation), gemm);

  // The avx512_core profile (no VNNI) runs this conv on gemm_s8u8s32: eq. 6.6 end to end.
  const auto avx512 = onednn_on(OnednnIsa::kAvx512Core);
  ASSERT_EQ(conv2d_accumulation(avx512, a), AccumulationModel::kInt16GemmPairSaturation);
  const auto out = conv2d_quantized(avx512, a);
  EXPECT_EQ(out, requantized(avx512, a, gemm));
  EXPECT_EQ(out, (std::vector<uint8_t>{24, 24}));  // RNE(98301 / 4096) = 24; exact gives 47
}

// The input zero point, padding and weight signs in eq. 6.6: with activations in [0, 127] no
// pair reaches the int16 limits, so all three models must equal the exact accumulator.
TEST(Conv2d, PairModelsEqualExactWhenNothingSaturates) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> u7(0, 127), s8(-128, 127), zp(0, 127);
  for (int trial = 0; trial < 30; ++trial) {
    const int64_t groups = 1 + trial % 3;
    const int64_t per_group = 1 + trial % 5;
    const Shape4 in{1, groups * per_group, 5, 6};
    const Shape4 wt{groups * (1 + trial % 2), per_group, 1 + trial % 3, 1 + (trial / 3) % 3};
    std::vector<uint8_t> xq(static_cast<size_t>(in.numel()));
    std::vector<int8_t> wq(static_cast<size_t>(wt.numel()));
    for (auto& e : xq) e = static_cast<uint8_t>(u7(rng));
    for (auto& e : wq) e = static_cast<int8_t>(s8(rng));
    const QuantizedConv2dArgs a{
        .input = xq, .input_shape = in, .input_zero_point = zp(rng), .weight = wq,
        .weight_shape = wt, .weight_scales = {1.0f}, .weight_zero_points = {0},
        .geometry = {.stride_w = 1 + trial % 2, .pad_h = trial % 2, .pad_w = 1,
                     .dilation_h = 1 + trial % 2, .groups = groups}};
    const auto exact = conv2d_accumulators(a, AccumulationModel::kExactInt32);
    EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kInt16PairSaturation), exact) << trial;
    EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kInt16GemmPairSaturation), exact) << trial;
  }
}

// The same grouped conv on AVX2 without VNNI runs on ref_int8: exact, no saturation at all.
TEST(Conv2d, Avx2GroupedConvTheJitRefusesStaysExact) {
  const std::vector<uint8_t> x(12, 255);
  const std::vector<int8_t> w(12, 127);
  QuantizedConv2dArgs a{.input = x, .input_shape = {1, 6, 1, 2}, .weight = w,
                        .weight_shape = {2, 3, 1, 2}, .weight_scales = {1.0f},
                        .weight_zero_points = {0}, .output_scale = 4096.0f,
                        .geometry = {.groups = 2}};
  const auto avx2 = onednn_on(OnednnIsa::kAvx2);
  ASSERT_EQ(conv2d_accumulation(avx2, a), AccumulationModel::kExactInt32);
  const auto exact = conv2d_accumulators(a, AccumulationModel::kExactInt32);
  EXPECT_EQ(conv2d_quantized(avx2, a), requantized(avx2, a, exact));
  EXPECT_EQ(conv2d_quantized(avx2, a), (std::vector<uint8_t>{47, 47}));
  // With 4 channels per group in and out the jit kernel takes it, and saturates (eq. 6.5).
  const std::vector<uint8_t> x4(16, 255);
  const std::vector<int8_t> w4(64, 127);
  a.input = x4;
  a.input_shape = {1, 8, 1, 2};
  a.weight = w4;
  a.weight_shape = {8, 4, 1, 2};
  ASSERT_EQ(conv2d_accumulation(avx2, a), AccumulationModel::kInt16PairSaturation);
  EXPECT_EQ(conv2d_accumulators(a, conv2d_accumulation(avx2, a))[0], 4 * 32767);
}

// Depthwise kernels widen u8*s8 to 16 bits: no saturation on any CPU, even at the extremes.
// A depthwise-like conv with 2 outputs per channel is not depthwise to oneDNN: on avx512_core
// its gemm pairs consecutive taps of the one channel (eq. 6.6).
TEST(Conv2d, DepthwiseNeverSaturates) {
  const std::vector<uint8_t> x(4 * 9, 255);  // 1x4x3x3
  const std::vector<int8_t> w(4 * 9, -128);  // 4x1x3x3
  QuantizedConv2dArgs a{.input = x, .input_shape = {1, 4, 3, 3}, .weight = w,
                        .weight_shape = {4, 1, 3, 3}, .weight_scales = {1.0f},
                        .weight_zero_points = {0}, .output_scale = 4096.0f,
                        .geometry = {.groups = 4}};
  const auto exact = conv2d_accumulators(a, AccumulationModel::kExactInt32);
  EXPECT_EQ(exact[0], 9 * 255 * -128);
  for (auto isa : {OnednnIsa::kVnni, OnednnIsa::kAvx512Core, OnednnIsa::kAvx2}) {
    const auto p = onednn_on(isa);
    ASSERT_EQ(conv2d_accumulation(p, a), AccumulationModel::kExactInt32) << to_string(isa);
    EXPECT_EQ(conv2d_quantized(p, a), requantized(p, a, exact)) << to_string(isa);
  }
  const std::vector<int8_t> w2(8 * 9, -128);  // 8x1x3x3: two outputs per channel
  a.weight = w2;
  a.weight_shape = {8, 1, 3, 3};
  const auto avx512 = onednn_on(OnednnIsa::kAvx512Core);
  ASSERT_EQ(conv2d_accumulation(avx512, a), AccumulationModel::kInt16GemmPairSaturation);
  // 9 taps: 4 pairs saturating at -32768, the last tap alone.
  EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kInt16GemmPairSaturation)[0],
            4 * -32768 + 255 * -128);
  EXPECT_EQ(conv2d_accumulation(onednn_on(OnednnIsa::kAvx2), a), AccumulationModel::kExactInt32);
}

// The pointwise fast kernels must equal the reference bit for bit on random data, with groups,
// biases, ReLU, zero points anywhere and values that make float sums round.
TEST(Conv2d, PointwiseFastKernelsEqualTheReference) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> real(-3.0f, 3.0f);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t groups = 1 + trial % 3;
    // 1 to 5 input channels per group: the unrolled kernels (1-4) and the general loop.
    const Shape4 in{1 + trial % 2, groups * (1 + trial % 5), 3 + trial % 4, 5 + trial % 3};
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

TEST(Conv2d, FloatTraceIsTheKernelsElementTapByTap) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> real(-3.0f, 3.0f);
  for (int trial = 0; trial < 30; ++trial) {
    const int64_t groups = 1 + trial % 2;
    const Shape4 in{1, groups * (1 + trial % 4), 4 + trial % 3, 5};
    const Shape4 wt{groups * 2, in.c / groups, 1 + trial % 3, 1 + (trial / 3) % 3};
    std::vector<float> xf(static_cast<size_t>(in.numel())), wf(static_cast<size_t>(wt.numel()));
    std::vector<float> bias(static_cast<size_t>(wt.n));
    for (auto* v : {&xf, &wf, &bias}) for (float& e : *v) e = real(rng);
    const FloatConv2dArgs fa{.input = xf, .input_shape = in, .weight = wf, .weight_shape = wt,
                             .bias = trial % 2 ? std::span<const float>(bias) : std::span<const float>(),
                             .geometry = {.pad_h = trial % 2, .pad_w = 1, .groups = groups},
                             .relu = trial % 3 == 0};
    const auto y = conv2d_float(fa);
    const Shape4 out = conv2d_output_shape(in, wt, fa.geometry);
    for (int64_t i = 0; i < out.numel(); i += 3) {
      const int64_t ow = i % out.w, oh = i / out.w % out.h, m = i / (out.w * out.h) % out.c;
      const FloatConv2dTrace t = conv2d_float_trace(fa, 0, m, oh, ow);
      ASSERT_EQ(std::bit_cast<uint32_t>(t.output), std::bit_cast<uint32_t>(y[static_cast<size_t>(i)])) << i;
      // The taps are the products the kernel summed, in its order.
      float sum = 0.0f;
      for (const FloatConvTap& tap : t.taps) {
        ASSERT_EQ(tap.input, xf[static_cast<size_t>(tap.input_index)]);
        ASSERT_EQ(tap.weight, wf[static_cast<size_t>(tap.weight_index)]);
        sum += tap.input * tap.weight;
      }
      ASSERT_EQ(std::bit_cast<uint32_t>(sum), std::bit_cast<uint32_t>(t.sum));
      ASSERT_LE(t.taps.size(), static_cast<size_t>(wt.c * wt.h * wt.w));
    }
  }
  const std::vector<float> unit{1.0f};
  const FloatConv2dArgs one{.input = unit, .input_shape = {1, 1, 1, 1}, .weight = unit, .weight_shape = {1, 1, 1, 1}};
  EXPECT_THROW(conv2d_float_trace(one, 0, 1, 0, 0), std::invalid_argument);
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

// Issue 9 item 10: every pair-saturating model applies the weight zero point. One input, one
// weight: x = 10, w = 5, w_zp = 3, x_zp = 0 gives (10 - 0)(5 - 3) = 20, nothing near int16.
TEST(Conv2d, PairModelsSubtractTheWeightZeroPoint) {
  const std::vector<uint8_t> x{10};
  const std::vector<int8_t> w{5};
  const QuantizedConv2dArgs a{.input = x,
                              .input_shape = {1, 1, 1, 1},
                              .weight = w,
                              .weight_shape = {1, 1, 1, 1},
                              .weight_scales = {1.0f},
                              .weight_zero_points = {3}};
  using M = AccumulationModel;
  for (M m : {M::kExactInt32, M::kInt16PairSaturation, M::kInt16GemmPairSaturation,
              M::kFbgemmInt16GemmPairs, M::kFbgemmInt16ChannelPairs, M::kFbgemmInt16TapPairs}) {
    EXPECT_EQ(conv2d_accumulators(a, m)[0], 20) << to_string(m);
  }
}

// Random data with both zero points and padding, activations in [0, 127] so that no pair can
// saturate: every model must give Σ (x - x_zp)(w - w_zp), per tensor and per channel.
TEST(Conv2d, PairModelsWithWeightZeroPointsEqualExactWhenNothingSaturates) {
  std::mt19937 rng(23);
  std::uniform_int_distribution<int> u7(0, 127), s8(-128, 127), zp(0, 255);
  using M = AccumulationModel;
  for (int trial = 0; trial < 30; ++trial) {
    const int64_t groups = 1 + trial % 3;
    const int64_t per_group = 1 + trial % 4;
    const Shape4 in{1, groups * per_group, 4, 5};
    const Shape4 wt{groups * (1 + trial % 2), per_group, 1 + trial % 3, 3};
    std::vector<uint8_t> xq(static_cast<size_t>(in.numel()));
    std::vector<int8_t> wq(static_cast<size_t>(wt.numel()));
    for (auto& e : xq) e = static_cast<uint8_t>(u7(rng));
    for (auto& e : wq) e = static_cast<int8_t>(s8(rng) / 2);
    std::vector<int64_t> zps{s8(rng) / 2};
    if (trial % 2 == 1) {
      zps.clear();
      for (int64_t m = 0; m < wt.n; ++m) zps.push_back(s8(rng) / 2);
    }
    const QuantizedConv2dArgs a{.input = xq,
                                .input_shape = in,
                                .input_zero_point = zp(rng) / 2,
                                .weight = wq,
                                .weight_shape = wt,
                                .weight_scales = std::vector<float>(zps.size(), 1.0f),
                                .weight_zero_points = zps,
                                .weight_per_channel = zps.size() > 1,
                                .geometry = {.pad_h = trial % 2, .pad_w = 1, .groups = groups}};
    const auto exact = conv2d_accumulators(a, M::kExactInt32);
    for (M m : {M::kInt16PairSaturation, M::kInt16GemmPairSaturation, M::kFbgemmInt16GemmPairs,
                M::kFbgemmInt16ChannelPairs, M::kFbgemmInt16TapPairs}) {
      EXPECT_EQ(conv2d_accumulators(a, m), exact) << to_string(m) << " trial " << trial;
    }
  }
}

CpuFeatures cpu_of(FbgemmIsa isa) {
  CpuFeatures cpu;
  cpu.avx2 = true;
  if (isa != FbgemmIsa::kAvx2) cpu.avx512f = cpu.avx512bw = cpu.avx512vl = cpu.avx512dq = true;
  cpu.avx512_vnni = isa == FbgemmIsa::kAvx512Vnni;
  return cpu;
}

BackendProfile fbgemm_on(FbgemmIsa isa) { return *make_backend_profile("fbgemm", cpu_of(isa)); }

TEST(BackendProfile, FbgemmIsaClassFromCpuFeatures) {
  for (auto isa : {FbgemmIsa::kAvx512Vnni, FbgemmIsa::kAvx512, FbgemmIsa::kAvx2}) {
    EXPECT_EQ(fbgemm_isa_of(cpu_of(isa)), isa) << to_string(isa);
    EXPECT_EQ(fbgemm_on(isa).fbgemm_isa, isa) << to_string(isa);
    EXPECT_EQ(fbgemm_on(isa).per_tensor_bias_add, BiasAddRounding::kFusedMultiplyAdd);
  }
  // FBGEMM 0d98c26 knows AVX512-VNNI only: an AVX-VNNI CPU without AVX-512 is an AVX2 one.
  CpuFeatures avx_vnni = cpu_of(FbgemmIsa::kAvx2);
  avx_vnni.avx_vnni = true;
  EXPECT_EQ(fbgemm_isa_of(avx_vnni), FbgemmIsa::kAvx2);
  EXPECT_EQ(fbgemm_isa_of(CpuFeatures{}), FbgemmIsa::kAvx2);
  EXPECT_FALSE(make_backend_profile("onednn", cpu_of(FbgemmIsa::kAvx2))->fbgemm_isa.has_value());
  // Named classes: each engine's own names give that engine's class back.
  for (auto isa : {FbgemmIsa::kAvx512Vnni, FbgemmIsa::kAvx512, FbgemmIsa::kAvx2}) {
    EXPECT_EQ(fbgemm_isa_of(*cpu_features_of_class(to_string(isa))), isa) << to_string(isa);
  }
  for (auto isa : {OnednnIsa::kVnni, OnednnIsa::kAvx512Core, OnednnIsa::kAvx2}) {
    EXPECT_EQ(onednn_isa_of(*cpu_features_of_class(to_string(isa))), isa) << to_string(isa);
  }
  EXPECT_FALSE(cpu_features_of_class("sse4").has_value());
}

// fbgemmConv's path choice (ConvFastPath), including the groupwise path's register-width rule:
// 4 channels per group need 2 groups on AVX2 but 4 on AVX-512.
TEST(Conv2d, FbgemmConvPathFollowsConvFastPath) {
  using P = FbgemmConvPath;
  const auto path = [](FbgemmIsa isa, Shape4 in, Shape4 wt, Conv2dGeometry g) {
    return fbgemm_conv_path(isa, in, wt, g);
  };
  const auto avx2 = FbgemmIsa::kAvx2, avx512 = FbgemmIsa::kAvx512;
  const Conv2dGeometry same3{.pad_h = 1, .pad_w = 1};
  Conv2dGeometry dw = same3;
  dw.groups = 16;
  EXPECT_EQ(path(avx2, {1, 16, 8, 8}, {16, 1, 3, 3}, dw), P::kDepthwise);
  EXPECT_EQ(path(avx2, {1, 16, 8, 8}, {32, 1, 3, 3}, dw), P::kDepthwise);  // multiplier 2
  dw.groups = 12;                                                          // not a multiple of 8
  EXPECT_EQ(path(avx2, {1, 12, 8, 8}, {12, 1, 3, 3}, dw), P::kIm2col);
  Conv2dGeometry dw5{.stride_h = 2, .stride_w = 1, .pad_h = 2, .pad_w = 2, .groups = 8};
  EXPECT_EQ(path(avx2, {1, 8, 9, 9}, {8, 1, 5, 5}, dw5), P::kDepthwise);
  dw5.pad_w = 1;
  EXPECT_EQ(path(avx2, {1, 8, 9, 9}, {8, 1, 5, 5}, dw5), P::kIm2col);
  Conv2dGeometry gw = same3;
  gw.groups = 2;
  EXPECT_EQ(path(avx2, {1, 8, 6, 6}, {8, 4, 3, 3}, gw), P::kGroupwise);
  EXPECT_EQ(path(avx512, {1, 8, 6, 6}, {8, 4, 3, 3}, gw), P::kIm2col);
  EXPECT_EQ(path(avx2, {1, 8, 6, 6}, {8, 8, 3, 3}, same3), P::kGroupwise);  // plain 8-channel conv
  EXPECT_EQ(path(avx2, {1, 6, 6, 6}, {6, 6, 3, 3}, same3), P::kIm2col);
  EXPECT_EQ(path(avx2, {1, 6, 6, 6}, {4, 6, 1, 1}, {}), P::kPointwise);
  EXPECT_EQ(path(avx2, {1, 6, 6, 6}, {4, 6, 1, 1}, {.stride_h = 2}), P::kIm2col);
}

// Depthwise pairs taps (2p, 2p+1) in (kh, kw) order on every CPU; a padded tap reads x_zp.
TEST(Conv2d, FbgemmDepthwiseSaturatesTapPairsOnEveryCpu) {
  const std::vector<uint8_t> x(8 * 9, 255);  // 1x8x3x3
  const std::vector<int8_t> w(8 * 9, 127);   // 8x1x3x3
  QuantizedConv2dArgs a{.input = x,
                        .input_shape = {1, 8, 3, 3},
                        .weight = w,
                        .weight_shape = {8, 1, 3, 3},
                        .weight_scales = {1.0f},
                        .weight_zero_points = {0},
                        .output_scale = 4096.0f,
                        .geometry = {.pad_h = 1, .pad_w = 1, .groups = 8}};
  for (auto isa : {FbgemmIsa::kAvx512Vnni, FbgemmIsa::kAvx512, FbgemmIsa::kAvx2}) {
    EXPECT_EQ(conv2d_accumulation(fbgemm_on(isa), a), AccumulationModel::kFbgemmInt16TapPairs);
  }
  const auto acc = conv2d_accumulators(a, AccumulationModel::kFbgemmInt16TapPairs);
  // Centre output: 9 taps inside, 4 saturating pairs and one tap alone.
  EXPECT_EQ(acc[4], 4 * 32767 + 255 * 127);
  EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kExactInt32)[4], 9 * 255 * 127);
  // Corner output (0, 0): taps 0, 1, 2, 3 and 6 are padding and read x_zp = 0, so the pairs
  // are (0, 0), (0, 0), (x·w, x·w), (0, x·w), (x·w): one saturated pair, two products alone.
  EXPECT_EQ(acc[0], 32767 + 2 * 255 * 127);
}

// FBGEMM's im2col fills padded taps with x_zp, which then takes part in a pair: with
// x_zp = 255 and weights 127 the pair (padding, x) saturates although the exact sum is 0.
TEST(Conv2d, FbgemmGemmPairsMultiplyPaddingAsTheZeroPoint) {
  const std::vector<uint8_t> x{255};
  const std::vector<int8_t> w{127, 127};  // 1x1x1x2 kernel, pad_w 1: taps (padding, x)
  const QuantizedConv2dArgs a{.input = x,
                              .input_shape = {1, 1, 1, 1},
                              .input_zero_point = 255,
                              .weight = w,
                              .weight_shape = {1, 1, 1, 2},
                              .weight_scales = {1.0f},
                              .weight_zero_points = {0},
                              .geometry = {.pad_w = 1}};
  EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kExactInt32)[0], 0);
  // 32767 - x_zp·Σw = 32767 - 255·254; oneDNN's gemm model leaves the padded tap out: 0.
  EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kFbgemmInt16GemmPairs)[0], 32767 - 255 * 254);
  EXPECT_EQ(conv2d_accumulators(a, AccumulationModel::kInt16GemmPairSaturation)[0], 0);
  EXPECT_EQ(conv2d_accumulation(fbgemm_on(FbgemmIsa::kAvx2), a),
            AccumulationModel::kFbgemmInt16GemmPairs);
  EXPECT_EQ(conv2d_accumulation(fbgemm_on(FbgemmIsa::kAvx512Vnni), a),
            AccumulationModel::kExactInt32);
}

// eq. 6.4a': the per-tensor bias is added in one rounding, fma(b, f(1/atws), f(acc)). Found by
// search: acc = -12 and b·rcp just above 9.5 make f(acc) + f(b·rcp) exactly -2.5 (RNE -> -2),
// while the fused sum is just below -2.5 (-> -3). With out_zp 10: 8 with two roundings, 7 fused.
TEST(Requantize, FbgemmPerTensorBiasIsOneFusedMultiplyAdd) {
  const float x_s = 0x1.84ddbcp-1f;
  const float b = 0x1.cdc75p+2f;
  RequantInputs in{.input_scale = x_s,
                   .weight_scale = 1.0f,
                   .output_scale = x_s,
                   .output_zero_point = 10,
                   .bias = b,
                   .has_bias = true};
  EXPECT_EQ(requantize(-12, prepare_requant(RequantScheme::kFbgemmFp32, in)), 8);
  in.per_tensor_bias_add = BiasAddRounding::kFusedMultiplyAdd;
  EXPECT_EQ(requantize(-12, prepare_requant(RequantScheme::kFbgemmFp32, in)), 7);
  // Per channel the bias is divided first, which no FMA absorbs: two roundings, as before.
  in.weight_per_channel = true;
  EXPECT_FALSE(prepare_requant(RequantScheme::kFbgemmFp32, in).fused_bias);
  // The profile carries the rule into conv2d_quantized.
  const std::vector<uint8_t> x{0};
  const std::vector<int8_t> w{1};
  const std::vector<float> bias{b};
  const QuantizedConv2dArgs a{.input = x,
                              .input_shape = {1, 1, 1, 1},
                              .input_scale = x_s,
                              .input_zero_point = 12,
                              .weight = w,
                              .weight_shape = {1, 1, 1, 1},
                              .weight_scales = {1.0f},
                              .weight_zero_points = {0},
                              .bias = bias,
                              .output_scale = x_s,
                              .output_zero_point = 10};
  EXPECT_EQ(conv2d_quantized(fbgemm_on(FbgemmIsa::kAvx2), a), (std::vector<uint8_t>{7}));
}

// The fast pointwise kernel of the channel-pairing models must equal the reference bit for bit,
// saturating or not: extreme and random bins, odd and even channel counts, groups, both zero
// points per tensor and per channel.
TEST(Conv2d, PointwisePairKernelEqualsTheReference) {
  std::mt19937 rng(31);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127), pick(0, 3);
  using M = AccumulationModel;
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t groups = 1 + trial % 3;
    const Shape4 in{1 + trial % 2, groups * (1 + trial % 7), 2 + trial % 3, 3};
    const Shape4 wt{groups * (1 + trial % 4), in.c / groups, 1, 1};
    std::vector<uint8_t> xq(static_cast<size_t>(in.numel()));
    std::vector<int8_t> wq(static_cast<size_t>(wt.numel()));
    for (auto& e : xq) e = static_cast<uint8_t>(pick(rng) == 0 ? u8(rng) : 255);
    for (auto& e : wq) e = static_cast<int8_t>(pick(rng) == 0 ? s8(rng) : (trial % 2 ? 127 : -128));
    std::vector<int64_t> zps{trial % 3 == 0 ? 0 : s8(rng)};
    if (trial % 2 == 1) zps.assign(static_cast<size_t>(wt.n), s8(rng));
    QuantizedConv2dArgs a{.input = xq,
                          .input_shape = in,
                          .input_zero_point = u8(rng),
                          .weight = wq,
                          .weight_shape = wt,
                          .weight_scales = std::vector<float>(zps.size(), 1.0f),
                          .weight_zero_points = zps,
                          .weight_per_channel = zps.size() > 1,
                          .geometry = {.groups = groups}};
    for (M m : {M::kInt16PairSaturation, M::kInt16GemmPairSaturation, M::kFbgemmInt16GemmPairs,
                M::kFbgemmInt16ChannelPairs}) {
      const auto fast = conv2d_accumulators(a, m);
      a.force_reference = true;
      EXPECT_EQ(fast, conv2d_accumulators(a, m)) << to_string(m) << " trial " << trial;
      a.force_reference = false;
    }
  }
}

}  // namespace
}  // namespace qparity
