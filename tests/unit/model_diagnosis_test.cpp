// The model diagnosis on hand-built models (quant -> linear -> dequant, converted by qparity's
// convert()): a model whose paths agree gets no finding, and each cause planted in the weights,
// the accumulator or the output grid gets its own class.
#include "qparity/diagnose/model_diagnosis.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "qparity/diagnose/model_trace.h"
#include "qparity/diff/layer_compare.h"
#include "qparity/model/convert.h"
#include "qparity/numerics/fake_quant_module.h"
#include "qparity/run/executor.h"

namespace qparity {
namespace {

constexpr int64_t kRows = 4;
constexpr int64_t kIn = 32;
constexpr int64_t kOut = 8;

model::Node node(std::string layer, model::OpKind op, std::vector<model::ValueId> in,
                 model::ValueId out, model::OpParams params = {}) {
  model::Node n;
  n.layer = std::move(layer);
  n.op = op;
  n.inputs = std::move(in);
  n.output = out;
  n.params = std::move(params);
  return n;
}

// A point that uses its buffers (FakeQuantize, observer off), set to what convert() will compute
// from the same range (the Python observer rule): both paths use one grid.
model::FakeQuantPoint agreeing_point(std::string module, float lo, float hi, QuantSpec spec = {}) {
  model::FakeQuantPoint p;
  p.module = std::move(module);
  p.kind = FakeQuantModuleKind::kFakeQuantize;
  p.spec = spec;
  p.min_val = {lo};
  p.max_val = {hi};
  const UsedQParams q = observer_calculate_qparams(lo, hi, spec);
  p.scale = {q.grid.scale};
  p.zero_point = {q.grid.zero_point};
  return p;
}

struct LinearModel {
  std::vector<float> weight;           // [kOut, kIn]
  model::FakeQuantPoint weight_point;  // fc.weight_fake_quant
  float output_max = 4.0f;
};

QuantSpec weight_spec(QScheme scheme) { return {QDType::kQInt8, scheme, -128, 127}; }

// Weights in [-1, 1], every one different.
std::vector<float> varied_weights() {
  std::vector<float> w(kOut * kIn);
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<float>(std::sin(0.71 * static_cast<double>(i) + 0.3));
  return w;
}

model::Graph linear_qat(const LinearModel& m) {
  model::Graph g;
  g.input = g.add_value({kRows, kIn}, model::ValueType::kFloat);
  const auto x = g.add_value({kRows, kIn}, model::ValueType::kFloat);
  const model::ConstantTensor w{{kOut, kIn}, m.weight};
  const auto w_id = g.add_constant(w);
  const auto w_fq = g.add_value({kOut, kIn}, model::ValueType::kFloat);
  const auto y = g.add_value({kRows, kOut}, model::ValueType::kFloat);
  const auto out = g.add_value({kRows, kOut}, model::ValueType::kFloat);
  g.fake_quants = {agreeing_point("quant.activation_post_process", -1.0f, 1.0f), m.weight_point,
                   agreeing_point("fc.activation_post_process", 0.0f, m.output_max)};
  g.nodes = {node("quant", model::OpKind::kFakeQuant, {g.input}, x, model::FakeQuantParams{0}),
             node("fc", model::OpKind::kFakeQuant, {w_id}, w_fq, model::FakeQuantParams{1}),
             node("fc", model::OpKind::kLinear, {x, w_fq}, y),
             node("fc", model::OpKind::kFakeQuant, {y}, out, model::FakeQuantParams{2})};
  g.output = out;
  g.convert_sources.push_back({"fc", "Linear", true, false, w, std::nullopt, std::nullopt});
  g.dequant_stubs = {"dequant"};
  return g;
}

// Varied weights under a fused per-tensor symmetric weight fake-quant: QAT derives the weight grid
// with ATen's ChooseQuantizationParams, convert() with the Python observer.
LinearModel fused_weight_model() {
  LinearModel m;
  m.weight = varied_weights();
  m.weight_point.module = "fc.weight_fake_quant";
  m.weight_point.spec = weight_spec(QScheme::kPerTensorSymmetric);
  m.weight_point.min_val = {-1.0f};
  m.weight_point.max_val = {1.0f};
  m.weight_point.scale = {1.0f};
  m.weight_point.zero_point = {0};
  return m;
}

run::Tensor ramp_input() {
  std::vector<float> v(kRows * kIn);
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(std::cos(0.37 * static_cast<double>(i)));
  return run::float_tensor({kRows, kIn}, v);
}

// Both paths of a QAT graph and its convert(), run on one input and compared.
struct Runs {
  model::Graph qat, int8;
  run::RunResult fq_run, q_run;
  diff::ModelComparison comparison;
  diagnose::ModelPaths paths() const { return {qat, fq_run, int8, q_run}; }
};

Runs run_paths(const model::Graph& qat, const BackendProfile& profile,
               const run::Tensor& input = ramp_input()) {
  Runs r{qat, model::convert_eager(qat, profile), {}, {}, {}};
  const run::RunOptions options{.profile = &profile};
  r.fq_run = run::run_graph(r.qat, input, options);
  r.q_run = run::run_graph(r.int8, input, options);
  r.comparison = diff::compare_paths(r.qat, r.fq_run, r.int8, r.q_run);
  return r;
}

struct Diagnosed {
  diff::ModelComparison comparison;
  diagnose::ModelDiagnosis diagnosis;
};

Diagnosed diagnose(const model::Graph& qat, const BackendProfile& profile,
                   const run::Tensor& input = ramp_input()) {
  const Runs r = run_paths(qat, profile, input);
  const run::RunOptions options{.profile = &profile};
  return {r.comparison, diagnose::diagnose_model(r.paths(), r.comparison,
                                                 {.profile = &profile, .qat_options = &options})};
}

std::vector<diagnose::CauseClass> classes(const diagnose::ModelDiagnosis& d) {
  std::vector<diagnose::CauseClass> c;
  for (const auto& f : d.findings) c.push_back(f.cause);
  return c;
}

bool has(const diagnose::ModelDiagnosis& d, diagnose::CauseClass c) {
  const auto all = classes(d);
  return std::find(all.begin(), all.end(), c) != all.end();
}

int64_t total_mismatches(const diff::ModelComparison& c) {
  int64_t n = 0;
  for (const auto& l : c.layers) n += l.bin_mismatch_count;
  return n;
}

// Integer-valued weights on scale 1/64 and inputs on 1/128: every product and sum is exact in
// float, the requantization multiplier is a power of two, and the paths agree.
TEST(ModelDiagnosis, AgreeingPathsGetNoFinding) {
  LinearModel m;
  m.weight.resize(kOut * kIn);
  for (size_t i = 0; i < m.weight.size(); ++i)
    m.weight[i] = static_cast<float>(static_cast<int>(i % 7) - 3) / 64.0f;
  m.weight_point = agreeing_point("fc.weight_fake_quant", -2.0f, 127.0f / 64.0f,
                                  weight_spec(QScheme::kPerTensorAffine));
  m.weight_point.scale = {1.0f / 64.0f};
  m.weight_point.zero_point = {0};
  const model::Graph qat = linear_qat(m);
  const BackendProfile profile = *make_backend_profile("qnnpack", {});
  // convert() must put the weight on the same grid for this test to mean anything.
  const model::Graph int8 = model::convert_eager(qat, profile);
  ASSERT_FLOAT_EQ(
      static_cast<float>(std::get<model::QConvParams>(int8.nodes[1].params).weight.scales[0]),
      1.0f / 64.0f);
  const Diagnosed d = diagnose(qat, profile);
  ASSERT_EQ(total_mismatches(d.comparison), 0);
  EXPECT_TRUE(d.diagnosis.findings.empty());
  EXPECT_TRUE(d.diagnosis.impact.empty());
  EXPECT_TRUE(d.diagnosis.fixes.empty());
  EXPECT_EQ(d.diagnosis.local_mismatches, 0);
  ASSERT_EQ(d.diagnosis.local.size(), d.comparison.layers.size());
  for (const auto& l : d.diagnosis.local) EXPECT_TRUE(l.measured);
}

// The fused fake-quant computes the weight scale with ATen's ChooseQuantizationParams, convert()
// with the Python observer: the weight grids differ and that is the cause found.
TEST(ModelDiagnosis, FusedWeightRuleIsAWeightGridCause) {
  const LinearModel m = fused_weight_model();
  const BackendProfile profile = *make_backend_profile("qnnpack", {});
  const Diagnosed d = diagnose(linear_qat(m), profile);
  ASSERT_GT(total_mismatches(d.comparison), 0);
  ASSERT_TRUE(has(d.diagnosis, diagnose::CauseClass::kWeightGrid));
  EXPECT_FALSE(has(d.diagnosis, diagnose::CauseClass::kAccumulatorSaturation));
  EXPECT_FALSE(has(d.diagnosis, diagnose::CauseClass::kAsymmetricSameSignChannel));
  const auto& f = d.diagnosis.findings.front();
  EXPECT_EQ(f.layer, "fc");
  EXPECT_EQ(f.point, "weight");
  ASSERT_FALSE(f.evidence.empty());
  EXPECT_NE(f.evidence.front().find("aten-choose-qparams"), std::string::npos)
      << f.evidence.front();
  EXPECT_NE(f.evidence.front().find("python-observer"), std::string::npos) << f.evidence.front();
  // The findings explain every local mismatch, and no more.
  EXPECT_EQ(d.diagnosis.explained_elements, d.diagnosis.local_mismatches);
  // fc is fed the QAT input on the same grid: all its error is its own.
  const auto& fc = d.diagnosis.local[1];
  EXPECT_EQ(fc.bin_mismatch_count, d.comparison.layers[1].bin_mismatch_count);
  EXPECT_EQ(fc.inherited_count, 0);
  ASSERT_EQ(d.diagnosis.impact.size(), 1U);
  EXPECT_EQ(d.diagnosis.impact[0].layer, "fc");
  // Taking fc's own error out of the last layer leaves nothing: the outputs become equal.
  EXPECT_TRUE(std::isinf(d.diagnosis.impact[0].after.sqnr_db));
  // The fix: a plain FakeQuantize for the weight, verified by re-running the QAT path.
  ASSERT_EQ(d.diagnosis.fixes.size(), 1U);
  const auto& fix = d.diagnosis.fixes[0];
  EXPECT_TRUE(fix.verified);
  EXPECT_EQ(fix.before.bins_differing, total_mismatches(d.comparison));
  EXPECT_LT(fix.after.bins_differing, fix.before.bins_differing);
  EXPECT_NE(fix.python.find("FakeQuantize.with_args(observer=MovingAverageMinMaxObserver"),
            std::string::npos)
      << fix.python;
}

// A per-channel symmetric weight whose channel 0 is all positive: the fused rule moves that
// channel's zero point off 0 (asymmetric grid), convert() keeps it symmetric.
TEST(ModelDiagnosis, SameSignChannelIsItsOwnCause) {
  LinearModel m;
  m.weight = varied_weights();
  for (int64_t k = 0; k < kIn; ++k)
    m.weight[static_cast<size_t>(k)] = std::abs(m.weight[static_cast<size_t>(k)]) + 0.01f;
  m.weight_point.module = "fc.weight_fake_quant";
  m.weight_point.spec = weight_spec(QScheme::kPerChannelSymmetric);
  m.weight_point.per_channel = true;
  for (int64_t c = 0; c < kOut; ++c) {
    const auto row = m.weight.begin() + c * kIn;
    m.weight_point.min_val.push_back(*std::min_element(row, row + kIn));
    m.weight_point.max_val.push_back(*std::max_element(row, row + kIn));
    m.weight_point.scale.push_back(1.0f);
    m.weight_point.zero_point.push_back(0);
  }
  const BackendProfile profile =
      *make_backend_profile("onednn", {.avx2 = true, .avx512_vnni = true});
  const Diagnosed d = diagnose(linear_qat(m), profile);
  ASSERT_TRUE(has(d.diagnosis, diagnose::CauseClass::kAsymmetricSameSignChannel))
      << total_mismatches(d.comparison);
  for (const auto& f : d.diagnosis.findings) {
    if (f.cause == diagnose::CauseClass::kAsymmetricSameSignChannel) {
      EXPECT_NE(f.evidence.front().find("channel 0"), std::string::npos) << f.evidence.front();
    }
  }
}

// onednn without VNNI sums u8*s8 pairs saturating to int16: inputs and weights at the ends of
// their ranges saturate, and only the accumulator swap puts the outputs right.
TEST(ModelDiagnosis, PairSaturationIsAnAccumulatorCause) {
  LinearModel m;
  m.weight.assign(kOut * kIn, 1.0f);
  m.weight_point = agreeing_point("fc.weight_fake_quant", -1.0f, 1.0f,
                                  weight_spec(QScheme::kPerTensorSymmetric));
  m.output_max = 64.0f;
  const BackendProfile profile = *make_backend_profile("onednn", {.avx2 = true});
  const Diagnosed d =
      diagnose(linear_qat(m), profile,
               run::float_tensor({kRows, kIn}, std::vector<float>(kRows * kIn, 1.0f)));
  ASSERT_GT(total_mismatches(d.comparison), 0);
  EXPECT_EQ(classes(d.diagnosis),
            std::vector<diagnose::CauseClass>{diagnose::CauseClass::kAccumulatorSaturation});
  EXPECT_TRUE(d.diagnosis.fixes.empty());  // no QAT script change helps here
  // The same model on a VNNI CPU accumulates exactly: no mismatch, no finding.
  const BackendProfile vnni = *make_backend_profile("onednn", {.avx2 = true, .avx512_vnni = true});
  const Diagnosed exact = diagnose(
      linear_qat(m), vnni, run::float_tensor({kRows, kIn}, std::vector<float>(kRows * kIn, 1.0f)));
  EXPECT_EQ(total_mismatches(exact.comparison), 0);
  EXPECT_TRUE(exact.diagnosis.findings.empty());
}

// An output fake-quant whose scale buffer is 1 % off convert()'s grid: an activation grid cause at
// the layer's output, not a weight one.
TEST(ModelDiagnosis, OutputScaleIsAnActivationGridCause) {
  LinearModel m;
  m.weight = varied_weights();
  m.weight_point = agreeing_point("fc.weight_fake_quant", -1.0f, 1.0f,
                                  weight_spec(QScheme::kPerTensorSymmetric));
  model::Graph qat = linear_qat(m);
  qat.fake_quants[2].scale[0] *= 1.01f;
  const BackendProfile profile = *make_backend_profile("qnnpack", {});
  const Diagnosed d = diagnose(qat, profile);
  ASSERT_GT(total_mismatches(d.comparison), 0);
  EXPECT_TRUE(has(d.diagnosis, diagnose::CauseClass::kActivationGrid));
  EXPECT_FALSE(has(d.diagnosis, diagnose::CauseClass::kWeightGrid));
  for (const auto& f : d.diagnosis.findings) {
    if (f.cause == diagnose::CauseClass::kActivationGrid) {
      EXPECT_EQ(f.point, "output");
      EXPECT_NE(f.evidence.front().find("ulps apart"), std::string::npos) << f.evidence.front();
    }
  }
}

// The element trace of a mismatching element names the weight integers as the first stage that
// differs (the fused rule's grid), and ends in the bins the comparison reports.
TEST(ModelElementTrace, FirstDifferenceIsTheWeightIntegers) {
  const BackendProfile profile = *make_backend_profile("qnnpack", {});
  const Runs r = run_paths(linear_qat(fused_weight_model()), profile);
  const auto& fc = r.comparison.layers[1];
  ASSERT_EQ(fc.name, "fc");
  ASSERT_TRUE(fc.first_mismatch.has_value());
  const auto t =
      diagnose::trace_model_element(r.paths(), r.comparison, 1, fc.first_mismatch->index, profile);
  ASSERT_TRUE(t.first_difference.has_value());
  EXPECT_EQ(t.rows[*t.first_difference].stage, "weight integers at the taps");
  EXPECT_EQ(t.rows[0].int8, "the same values");  // fc's input is the QAT path's: nothing inherited
  EXPECT_EQ(t.fake_quant_bin, fc.first_mismatch->fake_quant_bin);
  EXPECT_EQ(t.int8_bin, fc.first_mismatch->int8_bin);
  EXPECT_TRUE(t.rows.back().differs);
  // An element that agrees: its bins are equal and the last rows say so.
  int64_t agreeing = -1;
  const auto dq = diff::layer_dq(fc, r.fq_run.values[static_cast<size_t>(fc.fake_quant_value)],
                                 r.q_run.values[static_cast<size_t>(fc.int8_value)]);
  for (size_t i = 0; i < dq.size() && agreeing < 0; ++i)
    agreeing = dq[i] == 0 ? static_cast<int64_t>(i) : -1;
  ASSERT_GE(agreeing, 0);
  const auto same = diagnose::trace_model_element(r.paths(), r.comparison, 1, agreeing, profile);
  EXPECT_EQ(same.fake_quant_bin, same.int8_bin);
  EXPECT_FALSE(same.rows.back().differs);
  EXPECT_THROW(diagnose::trace_model_element(r.paths(), r.comparison, 1, fc.numel, profile),
               std::invalid_argument);
}

// An output observer left enabled moves the QAT grid during the forward, away from the grid
// convert() took: the cause is the moved observer, and disabling the observers is a verified fix.
TEST(ModelDiagnosis, AnEnabledObserverIsAnObserverMovedCause) {
  LinearModel m;
  m.weight = varied_weights();
  m.weight_point = agreeing_point("fc.weight_fake_quant", -1.0f, 1.0f,
                                  weight_spec(QScheme::kPerTensorSymmetric));
  model::Graph qat = linear_qat(m);
  qat.fake_quants[2].kind = FakeQuantModuleKind::kFusedMovingAvgObsFakeQuantize;
  qat.fake_quants[2].observer_enabled = true;
  qat.fake_quants[2].averaging_constant =
      0.5f;  // the ramp's outputs pull the range far in one step
  const BackendProfile profile = *make_backend_profile("qnnpack", {});
  const Diagnosed d = diagnose(qat, profile);
  ASSERT_GT(total_mismatches(d.comparison), 0);
  EXPECT_TRUE(has(d.diagnosis, diagnose::CauseClass::kObserverMoved));
  EXPECT_FALSE(has(d.diagnosis, diagnose::CauseClass::kActivationGrid));
  ASSERT_FALSE(d.diagnosis.fixes.empty());
  EXPECT_NE(d.diagnosis.fixes.back().python.find("disable_observer"), std::string::npos);
  EXPECT_LT(d.diagnosis.fixes.back().after.bins_differing,
            d.diagnosis.fixes.back().before.bins_differing);
}

TEST(ModelDiagnosis, ResultsDoNotDependOnThreads) {
  const BackendProfile profile = *make_backend_profile("qnnpack", {});
  const Runs r = run_paths(linear_qat(fused_weight_model()), profile);
  const auto one =
      diagnose::diagnose_model(r.paths(), r.comparison, {.profile = &profile, .threads = 1});
  const auto four =
      diagnose::diagnose_model(r.paths(), r.comparison, {.profile = &profile, .threads = 4});
  ASSERT_EQ(one.findings.size(), four.findings.size());
  for (size_t i = 0; i < one.findings.size(); ++i) {
    EXPECT_EQ(one.findings[i].explains_elements, four.findings[i].explains_elements);
    EXPECT_EQ(one.findings[i].evidence, four.findings[i].evidence);
  }
  EXPECT_EQ(one.local_mismatches, four.local_mismatches);
}

}  // namespace
}  // namespace qparity
