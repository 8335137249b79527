// Microbenchmark of the conv kernels on layers of ResNet-18 and MobileNetV2 (224x224 input):
// int8 accumulation (reference and fast, every ISA path, per accumulation model) and the float
// conv of the QAT path's order check (reference and fast). The counter MACs/s is the number of
// multiply-accumulates of the layer (output elements x C_g x taps) per second, to compare with
// the machine's peak (bench/README.md).
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "qparity/ops/conv2d.h"
#include "qparity/ops/conv2d_fast.h"

namespace {

using qparity::AccumulationModel;
using qparity::Conv2dGeometry;
using qparity::KernelIsa;
using qparity::Shape4;

struct Layer {
  const char* name;
  Shape4 input, weight;
  Conv2dGeometry geometry;
};

const Layer kLayers[] = {
    {"resnet18.conv1 7x7/2 3->64", {1, 3, 224, 224}, {64, 3, 7, 7}, {.stride_h = 2, .stride_w = 2, .pad_h = 3, .pad_w = 3}},
    {"resnet18.layer1 3x3 64->64 56x56", {1, 64, 56, 56}, {64, 64, 3, 3}, {.pad_h = 1, .pad_w = 1}},
    {"resnet18.layer4 3x3 512->512 7x7", {1, 512, 7, 7}, {512, 512, 3, 3}, {.pad_h = 1, .pad_w = 1}},
    {"mobilenet_v2 1x1 96->24 56x56", {1, 96, 56, 56}, {24, 96, 1, 1}, {}},
    {"seed 1x1 3->3 16x256", {1, 3, 16, 256}, {3, 3, 1, 1}, {}},
    {"mobilenet_v2 1x1 16->8 56x56", {1, 16, 56, 56}, {8, 16, 1, 1}, {}},
    {"mobilenet_v2 dw 3x3 144 56x56", {1, 144, 56, 56}, {144, 1, 3, 3}, {.pad_h = 1, .pad_w = 1, .groups = 144}},
};

int64_t macs(const Layer& l) {
  const Shape4 out = qparity::conv2d_output_shape(l.input, l.weight, l.geometry);
  return out.numel() * l.weight.c * l.weight.h * l.weight.w;
}

// Deterministic bins and weights (sin, as qparity --input-shape), not all zero.
struct QuantizedData {
  std::vector<uint8_t> input;
  std::vector<int8_t> weight;
  explicit QuantizedData(const Layer& l)
      : input(static_cast<size_t>(l.input.numel())), weight(static_cast<size_t>(l.weight.numel())) {
    for (size_t i = 0; i < input.size(); ++i) {
      input[i] = static_cast<uint8_t>(128 + 127 * std::sin(0.37 * static_cast<double>(i)));
    }
    for (size_t i = 0; i < weight.size(); ++i) {
      weight[i] = static_cast<int8_t>(127 * std::sin(0.11 * static_cast<double>(i)));
    }
  }
};

// mode: 0 reference, 1 fast portable, 2 fast AVX2.
void int8_conv(benchmark::State& state, const Layer& l, AccumulationModel model, int mode) {
  const QuantizedData d(l);
  const qparity::QuantizedConv2dArgs a{.input = d.input, .input_shape = l.input, .input_zero_point = 3,
                                       .weight = d.weight, .weight_shape = l.weight,
                                       .weight_scales = {1.0f}, .weight_zero_points = {0},
                                       .geometry = l.geometry, .force_reference = mode == 0};
  std::vector<int32_t> acc;
  for (auto _ : state) {
    if (mode == 0) {
      qparity::conv2d_accumulators(a, model, acc);
    } else {
      qparity::conv2d_accumulators_fast(a, model, mode == 1 ? KernelIsa::kPortable : KernelIsa::kAvx2, acc);
    }
    benchmark::DoNotOptimize(acc.data());
  }
  state.counters["MACs/s"] = benchmark::Counter(static_cast<double>(macs(l)), benchmark::Counter::kIsIterationInvariantRate);
}

void float_conv(benchmark::State& state, const Layer& l, bool reference) {
  std::vector<float> x(static_cast<size_t>(l.input.numel())), w(static_cast<size_t>(l.weight.numel()));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(std::sin(0.11 * static_cast<double>(i)));
  const qparity::FloatConv2dArgs a{.input = x, .input_shape = l.input, .weight = w, .weight_shape = l.weight,
                                   .geometry = l.geometry, .force_reference = reference};
  std::vector<float> y;
  for (auto _ : state) {
    qparity::conv2d_float(a, y);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["MACs/s"] = benchmark::Counter(static_cast<double>(macs(l)), benchmark::Counter::kIsIterationInvariantRate);
}

const int kRegistered = [] {
  const bool avx2 = qparity::detect_cpu_features().avx2;
  for (const Layer& l : kLayers) {
    for (const auto model : {AccumulationModel::kExactInt32, AccumulationModel::kInt16PairSaturation}) {
      const std::string prefix = std::string("int8/") + l.name + "/" + std::string(qparity::to_string(model));
      benchmark::RegisterBenchmark((prefix + "/reference").c_str(), int8_conv, l, model, 0)->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark((prefix + "/portable").c_str(), int8_conv, l, model, 1)->Unit(benchmark::kMillisecond);
      if (avx2) benchmark::RegisterBenchmark((prefix + "/avx2").c_str(), int8_conv, l, model, 2)->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark((std::string("float/") + l.name + "/reference").c_str(), float_conv, l, true)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("float/") + l.name + "/fast").c_str(), float_conv, l, false)->Unit(benchmark::kMillisecond);
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
