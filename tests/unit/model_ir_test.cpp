// The model IR's structural helpers: ATen's elementwise loop split, layer-name adoption between
// the two paths, the scalar ops' output grids, and eager convert() on a hand-built QAT graph.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "qparity/diff/layer_compare.h"
#include "qparity/model/convert.h"
#include "qparity/model/graph.h"
#include "qparity/ops/aten_loop.h"
#include "qparity/ops/quantized_mul.h"
#include "qparity/profile/backend_profile.h"
#include "qparity/run/executor.h"

namespace qparity {
namespace {

struct Range {
  int64_t begin, end;
  bool vectorized;
  bool operator==(const Range&) const = default;
};

std::vector<Range> split(int64_t n, AtenLoop loop) {
  std::vector<Range> out;
  for_each_aten_range(n, loop, [&](int64_t b, int64_t e, bool v) { out.push_back({b, e, v}); });
  return out;
}

TEST(AtenLoop, OneThreadBlocksThenTail) {
  EXPECT_EQ(split(130, {64, 1}), (std::vector<Range>{{0, 128, true}, {128, 130, false}}));
  EXPECT_EQ(split(63, {64, 1}), (std::vector<Range>{{0, 63, false}}));
  EXPECT_EQ(split(128, {64, 1}), (std::vector<Range>{{0, 128, true}}));
}

TEST(AtenLoop, ThreadChunksHaveTheirOwnTails) {
  // 70000 elements on 2 threads: two chunks of 35000, each 34944 vectorized + 56 scalar.
  EXPECT_EQ(split(70000, {64, 2}), (std::vector<Range>{{0, 34944, true}, {34944, 35000, false},
                                                       {35000, 69944, true}, {69944, 70000, false}}));
  // Below the grain size a second thread changes nothing.
  EXPECT_EQ(split(32767, {64, 2}), split(32767, {64, 1}));
}

TEST(QuantizedScalarOps, AddScalarMovesTheZeroPointOrWidensTheScale) {
  const std::vector<uint8_t> q{0, 10, 128, 255};
  std::vector<uint8_t> out(q.size());
  // c / s = 3.2 -> c_q = 3: zero point 100 -> 97, bins unchanged.
  ScalarOpGrid g = quantized_add_scalar(q, 0.5, 100, 1.6, false, out);
  EXPECT_EQ(g.scale, 0.5);
  EXPECT_EQ(g.zero_point, 97);
  EXPECT_EQ(out, q);
  // c_q = 20 > zp 10: the grid widens to (255 + 10) / 255 * s, zero point 0; bins requantized.
  g = quantized_add_scalar(q, 0.5, 10, 10.0, false, out);
  EXPECT_EQ(g.zero_point, 0);
  EXPECT_DOUBLE_EQ(g.scale, (255.0 + 10.0) / 255.0 * 0.5);
  EXPECT_EQ(out[1], 19);  // (10 - 10 + 20) * 0.5 / g.scale = 19.245... -> 19
}

TEST(QuantizedScalarOps, MulScalarByNegativeMirrorsBins) {
  const std::vector<uint8_t> q{0, 10, 255};
  std::vector<uint8_t> out(q.size());
  const ScalarOpGrid g = quantized_mul_scalar(q, 0.25, 30, -2.0, false, out);
  EXPECT_EQ(out, (std::vector<uint8_t>{255, 245, 0}));
  EXPECT_EQ(g.scale, 0.5);
  EXPECT_EQ(g.zero_point, 225);
}

model::Node node(std::string layer, model::OpKind op, std::vector<model::ValueId> inputs, model::ValueId output,
                 model::OpParams params = {}) {
  model::Node n;
  n.layer = std::move(layer);
  n.op = op;
  n.inputs = std::move(inputs);
  n.output = output;
  n.params = std::move(params);
  return n;
}

TEST(AdoptLayerNames, UnobservedFunctionalTakesTheInt8Name) {
  // QAT: conv -> add (named "add" after the calling scope) -> mul (named "mul").
  model::Graph qat;
  for (int i = 0; i < 4; ++i) qat.add_value({1, 2, 2, 2}, model::ValueType::kFloat);
  qat.nodes = {node("conv", model::OpKind::kConv2d, {0}, 1), node("add", model::OpKind::kAdd, {1}, 2),
               node("mul", model::OpKind::kMul, {2}, 3)};
  model::Graph int8;
  for (int i = 0; i < 4; ++i) int8.add_value({1, 2, 2, 2}, model::ValueType::kQUInt8);
  int8.nodes = {node("conv", model::OpKind::kQConv2d, {0}, 1), node("add_scalar", model::OpKind::kQAddScalar, {1}, 2),
                node("mul_scalar", model::OpKind::kQMulScalar, {2}, 3)};
  model::adopt_layer_names(int8, qat);
  EXPECT_EQ(qat.nodes[1].layer, "add_scalar");
  EXPECT_EQ(qat.nodes[2].layer, "mul_scalar");
}

TEST(AdoptLayerNames, LeavesNamedLayersAndMismatchedOpsAlone) {
  model::Graph qat;
  for (int i = 0; i < 3; ++i) qat.add_value({1, 2}, model::ValueType::kFloat);
  qat.nodes = {node("fc", model::OpKind::kLinear, {0}, 1), node("relu", model::OpKind::kRelu, {1}, 2)};
  model::Graph int8;
  for (int i = 0; i < 3; ++i) int8.add_value({1, 2}, model::ValueType::kQUInt8);
  int8.nodes = {node("fc", model::OpKind::kQLinear, {0}, 1), node("scaled", model::OpKind::kQMulScalar, {1}, 2)};
  model::adopt_layer_names(int8, qat);
  EXPECT_EQ(qat.nodes[1].layer, "relu");  // a relu is not a mul: no adoption
}

// A hand-built QAT graph: QuantStub fake-quant -> Linear (weight fake-quant) -> output fake-quant.
model::Graph tiny_qat(bool weight_observer_on, float weight_min = -0.25f, float weight_max = 1.0f) {
  model::Graph g;
  g.input = g.add_value({1, 2}, model::ValueType::kFloat);
  const auto fq_in = g.add_value({1, 2}, model::ValueType::kFloat);
  model::ConstantTensor w{{2, 2}, {0.5f, -0.25f, 1.0f, 0.125f}};
  const auto w_id = g.add_constant(w);
  const auto w_fq = g.add_value({2, 2}, model::ValueType::kFloat);
  const auto lin = g.add_value({1, 2}, model::ValueType::kFloat);
  const auto out = g.add_value({1, 2}, model::ValueType::kFloat);
  auto act = [](std::string name, float lo, float hi) {
    model::FakeQuantPoint p;
    p.module = std::move(name);
    p.min_val = {lo};
    p.max_val = {hi};
    p.scale = {1.0f};
    p.zero_point = {0};
    return p;
  };
  g.fake_quants.push_back(act("quant.activation_post_process", -1.0f, 1.0f));
  model::FakeQuantPoint wp = act("fc.weight_fake_quant", weight_min, weight_max);
  wp.spec = {QDType::kQInt8, QScheme::kPerTensorSymmetric, -128, 127};
  wp.observer_enabled = weight_observer_on;
  g.fake_quants.push_back(wp);
  g.fake_quants.push_back(act("fc.activation_post_process", 0.0f, 2.0f));
  g.nodes = {node("quant", model::OpKind::kFakeQuant, {g.input}, fq_in, model::FakeQuantParams{0}),
             node("fc", model::OpKind::kFakeQuant, {w_id}, w_fq, model::FakeQuantParams{1}),
             node("fc", model::OpKind::kLinear, {fq_in, w_fq}, lin),
             node("fc", model::OpKind::kFakeQuant, {lin}, out, model::FakeQuantParams{2})};
  g.output = out;
  g.convert_sources.push_back({"fc", "Linear", true, false, w, std::nullopt, std::nullopt});
  g.dequant_stubs = {"dequant"};
  return g;
}

TEST(ConvertEager, QuantizesWeightsWithThePythonObserverRule) {
  const BackendProfile profile = *make_backend_profile("qnnpack", {});
  const model::Graph int8 = model::convert_eager(tiny_qat(false), profile);
  ASSERT_EQ(int8.nodes.size(), 3u);
  EXPECT_EQ(int8.nodes[0].op, model::OpKind::kQuantize);
  EXPECT_EQ(int8.nodes[1].op, model::OpKind::kQLinear);
  EXPECT_EQ(int8.nodes[2].op, model::OpKind::kDequantize);
  EXPECT_EQ(int8.nodes[2].layer, "dequant");
  const auto& p = std::get<model::QConvParams>(int8.nodes[1].params);
  // Symmetric qint8: s = max(0.25, 1.0) / 127.5; w / s = {63.75, -31.875, 127.5, 15.9375}.
  EXPECT_FLOAT_EQ(static_cast<float>(p.weight.scales[0]), 1.0f / 127.5f);
  EXPECT_EQ(p.weight.data, (std::vector<int8_t>{64, -32, 127, 16}));
  EXPECT_EQ(p.output.zero_point, 0);
}

TEST(ConvertEager, AnEnabledWeightObserverMovesBeforeQuantizing) {
  const BackendProfile profile = *make_backend_profile("qnnpack", {});
  // Running range (-0.5, 2.0); the weight's own is (-0.25, 1.0). With the observer on, convert's
  // extra weight fake-quant call moves max 1% toward 1.0: 1.99, so s = 1.99 / 127.5.
  const auto off = std::get<model::QConvParams>(model::convert_eager(tiny_qat(false, -0.5f, 2.0f), profile).nodes[1].params);
  const auto on = std::get<model::QConvParams>(model::convert_eager(tiny_qat(true, -0.5f, 2.0f), profile).nodes[1].params);
  EXPECT_FLOAT_EQ(static_cast<float>(off.weight.scales[0]), 2.0f / 127.5f);
  EXPECT_FLOAT_EQ(static_cast<float>(on.weight.scales[0]), (2.0f + 0.01f * (1.0f - 2.0f)) / 127.5f);
  EXPECT_NE(off.weight.scales, on.weight.scales);
}

TEST(ConvertEager, RefusesALayerItCannotConvert) {
  model::Graph g = tiny_qat(false);
  g.convert_sources.clear();  // the linear's module state is unknown
  const BackendProfile profile = *make_backend_profile("qnnpack", {});
  EXPECT_THROW(model::convert_eager(g, profile), std::invalid_argument);
}

// Float kernels that compute a linear layer as the reference does, then move each output one
// ulp up: another summation order, as far as a bin right at a rounding boundary can tell.
class OneUlpUp final : public run::FloatKernels {
 public:
  std::string_view name() const override { return "one ulp up"; }
  bool run(const model::Node& node, std::span<const run::Tensor* const> in, bool, run::Tensor& out) override {
    if (node.op != model::OpKind::kLinear) return false;
    const run::Tensor& x = *in[0];
    const run::Tensor& w = *in[1];
    for (size_t m = 0; m < out.values.size(); ++m) {
      float sum = 0.0f;
      for (size_t k = 0; k < x.values.size(); ++k) sum += x.values[k] * w.values[m * x.values.size() + k];
      out.values[m] = std::nextafter(sum, INFINITY);
    }
    return true;
  }
};

TEST(OrderSensitiveBins, CountsTheBinsAnotherSummationOrderFlips) {
  // quant (scale 1/128) -> fc (weights [[0.5, -0.25], [1, 0.125]] on scale 1/64) -> output
  // fake-quant (scale 1); every point uses its buffers.
  model::Graph g = tiny_qat(false);
  for (auto& p : g.fake_quants) p.kind = FakeQuantModuleKind::kFakeQuantize;
  g.fake_quants[0].scale = {1.0f / 128.0f};
  g.fake_quants[1].scale = {1.0f / 64.0f};
  g.fake_quants[2].scale = {1.0f};
  const BackendProfile profile = *make_backend_profile("qnnpack", {});
  // Output 0 is exactly 0.5, a tie that rounds to bin 0; one ulp more rounds to bin 1. Output 1
  // (1.0) stays in bin 1.
  const run::RunResult base =
      run::run_graph(g, run::float_tensor({1, 2}, {1.0f, 0.0f}), {.profile = &profile});
  OneUlpUp other;
  const auto counts = diff::order_sensitive_bins(g, base, {.profile = &profile, .float_kernels = &other});
  ASSERT_EQ(counts.count("fc"), 1U);
  EXPECT_EQ(counts.at("fc"), 1);
  EXPECT_EQ(counts.count("quant"), 0U);  // no order-dependent op
  // The same kernels again change nothing.
  EXPECT_EQ(diff::order_sensitive_bins(g, base, {.profile = &profile}).at("fc"), 0);
}

}  // namespace
}  // namespace qparity
