// run_graph with a RunWorkspace (tensors reused across runs) against run_graph without one: the
// same values, bins, grids and fake-quant uses, run after run, also when the input changes and
// when runs of different graphs share the workspace (no stale element may survive).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "qparity/run/executor.h"

namespace qparity {
namespace {

model::Node node(model::OpKind op, std::vector<model::ValueId> inputs, model::ValueId output,
                 model::OpParams params = {}) {
  model::Node n;
  n.layer = "conv";
  n.op = op;
  n.inputs = std::move(inputs);
  n.output = output;
  n.params = std::move(params);
  return n;
}

model::FakeQuantPoint point(float lo, float hi, float scale, int64_t zero_point, bool observe) {
  model::FakeQuantPoint p;
  p.module = "point";
  p.kind = FakeQuantModuleKind::kFakeQuantize;
  p.min_val = {lo};
  p.max_val = {hi};
  p.scale = {scale};
  p.zero_point = {zero_point};
  p.observer_enabled = observe;
  return p;
}

const model::Dims kInput{1, 3, 5, 6};

// QAT-like: fake-quant -> 3x3 conv (+bias) -> relu -> fake-quant (observing: its state moves).
model::Graph float_graph(int64_t outputs) {
  model::Graph g;
  g.input = g.add_value(kInput, model::ValueType::kFloat);
  const auto x_fq = g.add_value(kInput, model::ValueType::kFloat);
  std::vector<float> w(static_cast<size_t>(outputs * 3 * 9));
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.7f * static_cast<float>(i)) * 0.3f;
  const auto w_id = g.add_constant({{outputs, 3, 3, 3}, w});
  const auto b_id = g.add_constant({{outputs}, std::vector<float>(static_cast<size_t>(outputs), 0.125f)});
  const model::Dims out{1, outputs, 5, 6};
  const auto conv = g.add_value(out, model::ValueType::kFloat);
  const auto relu = g.add_value(out, model::ValueType::kFloat);
  const auto y = g.add_value(out, model::ValueType::kFloat);
  g.fake_quants = {point(-1.0f, 1.0f, 1.0f / 128, 128, false), point(0.0f, 2.0f, 1.0f / 64, 0, true)};
  g.nodes = {node(model::OpKind::kFakeQuant, {g.input}, x_fq, model::FakeQuantParams{0}),
             node(model::OpKind::kConv2d, {x_fq, w_id, b_id}, conv,
                  model::ConvParams{{.pad_h = 1, .pad_w = 1}}),
             node(model::OpKind::kRelu, {conv}, relu),
             node(model::OpKind::kFakeQuant, {relu}, y, model::FakeQuantParams{1})};
  g.output = y;
  return g;
}

// int8-like: quantize -> quantized conv (+relu) -> relu -> dequantize.
model::Graph int8_graph() {
  model::Graph g;
  g.input = g.add_value(kInput, model::ValueType::kFloat);
  const auto xq = g.add_value(kInput, model::ValueType::kQUInt8);
  const model::Dims out{1, 4, 5, 6};
  const auto conv = g.add_value(out, model::ValueType::kQUInt8);
  const auto relu = g.add_value(out, model::ValueType::kQUInt8);
  const auto y = g.add_value(out, model::ValueType::kFloat);
  model::QConvParams p{.geometry = {.pad_h = 1, .pad_w = 1}, .output = {.scale = 1.0 / 32, .zero_point = 5}};
  p.weight = {.dims = {4, 3, 3, 3}, .scales = {1.0 / 64}, .zero_points = {0}, .bias = {0.5f, -0.5f, 0.0f, 1.0f}};
  for (int i = 0; i < 4 * 27; ++i) p.weight.data.push_back(static_cast<int8_t>((i * 37) % 255 - 127));
  g.nodes = {node(model::OpKind::kQuantize, {g.input}, xq, model::QuantizeParams{{.scale = 1.0 / 128, .zero_point = 128}}),
             node(model::OpKind::kQConv2d, {xq}, conv, p),
             node(model::OpKind::kRelu, {conv}, relu),
             node(model::OpKind::kDequantize, {relu}, y)};
  g.output = y;
  return g;
}

run::Tensor random_input(std::mt19937& rng) {
  std::uniform_real_distribution<float> real(-1.5f, 1.5f);
  std::vector<float> v(static_cast<size_t>(model::numel(kInput)));
  for (float& e : v) e = real(rng);
  return run::float_tensor(kInput, std::move(v));
}

void expect_same(const run::RunResult& a, const run::RunResult& b) {
  ASSERT_EQ(a.values.size(), b.values.size());
  for (size_t i = 0; i < a.values.size(); ++i) {
    const run::Tensor& x = a.values[i];
    const run::Tensor& y = b.values[i];
    EXPECT_EQ(x.dims, y.dims) << "value " << i;
    EXPECT_EQ(x.type, y.type) << "value " << i;
    EXPECT_EQ(x.bins, y.bins) << "value " << i;
    EXPECT_EQ(x.scale, y.scale) << "value " << i;
    EXPECT_EQ(x.zero_point, y.zero_point) << "value " << i;
    ASSERT_EQ(x.values.size(), y.values.size()) << "value " << i;
    for (size_t e = 0; e < x.values.size(); ++e) {
      ASSERT_EQ(std::bit_cast<uint32_t>(x.values[e]), std::bit_cast<uint32_t>(y.values[e])) << "value " << i;
    }
  }
  ASSERT_EQ(a.fake_quant_uses.size(), b.fake_quant_uses.size());
  for (size_t i = 0; i < a.final_points.size(); ++i) {
    EXPECT_EQ(a.final_points[i].min_val, b.final_points[i].min_val);
    EXPECT_EQ(a.final_points[i].max_val, b.final_points[i].max_val);
  }
}

TEST(RunWorkspace, RunsEqualRunsWithoutOne) {
  const BackendProfile profile = *make_backend_profile("onednn", {});
  // Two float graphs of different widths and the int8 graph take turns in one workspace, so
  // slots change size and type between runs.
  const model::Graph graphs[] = {float_graph(4), int8_graph(), float_graph(2), float_graph(4)};
  for (const bool bins : {false, true}) {
    std::mt19937 rng(11);
    run::RunWorkspace workspace;
    for (int i = 0; i < 24; ++i) {
      constexpr size_t kOrder[] = {0, 0, 1, 1, 2, 2, 0, 3, 1, 0, 2, 1};  // repeats and switches
      const model::Graph& g = graphs[kOrder[static_cast<size_t>(i) % 12]];
      const run::RunOptions options{.profile = &profile, .fake_quant_bins = bins};
      const run::Tensor input = random_input(rng);
      const run::RunResult fresh = run::run_graph(g, input, options);
      const run::RunResult& reused = run::run_graph(g, input, options, workspace);
      expect_same(fresh, reused);
      if (HasFatalFailure()) return;
    }
  }
}

}  // namespace
}  // namespace qparity
