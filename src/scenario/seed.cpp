#include "qparity/scenario/seed.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <span>
#include <string>
#include <thread>

#include "qparity/numerics/fake_quant.h"
#include "qparity/numerics/float32.h"
#include "qparity/numerics/quantize.h"
#include "qparity/model/convert.h"
#include "qparity/ops/elementwise.h"
#include "qparity/run/executor.h"

namespace qparity {
namespace {

FakeQuantModuleKind module_kind(ObserverKind kind) {
  return kind == ObserverKind::kFused ? FakeQuantModuleKind::kFusedMovingAvgObsFakeQuantize
                                      : FakeQuantModuleKind::kFakeQuantize;
}

// The seed's activation qconfig: quint8 [0,255] per-tensor affine.
FakeQuantModule activation_module(const SeedOptions& o) {
  FakeQuantModule m;
  m.kind = module_kind(o.observer);
  m.spec = {.dtype = QDType::kQUInt8, .qscheme = QScheme::kPerTensorAffine, .quant_min = 0,
            .quant_max = 255, .reduce_range = o.activation_reduce_range};
  m.observer_enabled = false;  // the seed's disable_observer
  return m;
}

// The seed's weight qconfig: qint8 [-128,127] per-tensor symmetric (knobs may change it).
FakeQuantModule weight_module(const SeedOptions& o) {
  FakeQuantModule m = activation_module(o);
  m.spec = {.dtype = QDType::kQInt8, .qscheme = o.weight_qscheme, .quant_min = o.weight_quant_min,
            .quant_max = o.weight_quant_max};
  return m;
}

// The 3x3 matrix the pattern multiplies k with (all entries exact in binary).
float pattern_entry(WeightPattern p, int64_t m, int64_t c) {
  static constexpr float kDenseMatrix[3][3] = {{1.0f, 0.5f, -0.25f}, {-0.5f, 1.0f, 0.5f},
                                               {0.25f, -0.5f, 1.0f}};
  switch (p) {
    case WeightPattern::kIdentity:
      return m == c ? 1.0f : 0.0f;
    case WeightPattern::kNegativeIdentity:
      return m == c ? -1.0f : 0.0f;
    case WeightPattern::kMixedSigns:
      return m == c ? (m % 2 == 0 ? 1.0f : -1.0f) : 0.0f;
    case WeightPattern::kDense:
      return kDenseMatrix[m][c];
  }
  return 0.0f;
}

// k * matrix (torch.eye(3) for the seed): float32 products of the scalar cast to float.
std::vector<float> seed_weight(const SeedOptions& o) {
  std::vector<float> w(static_cast<size_t>(kSeedChannels * kSeedChannels), 0.0f);
  const float kf = to_f32(o.k);
  for (int64_t m = 0; m < kSeedChannels; ++m) {
    for (int64_t c = 0; c < kSeedChannels; ++c) {
      w[static_cast<size_t>(m * kSeedChannels + c)] = kf * pattern_entry(o.weight_pattern, m, c);
    }
  }
  return w;
}

}  // namespace

std::string_view to_string(ObserverKind kind) {
  return kind == ObserverKind::kFused ? "fused" : "plain";
}

std::optional<ObserverKind> parse_observer_kind(std::string_view name) {
  if (name == "fused") return ObserverKind::kFused;
  if (name == "plain") return ObserverKind::kPlain;
  return std::nullopt;
}

std::string_view to_string(WeightPattern pattern) {
  switch (pattern) {
    case WeightPattern::kIdentity:
      return "identity";
    case WeightPattern::kNegativeIdentity:
      return "negative";
    case WeightPattern::kMixedSigns:
      return "mixed";
    case WeightPattern::kDense:
      return "dense";
  }
  return "?";
}

std::optional<WeightPattern> parse_weight_pattern(std::string_view name) {
  if (name == "identity") return WeightPattern::kIdentity;
  if (name == "negative") return WeightPattern::kNegativeIdentity;
  if (name == "mixed") return WeightPattern::kMixedSigns;
  if (name == "dense") return WeightPattern::kDense;
  return std::nullopt;
}

int64_t seed_bytes_per_row() {
  // Per element: input float + fake-quant input, quint8 input, two float outputs, two bin
  // outputs, the float conv output and the int32 accumulators.
  constexpr int64_t kBytesPerElement = 4 + 4 + 1 + 4 + 4 + 1 + 1 + 4 + 4;
  return kSeedChannels * kSeedWidth * kBytesPerElement;
}

namespace {

std::string shortest(double v);

[[noreturn]] void refuse(const std::string& option, double value, const std::string& why) {
  throw std::invalid_argument(option + " " + shortest(value) + ": " + why);
}

// The observer range the seed hand-sets for weights w: [min(w), max(w)] widened to include 0.
float min_with_zero(std::span<const float> w) { return std::min(0.0f, *std::min_element(w.begin(), w.end())); }
float max_with_zero(std::span<const float> w) { return std::max(0.0f, *std::max_element(w.begin(), w.end())); }

// Output channel m's row of the [3, 3, 1, 1] weight.
std::span<const float> weight_row(const std::vector<float>& w, int64_t m) {
  return std::span<const float>(w).subspan(static_cast<size_t>(m * kSeedChannels), kSeedChannels);
}

// The conv weight [3, 3, 1, 1] as an IR constant.
model::ConstantTensor weight_tensor(const std::vector<float>& w) { return {{kSeedChannels, kSeedChannels, 1, 1}, w}; }

// The weight observer's min_val the seed hand-sets, per output channel when the weights are per
// channel (the largest of them bounds every channel's check: a max below it fails that channel).
float weight_observer_min(const SeedOptions& o, const std::vector<float>& w) {
  if (!is_per_channel(o.weight_qscheme)) return min_with_zero(w);
  float largest = 0.0f;
  for (int64_t m = 0; m < kSeedChannels; ++m) largest = std::max(largest, min_with_zero(weight_row(w, m)));
  return largest;
}

}  // namespace

void validate_seed_options(const SeedOptions& o) {
  if (!std::isfinite(o.k) || !(o.k > 0.0)) refuse("--k", o.k, "must be a finite number > 0");
  const float kf = to_f32(o.k);
  if (!std::isfinite(kf) || kf == 0.0f || !std::isfinite(to_f32(2.0 * o.k / 255.0)) ||
      !std::isnormal(to_f32(o.k / 255.0))) {
    refuse("--k", o.k, "outside the float32 range the experiment needs (k/255 and 2k/255 must be normal floats)");
  }
  if (o.rows <= 0) throw std::invalid_argument("--rows must be a positive integer");
  if (o.weight_quant_min < -128 || o.weight_quant_max > 127 ||
      o.weight_quant_min >= o.weight_quant_max) {
    throw std::invalid_argument("--weight-quant-min " + std::to_string(o.weight_quant_min) +
                                ": the weight range must lie in [-128, 127] with min < max (" +
                                std::to_string(o.weight_quant_max) + ")");
  }
  if (o.weight_quant_min > 0) {
    // PyTorch refuses it too: the observer's _validate_qmin_qmax asserts quant_min <= 0 <= quant_max
    // ("Used-specified quantization range must include 0."); a run would have no zero bin.
    throw std::invalid_argument("--weight-quant-min " + std::to_string(o.weight_quant_min) +
                                ": the weight range must include 0, as PyTorch's observers require");
  }
  const std::pair<const char*, const std::optional<double>*> observers[] = {
      {"--weight-observer-max", &o.weight_observer_max},
      {"--output-observer-max", &o.output_observer_max},
      {"--output-observer-min", &o.output_observer_min}};
  for (const auto& [option, value] : observers) {
    if (*value && !(std::isfinite(**value) && std::isfinite(to_f32(**value)))) {
      refuse(option, **value, "not a finite float32 value");
    }
  }
  const float out_min = to_f32(o.output_observer_min.value_or(0.0));
  const float out_max = to_f32(o.output_observer_max.value_or(o.k));
  if (out_min > out_max) {
    // calculate_qparams asserts min <= max; name whichever value the user set.
    if (o.output_observer_min) {
      refuse("--output-observer-min", *o.output_observer_min,
             "exceeds the output observer's max_val " + shortest(out_max) +
                 (o.output_observer_max ? " (--output-observer-max)" : " (k)"));
    }
    refuse("--output-observer-max", *o.output_observer_max, "is below the output observer's min_val 0");
  }
  if (o.weight_observer_max) {
    const float w_min = weight_observer_min(o, seed_weight(o));
    if (to_f32(*o.weight_observer_max) < w_min) {
      refuse("--weight-observer-max", *o.weight_observer_max,
             "is below the weight observer's min_val " + shortest(w_min) + " (min(W) with 0)");
    }
  }
  const std::pair<const char*, const std::optional<double>*> scales[] = {
      {"--input-scale", &o.input_scale}, {"--weight-scale", &o.weight_scale}, {"--output-scale", &o.output_scale}};
  for (const auto& [option, scale] : scales) {
    if (*scale && !(std::isfinite(**scale) && std::isnormal(to_f32(**scale)) && **scale > 0.0)) {
      refuse(option, **scale, "a hand-set scale must be a positive normal float32 value");
    }
  }
}

namespace {

std::string shortest(double v) {
  char buf[40];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void add_if(std::vector<std::pair<std::string, std::string>>& out, bool changed,
            const char* flag, std::string value) {
  if (changed) out.emplace_back(flag, std::move(value));
}

void add_optional(std::vector<std::pair<std::string, std::string>>& out, const char* flag,
                  const std::optional<double>& base, const std::optional<double>& changed) {
  if (base != changed && changed) out.emplace_back(flag, shortest(*changed));
}

}  // namespace

std::vector<std::pair<std::string, std::string>> option_changes(const SeedOptions& a,
                                                                const SeedOptions& b) {
  std::vector<std::pair<std::string, std::string>> out;
  add_if(out, a.k != b.k, "--k", shortest(b.k));
  add_if(out, a.backend != b.backend, "--backend", b.backend);
  add_if(out, a.observer != b.observer, "--observer", std::string(to_string(b.observer)));
  add_if(out, a.rows != b.rows, "--rows", std::to_string(b.rows));
  add_if(out, a.weight_qscheme != b.weight_qscheme, "--weight-qscheme",
         std::string(to_string(b.weight_qscheme)));
  add_if(out, a.weight_quant_min != b.weight_quant_min, "--weight-quant-min",
         std::to_string(b.weight_quant_min));
  add_if(out, a.activation_reduce_range != b.activation_reduce_range, "--reduce-range",
         b.activation_reduce_range ? "" : "false");
  add_if(out, a.weight_pattern != b.weight_pattern, "--weight-pattern",
         std::string(to_string(b.weight_pattern)));
  add_optional(out, "--weight-observer-max", a.weight_observer_max, b.weight_observer_max);
  add_optional(out, "--output-observer-max", a.output_observer_max, b.output_observer_max);
  add_optional(out, "--output-observer-min", a.output_observer_min, b.output_observer_min);
  add_optional(out, "--input-scale", a.input_scale, b.input_scale);
  add_optional(out, "--weight-scale", a.weight_scale, b.weight_scale);
  add_optional(out, "--output-scale", a.output_scale, b.output_scale);
  return out;
}

std::string seed_command_line(const SeedOptions& options) {
  std::string line = "qparity seed";
  for (const auto& [flag, value] : option_changes(SeedOptions{}, options)) {
    line += " " + flag;
    if (!value.empty()) line += (value == "false" ? "=" : " ") + value;
  }
  return line;
}

namespace {

constexpr int64_t kRowsPerBlock = 16;

// A module of the seed's QAT model as an IR fake-quant point. Its spec names the observer's
// effective range (reduce_range applied), as a frontend reads it from the module.
model::FakeQuantPoint point_of(std::string module, const FakeQuantModule& m,
                               const std::vector<FakeQuantModule>& channels) {
  model::FakeQuantPoint p;
  p.module = std::move(module);
  p.kind = m.kind;
  p.spec = m.spec;
  const QRange range = observer_quant_range(m.spec);
  p.spec.quant_min = range.min;
  p.spec.quant_max = range.max;
  p.spec.custom_range = true;
  p.spec.reduce_range = false;
  p.per_channel = !channels.empty();
  p.observer_enabled = m.observer_enabled;
  p.fake_quant_enabled = m.fake_quant_enabled;
  p.hand_set_scale = m.hand_set_scale;
  for (const FakeQuantModule& c : channels.empty() ? std::vector<FakeQuantModule>{m} : channels) {
    p.min_val.push_back(c.min_val);
    p.max_val.push_back(c.max_val);
    p.scale.push_back(c.scale_buffer);
    p.zero_point.push_back(c.zero_point_buffer);
  }
  return p;
}

model::Node node(std::string layer, model::OpKind op, std::vector<model::ValueId> inputs,
                 model::ValueId output, model::OpParams params = {}) {
  return {.layer = std::move(layer), .source_op = std::string(model::to_string(op)), .op = op,
          .inputs = std::move(inputs), .output = output, .params = std::move(params)};
}

struct SeedModules {
  FakeQuantModule input, weight, output;
  std::vector<FakeQuantModule> weight_channels;  // per-channel weights: one per output channel
};

// FooConv1x1 after fuse_modules + prepare_qat + the seed's hand-setting, as the IR a frontend
// reads from its trace: quant -> conv (ConvReLU2d: weight fake-quant, conv, relu, output
// fake-quant) -> dequant, for `rows` input rows.
model::Graph seed_qat_graph(const SeedModules& m, const std::vector<float>& weight,
                            const std::vector<float>& bias, int64_t rows) {
  using model::OpKind;
  model::Graph g;
  g.fake_quants = {point_of("quant.activation_post_process", m.input, {}),
                   point_of("conv.weight_fake_quant", m.weight, m.weight_channels),
                   point_of("conv.activation_post_process", m.output, {})};
  const model::Dims dims{1, kSeedChannels, rows, kSeedWidth};
  const model::ConstantTensor w = weight_tensor(weight);
  const model::ConstantTensor b{{kSeedChannels}, bias};
  g.input = g.add_value(dims, model::ValueType::kFloat);
  const model::ValueId w_id = g.add_constant(w);
  const model::ValueId b_id = g.add_constant(b);
  model::ValueId next = g.input;
  auto emit = [&](const char* layer, OpKind op, std::vector<model::ValueId> in, model::OpParams params,
                  const model::Dims& out_dims) {
    const model::ValueId out = g.add_value(out_dims, model::ValueType::kFloat);
    g.nodes.push_back(node(layer, op, std::move(in), out, std::move(params)));
    return out;
  };
  const model::ValueId x_fq = emit("quant", OpKind::kFakeQuant, {next}, model::FakeQuantParams{0}, dims);
  const model::ValueId w_fq = emit("conv", OpKind::kFakeQuant, {w_id}, model::FakeQuantParams{1}, w.dims);
  next = emit("conv", OpKind::kConv2d, {x_fq, w_fq, b_id}, model::ConvParams{}, dims);
  next = emit("conv", OpKind::kRelu, {next}, {}, dims);
  g.output = emit("conv", OpKind::kFakeQuant, {next}, model::FakeQuantParams{2}, dims);
  g.convert_sources.push_back({.module = "conv", .type = "ConvReLU2d", .linear = false, .relu = true,
                               .weight = w, .bias = b, .bn = std::nullopt});
  g.dequant_stubs = {"dequant"};
  return g;
}

// The grids of PathGrids, one list per fake-quant point in graph order.
std::array<std::vector<QuantGrid>, 3> point_grids(const PathGrids& g) {
  return {std::vector<QuantGrid>{g.input},
          g.weight_channels.empty() ? std::vector<QuantGrid>{g.weight} : g.weight_channels,
          std::vector<QuantGrid>{g.output}};
}

// The QAT graph on given grids: a FakeQuantize module with its observer off uses exactly its
// buffers (eq. 3.1), so pinning every point that way runs the forward on those grids.
model::Graph pin_fake_quant_grids(model::Graph g, const PathGrids& grids) {
  const auto per_point = point_grids(grids);
  for (size_t i = 0; i < g.fake_quants.size(); ++i) {
    model::FakeQuantPoint& p = g.fake_quants[i];
    p.kind = FakeQuantModuleKind::kFakeQuantize;
    p.observer_enabled = false;
    p.hand_set_scale.reset();
    p.scale.clear();
    p.zero_point.clear();
    for (const QuantGrid& q : per_point[i]) {
      p.scale.push_back(q.scale);
      p.zero_point.push_back(q.zero_point);
    }
    p.spec.quant_min = per_point[i].front().range.min;
    p.spec.quant_max = per_point[i].front().range.max;
  }
  return g;
}

model::OutputGrid output_grid(const QuantGrid& g) {
  return {.scale = static_cast<double>(g.scale), .zero_point = g.zero_point, .origin = {}};
}

// The converted graph on given grids: the input quantized, the weight re-quantized and the
// output requantized onto them, as convert() would with those qparams.
model::Graph set_int8_grids(model::Graph g, const PathGrids& grids, const model::ConstantTensor& weight) {
  const auto per_point = point_grids(grids);
  for (model::Node& n : g.nodes) {
    if (auto* q = std::get_if<model::QuantizeParams>(&n.params)) q->output = output_grid(grids.input);
    if (auto* c = std::get_if<model::QConvParams>(&n.params)) {
      c->weight = model::quantize_weight(weight, c->weight.per_channel, per_point[1], c->weight.bias);
      c->output = output_grid(grids.output);
    }
  }
  return g;
}

// The seed's int8 model up to its conv: the experiment compares output bins, and what the
// DeQuantStub would make of each bin is the int8 path's value table (eq. 5.2).
model::Graph converted(const model::Graph& qat, const BackendProfile& profile) {
  model::Graph g = model::convert_eager(qat, profile);
  if (g.nodes.back().op == model::OpKind::kDequantize) {
    g.output = g.nodes.back().inputs.front();
    g.nodes.pop_back();
  }
  return g;
}

// One point of the converted graph as the int8 path uses it.
UsedQParams int8_used(double scale, int64_t zero_point, const model::QParamsOrigin& origin, size_t channel,
                      QDType dtype) {
  UsedQParams u;
  const bool derived = channel < origin.derivations.size();
  u.grid = {static_cast<float>(scale), zero_point, derived ? origin.derivations[channel].range : storage_range(dtype)};
  if (derived) u.derivation = origin.derivations[channel];
  u.provenance = origin.provenance;
  return u;
}

template <typename Params>
const Params& params_of(const model::Graph& g) {
  for (const model::Node& n : g.nodes) {
    if (const auto* p = std::get_if<Params>(&n.params)) return *p;
  }
  throw std::logic_error("the seed graph lacks an op");
}

}  // namespace

SeedExperiment::SeedExperiment(const SeedOptions& o, const CpuFeatures& cpu) : options_(o) {
  validate_seed_options(o);
  auto profile = make_backend_profile(o.backend, cpu);
  if (!profile) throw std::invalid_argument("unknown backend '" + o.backend + "'");
  profile_ = std::move(*profile);
  input_shape_ = {1, kSeedChannels, o.rows, kSeedWidth};
  weight_shape_ = {kSeedChannels, kSeedChannels, 1, 1};
  weight_ = seed_weight(o);
  bias_.assign(static_cast<size_t>(kSeedChannels), 0.0f);

  // The seed's set_qconfig_params: hand-set "theoretical" scales and observer ranges.
  SeedModules m{activation_module(o), weight_module(o), activation_module(o), {}};
  const float w_min = min_with_zero(weight_);
  const float w_max = max_with_zero(weight_);
  hand_set_scale(m.weight, o.weight_scale.value_or(2.0 * o.k / 255.0));  // "symmetric, hence x2"
  m.weight.min_val = w_min;
  m.weight.max_val = o.weight_observer_max ? to_f32(*o.weight_observer_max) : w_max;
  if (is_per_channel(o.weight_qscheme)) {
    // Per channel, each output channel's observer range is that row's [min, max] (with 0);
    // the hand-set scale is repeated and the zero points start at 0, one per channel.
    for (int64_t c = 0; c < kSeedChannels; ++c) {
      FakeQuantModule channel = m.weight;
      channel.min_val = min_with_zero(weight_row(weight_, c));
      channel.max_val = o.weight_observer_max ? to_f32(*o.weight_observer_max) : max_with_zero(weight_row(weight_, c));
      m.weight_channels.push_back(channel);
    }
  }
  hand_set_scale(m.output, o.output_scale.value_or(o.k / 255.0));
  m.output.min_val = to_f32(o.output_observer_min.value_or(0.0));
  m.output.max_val = to_f32(o.output_observer_max.value_or(o.k));
  hand_set_scale(m.input, o.input_scale.value_or(1.0 / 255.0));
  m.input.min_val = 0.0f;
  m.input.max_val = 1.0f;

  qat_.block = seed_qat_graph(m, weight_, bias_, std::min(kRowsPerBlock, o.rows));
  if (o.rows > kRowsPerBlock && o.rows % kRowsPerBlock != 0) {
    qat_.tail = seed_qat_graph(m, weight_, bias_, o.rows % kRowsPerBlock);
  }
  // convert(): qparity's emulation of eager convert, the same one `qparity model` runs.
  int8_.block = converted(qat_.block, profile_);
  if (!qat_.tail.nodes.empty()) int8_.tail = converted(qat_.tail, profile_);
}

PathResult SeedExperiment::derive_fake_quant_points() const {
  // The QAT forward calls the quant stub, conv weight and conv output fake-quants in order,
  // each deriving its qparams as the engine's fake-quant op does (a fused module overwrites its
  // buffers on the way).
  static constexpr const char* kNames[] = {"input", "weight", "output"};
  PathResult p;
  p.name = "fake_quant";
  QuantPoint* points[] = {&p.input, &p.weight, &p.output};
  for (size_t i = 0; i < 3; ++i) {
    model::FakeQuantPoint state = qat_.block.fake_quants[i];
    std::vector<UsedQParams> used = run::fake_quant_qparams(state, profile_.fused_fake_quant_rule);
    QuantPoint& q = *points[i];
    q = {kNames[i], state.spec.dtype, state.spec.qscheme, used.front(), {}};
    if (state.per_channel) q.channels = std::move(used);
  }
  return p;
}

PathResult SeedExperiment::derive_int8_points() const {
  // convert() runs the weight fake-quant once more (observers off: no observer change), then
  // every module's calculate_qparams(); the buffers are not read. The converted graph carries
  // what it derived.
  const auto& quantize = params_of<model::QuantizeParams>(int8_.block);
  const auto& conv = params_of<model::QConvParams>(int8_.block);
  const auto& points = qat_.block.fake_quants;
  PathResult p;
  p.name = "int8";
  p.input = {"input", points[0].spec.dtype, points[0].spec.qscheme,
             int8_used(quantize.output.scale, quantize.output.zero_point, quantize.output.origin, 0,
                       points[0].spec.dtype),
             {}};
  p.weight = {"weight", points[1].spec.dtype, points[1].spec.qscheme, {}, {}};
  for (size_t c = 0; c < conv.weight.scales.size(); ++c) {
    p.weight.channels.push_back(int8_used(conv.weight.scales[c], conv.weight.zero_points[c], conv.weight.origin, c,
                                          points[1].spec.dtype));
  }
  p.weight.used = p.weight.channels.front();
  if (!conv.weight.per_channel) p.weight.channels.clear();
  p.output = {"output", points[2].spec.dtype, points[2].spec.qscheme,
              int8_used(conv.output.scale, conv.output.zero_point, conv.output.origin, 0, points[2].spec.dtype),
              {}};
  return p;
}

// arange(0,256).repeat(1,3,rows,1) / 255.0: float32 true division of exact integers.
float SeedExperiment::input_at(const ElementIndex& index) const {
  return static_cast<float>(index.w) / 255.0f;
}

namespace {

// `rows` rows of the seed's input, [1, C, rows, W]. Every row is the same ramp (that is the
// seed's input); the paths still compute every element of every row.
run::Tensor input_block(int64_t rows, const std::array<float, kSeedWidth>& ramp) {
  std::vector<float> x(static_cast<size_t>(kSeedChannels * rows * kSeedWidth));
  for (size_t row = 0; row < static_cast<size_t>(kSeedChannels * rows); ++row) {
    std::copy(ramp.begin(), ramp.end(), x.begin() + static_cast<std::ptrdiff_t>(row * kSeedWidth));
  }
  return run::float_tensor({1, kSeedChannels, rows, kSeedWidth}, std::move(x));
}

// Copies a [C, rows, W] block into rows [first_row, ...) of a [1, C, H, W] tensor.
void scatter_block(const std::vector<uint8_t>& block, const Shape4& shape, int64_t first_row,
                   int64_t rows, std::vector<uint8_t>& out) {
  const auto row_elems = static_cast<size_t>(rows * shape.w);
  for (int64_t c = 0; c < shape.c; ++c) {
    std::copy_n(block.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(c) * row_elems),
                row_elems,
                out.begin() + static_cast<std::ptrdiff_t>((c * shape.h + first_row) * shape.w));
  }
}

// The float each output bin stands for in the fake-quant path (eq. 4.1) ...
std::array<float, 256> fake_quant_bin_values(const QuantGrid& g) {
  std::array<float, 256> values{};
  for (int b = 0; b < 256; ++b) {
    values[static_cast<size_t>(b)] = static_cast<float>(
        (static_cast<double>(b) - static_cast<double>(g.zero_point)) * static_cast<double>(g.scale));
  }
  return values;
}

// ... and in the int8 path (eq. 5.2).
std::array<float, 256> dequantized_bin_values(const QuantGrid& g) {
  std::array<float, 256> values{};
  for (int b = 0; b < 256; ++b) values[static_cast<size_t>(b)] = dequantize_value(b, g.scale, g.zero_point);
  return values;
}

}  // namespace

std::vector<uint8_t> SeedExperiment::block_bins(const BlockGraphs& graphs, int64_t row,
                                                run::RunWorkspace& workspace) const {
  std::array<float, kSeedWidth> ramp{};
  for (int64_t w = 0; w < kSeedWidth; ++w) ramp[static_cast<size_t>(w)] = input_at({0, 0, 0, w});
  const int64_t rows = std::min(kRowsPerBlock, input_shape_.h - row);
  const model::Graph& g = rows < std::min(kRowsPerBlock, input_shape_.h) ? graphs.tail : graphs.block;
  try {
    const run::RunResult& r =
        run::run_graph(g, input_block(rows, ramp), {.profile = &profile_, .fake_quant_bins = true}, workspace);
    return r.values[static_cast<size_t>(g.output)].bins;
  } catch (const run::OpRefused& e) {
    // The seed has one op per kind: the engine's reason is the whole story (and the options
    // that led to it are the user's to change).
    throw std::invalid_argument(e.reason());
  }
}

SeedExperiment::BlockGraphs SeedExperiment::qat_graphs(const PathGrids& g) const {
  BlockGraphs out{pin_fake_quant_grids(qat_.block, g), {}};
  if (!qat_.tail.nodes.empty()) out.tail = pin_fake_quant_grids(qat_.tail, g);
  return out;
}

SeedExperiment::BlockGraphs SeedExperiment::int8_graphs(const PathGrids& g) const {
  const model::ConstantTensor w = weight_tensor(weight_);
  BlockGraphs out{set_int8_grids(int8_.block, g, w), {}};
  if (!int8_.tail.nodes.empty()) out.tail = set_int8_grids(int8_.tail, g, w);
  return out;
}

PathRun SeedExperiment::run_fake_quant(const PathGrids& g) const {
  PathRun run;
  run.bins.resize(static_cast<size_t>(input_shape_.numel()));
  run.value_of_bin = fake_quant_bin_values(g.output);
  const BlockGraphs graphs = qat_graphs(g);
  run::RunWorkspace workspace;
  for (int64_t row = 0; row < input_shape_.h; row += kRowsPerBlock) {
    scatter_block(block_bins(graphs, row, workspace), input_shape_, row, std::min(kRowsPerBlock, input_shape_.h - row), run.bins);
  }
  return run;
}

std::vector<int8_t> SeedExperiment::quantize_weight(const PathGrids& g) const {
  // quantize_per_tensor / quantize_per_channel(w, scale, zp, qint8) (eq. 5.1: a per-channel
  // scale is a double holding a float32 value), clamped to the module's range.
  return model::quantize_weight(weight_tensor(weight_), !g.weight_channels.empty(), point_grids(g)[1], {}).data;
}

PathGrids PathResult::grids() const {
  PathGrids g{input.used.grid, weight.used.grid, output.used.grid, {}};
  for (const UsedQParams& channel : weight.channels) g.weight_channels.push_back(channel.grid);
  return g;
}

namespace {

std::vector<float> weight_scales(const PathGrids& g) {
  if (g.weight_channels.empty()) return {g.weight.scale};
  std::vector<float> scales;
  for (const QuantGrid& c : g.weight_channels) scales.push_back(c.scale);
  return scales;
}

std::vector<int64_t> weight_zero_points(const PathGrids& g) {
  if (g.weight_channels.empty()) return {g.weight.zero_point};
  std::vector<int64_t> zps;
  for (const QuantGrid& c : g.weight_channels) zps.push_back(c.zero_point);
  return zps;
}

QuantizedConv2dArgs int8_conv_args(const std::vector<uint8_t>& x_q, const Shape4& in_shape,
                                   const std::vector<int8_t>& w_q, const Shape4& w_shape,
                                   const std::vector<float>& bias, const PathGrids& g) {
  return {.input = x_q,
          .input_shape = in_shape,
          .input_scale = g.input.scale,
          .input_zero_point = g.input.zero_point,
          .weight = w_q,
          .weight_shape = w_shape,
          .weight_scales = weight_scales(g),
          .weight_zero_points = weight_zero_points(g),
          .weight_per_channel = !g.weight_channels.empty(),
          .bias = bias,
          .output_scale = g.output.scale,
          .output_zero_point = g.output.zero_point,
          .relu = true};
}

}  // namespace

PathRun SeedExperiment::run_int8(const PathGrids& g) const {
  PathRun run;
  run.bins.resize(static_cast<size_t>(input_shape_.numel()));
  run.value_of_bin = dequantized_bin_values(g.output);
  const BlockGraphs graphs = int8_graphs(g);
  run::RunWorkspace workspace;
  for (int64_t row = 0; row < input_shape_.h; row += kRowsPerBlock) {
    scatter_block(block_bins(graphs, row, workspace), input_shape_, row, std::min(kRowsPerBlock, input_shape_.h - row), run.bins);
  }
  return run;
}

MismatchCounts SeedExperiment::count_path_mismatches() const {
  // Both paths block by block, without keeping the outputs.
  const PathGrids fq = derive_fake_quant_points().grids();
  const PathGrids q8 = derive_int8_points().grids();
  const std::array<float, 256> fq_values = fake_quant_bin_values(fq.output);
  const std::array<float, 256> q8_values = dequantized_bin_values(q8.output);
  const BlockGraphs fq_graphs = qat_graphs(fq);
  const BlockGraphs q8_graphs = int8_graphs(q8);
  MismatchCounts total;
  run::RunWorkspace fq_workspace, q8_workspace;
  for (int64_t row = 0; row < input_shape_.h; row += kRowsPerBlock) {
    const MismatchCounts c = count_mismatches({block_bins(fq_graphs, row, fq_workspace), &fq_values},
                                              {block_bins(q8_graphs, row, q8_workspace), &q8_values});
    total.bins += c.bins;
    total.floats += c.floats;
  }
  return total;
}

SeedExperiment::TraceWeights SeedExperiment::trace_weights(const PathGrids& g) const {
  TraceWeights w{g, {}, {}, quantize_weight(g)};
  for (size_t i = 0; i < weight_.size(); ++i) {
    w.fake_quant.push_back(fake_quant_trace(weight_[i], g.weight_of(static_cast<int64_t>(i) / kSeedChannels)));
    w.fake_quantized.push_back(w.fake_quant.back().value);
  }
  return w;
}

ElementTrace SeedExperiment::trace_fake_quant(const PathGrids& g, const ElementIndex& e) const {
  return trace_fake_quant(trace_weights(g), e);
}

ElementTrace SeedExperiment::trace_int8(const PathGrids& g, const ElementIndex& e) const {
  return trace_int8(trace_weights(g), e);
}

ElementTrace SeedExperiment::trace_fake_quant(const TraceWeights& tw, const ElementIndex& e) const {
  // The QAT graph's ops at one element, each by its own trace: the input and weight fake-quants
  // of every tap, the conv's tap walk (a 1x1 conv reads only the input column at (h, w)), the
  // ReLU and the output fake-quant.
  const PathGrids& g = tw.grids;
  std::array<FakeQuantTrace, kSeedChannels> inputs;
  std::array<float, kSeedChannels> column{};
  for (int64_t c = 0; c < kSeedChannels; ++c) {
    inputs[static_cast<size_t>(c)] = fake_quant_trace(input_at({e.n, c, e.h, e.w}), g.input);
    column[static_cast<size_t>(c)] = inputs[static_cast<size_t>(c)].value;
  }
  const std::vector<FakeQuantTrace>& weights = tw.fake_quant;
  const std::vector<float>& w_fq = tw.fake_quantized;
  const FloatConv2dTrace conv = conv2d_float_trace(
      {.input = column, .input_shape = {1, kSeedChannels, 1, 1}, .weight = w_fq, .weight_shape = weight_shape_,
       .bias = bias_},
      0, e.c, 0, 0);
  ElementTrace t;
  for (const FloatConvTap& tap : conv.taps) {
    const FakeQuantTrace& x = inputs[static_cast<size_t>(tap.input_index)];
    const FakeQuantTrace& w = weights[static_cast<size_t>(tap.weight_index)];
    t.taps.push_back({.channel = tap.input_index, .input = x.input, .input_bin = x.bin,
                      .input_dequantized = tap.input, .weight = w.input, .weight_bin = w.bin,
                      .weight_dequantized = tap.weight});
  }
  t.bias = bias_[static_cast<size_t>(e.c)];
  t.accumulator = static_cast<double>(conv.with_bias);
  t.accumulator_real = conv.with_bias;
  float relu = 0.0f;
  relu_span(std::span<const float>(&conv.with_bias, 1), std::span<float>(&relu, 1));
  const FakeQuantTrace out = fake_quant_trace(relu, g.output);
  t.multiplier = out.inv_scale;
  t.pre_rounding = out.pre_rounding;
  t.rounded = static_cast<int64_t>(out.rounded);
  t.zero_point = g.output.zero_point;
  t.unclamped = out.unclamped;
  t.output_bin = out.bin;
  t.output_dequantized = out.value;
  return t;
}

ElementTrace SeedExperiment::trace_int8(const TraceWeights& tw, const ElementIndex& e) const {
  ElementTrace t;
  const PathGrids& g = tw.grids;
  const std::vector<int8_t>& w_q = tw.quantized;
  const QuantGrid in_grid{g.input.scale, g.input.zero_point, storage_range(QDType::kQUInt8)};
  // The accumulator of one element: run the conv on that element's input column only.
  std::vector<uint8_t> column(static_cast<size_t>(kSeedChannels));
  for (int64_t c = 0; c < kSeedChannels; ++c) {
    ElementTrace::Tap tap;
    tap.channel = c;
    tap.input = input_at({e.n, c, e.h, e.w});
    tap.input_bin = quantize_value(tap.input, in_grid);
    tap.input_dequantized = dequantize_value(tap.input_bin, in_grid.scale, in_grid.zero_point);
    tap.weight = weight_[static_cast<size_t>(e.c * kSeedChannels + c)];
    tap.weight_bin = w_q[static_cast<size_t>(e.c * kSeedChannels + c)];
    const QuantGrid& wg = g.weight_of(e.c);
    tap.weight_dequantized = g.weight_channels.empty()
                                 ? dequantize_value(tap.weight_bin, wg.scale, wg.zero_point)
                                 : dequantize_value_per_channel(tap.weight_bin, wg.scale, wg.zero_point);
    column[static_cast<size_t>(c)] = static_cast<uint8_t>(tap.input_bin);
    t.taps.push_back(tap);
  }
  const Shape4 column_shape{1, kSeedChannels, 1, 1};
  const QuantizedConv2dArgs args =
      int8_conv_args(column, column_shape, w_q, weight_shape_, bias_, g);
  const int32_t acc =
      conv2d_accumulators(args, conv2d_accumulation(profile_, args))[static_cast<size_t>(e.c)];
  t.accumulator_exact =
      conv2d_accumulators(args, AccumulationModel::kExactInt32)[static_cast<size_t>(e.c)];
  const RequantChannel channel = conv2d_requant_channels(profile_, args)[static_cast<size_t>(e.c)];
  RequantTrace r;
  const uint8_t bin = requantize(acc, channel, &r);
  t.accumulator = acc;
  t.accumulator_real = static_cast<float>(acc) * channel.accumulator_scale;
  t.bias = channel.scheme == RequantScheme::kQnnpackFp32 ? static_cast<float>(channel.int_bias)
                                                         : channel.float_bias;
  t.multiplier = channel.multiplier;
  t.pre_rounding = r.pre_rounding;
  t.zero_point_added_before_rounding = channel.scheme == RequantScheme::kOnednnReciprocalFp32;
  t.rounded = r.rounded;
  t.zero_point = g.output.zero_point;
  t.unclamped = r.unclamped;
  t.output_bin = bin;
  t.output_dequantized = dequantize_value(bin, g.output.scale, g.output.zero_point);
  return t;
}

SeedResult run_experiment(const SeedExperiment& experiment, PathConcurrency concurrency) {
  SeedResult r;
  r.options = experiment.options();
  r.profile = experiment.profile();
  r.output_shape = experiment.output_shape();
  r.fake_quant = experiment.derive_fake_quant_points();
  r.int8 = experiment.derive_int8_points();
  if (concurrency == PathConcurrency::kOneThread) {
    r.fake_quant.run = experiment.run_fake_quant(r.fake_quant.grids());
    r.int8.run = experiment.run_int8(r.int8.grids());
    r.compare = compare_paths(r.output_shape, r.fake_quant.run.outputs(), r.int8.run.outputs());
    return r;
  }
  // The paths are independent: the fake-quant one runs on a second core.
  std::thread fake_quant_thread(
      [&] { r.fake_quant.run = experiment.run_fake_quant(r.fake_quant.grids()); });
  try {
    r.int8.run = experiment.run_int8(r.int8.grids());
  } catch (...) {
    fake_quant_thread.join();
    throw;
  }
  fake_quant_thread.join();
  r.compare = compare_paths(r.output_shape, r.fake_quant.run.outputs(), r.int8.run.outputs());
  return r;
}

SeedResult run_seed(const SeedOptions& options, const CpuFeatures& cpu,
                    PathConcurrency concurrency) {
  return run_experiment(SeedExperiment(options, cpu), concurrency);
}

}  // namespace qparity
