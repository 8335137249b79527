#include "qparity/scenario/seed.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "qparity/numerics/fake_quant.h"
#include "qparity/numerics/float32.h"
#include "qparity/numerics/quantize.h"

namespace qparity {
namespace {

// The seed's qconfig: quint8 [0,255] per-tensor affine activations.
FakeQuantModule activation_module(ObserverKind kind) {
  FakeQuantModule m;
  m.kind = kind == ObserverKind::kFused ? FakeQuantModuleKind::kFusedMovingAvgObsFakeQuantize
                                        : FakeQuantModuleKind::kFakeQuantize;
  m.spec = {.dtype = QDType::kQUInt8, .qscheme = QScheme::kPerTensorAffine, .quant_min = 0,
            .quant_max = 255};
  return m;
}

// ... and qint8 [-128,127] per-tensor symmetric weights.
FakeQuantModule weight_module(ObserverKind kind) {
  FakeQuantModule m = activation_module(kind);
  m.spec = {.dtype = QDType::kQInt8, .qscheme = QScheme::kPerTensorSymmetric, .quant_min = -128,
            .quant_max = 127};
  return m;
}

// The seed's set_qconfig_params after disable_observer: hand-set scales and min/max.
struct SeedModules {
  FakeQuantModule input, weight, output;
};

SeedModules prepare_seed_modules(const SeedOptions& o) {
  SeedModules s{activation_module(o.observer), weight_module(o.observer),
                activation_module(o.observer)};
  for (FakeQuantModule* m : {&s.input, &s.weight, &s.output}) m->observer_enabled = false;
  const float kf = to_f32(o.k);
  hand_set_scale(s.weight, 2.0 * o.k / 255.0);  // "symmetric, hence multiply by 2"
  s.weight.min_val = 0.0f;
  s.weight.max_val = kf;
  hand_set_scale(s.output, o.k / 255.0);
  s.output.min_val = 0.0f;
  s.output.max_val = kf;
  hand_set_scale(s.input, 1.0 / 255.0);
  s.input.min_val = 0.0f;
  s.input.max_val = 1.0f;
  return s;
}

// arange(0,256).repeat(1,3,rows,1) / 255.0: float32 true division of exact integers.
std::vector<float> seed_input(const Shape4& shape) {
  std::vector<float> x(static_cast<size_t>(shape.numel()));
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(i % static_cast<size_t>(kSeedWidth)) / 255.0f;
  }
  return x;
}

// k * torch.eye(3).reshape(3,3,1,1): float32 multiply by the scalar cast to float.
std::vector<float> seed_weight(double k) {
  std::vector<float> w(static_cast<size_t>(kSeedChannels * kSeedChannels), 0.0f);
  const float kf = to_f32(k);
  for (int64_t m = 0; m < kSeedChannels; ++m) {
    for (int64_t c = 0; c < kSeedChannels; ++c) {
      w[static_cast<size_t>(m * kSeedChannels + c)] = kf * (m == c ? 1.0f : 0.0f);
    }
  }
  return w;
}

QuantPoint make_point(std::string name, const FakeQuantModule& m, UsedQParams used) {
  return {std::move(name), m.spec.dtype, m.spec.qscheme, std::move(used)};
}

PathResult run_fake_quant_path(SeedModules& mods, const BackendProfile& profile,
                               const std::vector<float>& x, const std::vector<float>& w,
                               const Shape4& in_shape, const Shape4& w_shape) {
  PathResult p;
  p.name = "fake_quant";
  const QParamRule rule = profile.fused_fake_quant_rule;
  // Module call order of the QAT forward: quant stub, conv weight, conv output.
  p.input = make_point("input", mods.input, fake_quant_forward(mods.input, rule));
  std::vector<float> x_fq(x.size());
  for (size_t i = 0; i < x.size(); ++i) x_fq[i] = fake_quantize_value(x[i], p.input.used.grid);

  p.weight = make_point("weight", mods.weight, fake_quant_forward(mods.weight, rule));
  std::vector<float> w_fq(w.size());
  for (size_t i = 0; i < w.size(); ++i) w_fq[i] = fake_quantize_value(w[i], p.weight.used.grid);

  const std::vector<float> bias(static_cast<size_t>(kSeedChannels), 0.0f);
  const std::vector<float> y = conv2d_float({.input = x_fq, .input_shape = in_shape, .weight = w_fq,
                                             .weight_shape = w_shape, .bias = bias, .relu = true});

  p.output = make_point("output", mods.output, fake_quant_forward(mods.output, rule));
  const QuantGrid& out = p.output.used.grid;
  p.values.resize(y.size());
  p.bins.resize(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    p.values[i] = fake_quantize_value(y[i], out);
    p.bins[i] = static_cast<uint8_t>(fake_quant_bin(y[i], out));
  }
  return p;
}

PathResult run_int8_path(SeedModules& mods, const BackendProfile& profile,
                         const std::vector<float>& x, const std::vector<float>& w,
                         const Shape4& in_shape, const Shape4& w_shape) {
  PathResult p;
  p.name = "int8";
  // convert(): the weight fake-quant runs once more (observer off: no state change for
  // FakeQuantize; the fused module recomputes the same buffers), then calculate_qparams().
  fake_quant_forward(mods.weight, profile.fused_fake_quant_rule);
  p.input = make_point("input", mods.input, convert_qparams(mods.input));
  p.weight = make_point("weight", mods.weight, convert_qparams(mods.weight));
  p.output = make_point("output", mods.output, convert_qparams(mods.output));

  // quantize_per_tensor(w, scale, zp, qint8), then _clamp_weights to the module's range.
  QuantGrid w_grid = p.weight.used.grid;
  std::vector<int8_t> w_q(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const QuantGrid storage{w_grid.scale, w_grid.zero_point, storage_range(QDType::kQInt8)};
    const int64_t q = quantize_value(w[i], storage);
    w_q[i] = static_cast<int8_t>(std::clamp(q, w_grid.range.min, w_grid.range.max));
  }
  // Quantize (the converted QuantStub): quantize_per_tensor(x, scale, zp, quint8).
  const QuantGrid in_grid{p.input.used.grid.scale, p.input.used.grid.zero_point,
                          storage_range(QDType::kQUInt8)};
  std::vector<uint8_t> x_q(x.size());
  for (size_t i = 0; i < x.size(); ++i) x_q[i] = static_cast<uint8_t>(quantize_value(x[i], in_grid));

  const std::vector<float> bias(static_cast<size_t>(kSeedChannels), 0.0f);
  const QuantGrid& out = p.output.used.grid;
  p.bins = conv2d_quantized(profile, {.input = x_q,
                                      .input_shape = in_shape,
                                      .input_scale = in_grid.scale,
                                      .input_zero_point = in_grid.zero_point,
                                      .weight = w_q,
                                      .weight_shape = w_shape,
                                      .weight_scales = {w_grid.scale},
                                      .weight_zero_points = {w_grid.zero_point},
                                      .bias = bias,
                                      .output_scale = out.scale,
                                      .output_zero_point = out.zero_point,
                                      .relu = true});
  p.values.resize(p.bins.size());
  for (size_t i = 0; i < p.bins.size(); ++i) {
    p.values[i] = dequantize_value(p.bins[i], out.scale, out.zero_point);
  }
  return p;
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

int64_t seed_bytes_per_row() {
  // Per element: input float + fake-quant input, quint8 input, two float outputs, two bin
  // outputs, the float conv output and the int32 accumulators.
  constexpr int64_t kBytesPerElement = 4 + 4 + 1 + 4 + 4 + 1 + 1 + 4 + 4;
  return kSeedChannels * kSeedWidth * kBytesPerElement;
}

void validate_seed_options(const SeedOptions& o) {
  if (!std::isfinite(o.k) || !(o.k > 0.0)) {
    throw std::invalid_argument("--k must be a finite number > 0");
  }
  const float kf = to_f32(o.k);
  if (!std::isfinite(kf) || kf == 0.0f || !std::isfinite(to_f32(2.0 * o.k / 255.0)) ||
      !std::isnormal(to_f32(o.k / 255.0))) {
    throw std::invalid_argument("--k is outside the float32 range the experiment needs");
  }
  if (o.rows <= 0) throw std::invalid_argument("--rows must be a positive integer");
}

SeedResult run_seed(const SeedOptions& o, const CpuFeatures& cpu) {
  validate_seed_options(o);
  auto profile = make_backend_profile(o.backend, cpu);
  if (!profile) throw std::invalid_argument("unknown backend '" + o.backend + "'");
  const Shape4 in_shape{1, kSeedChannels, o.rows, kSeedWidth};
  const Shape4 w_shape{kSeedChannels, kSeedChannels, 1, 1};
  const std::vector<float> x = seed_input(in_shape);
  const std::vector<float> w = seed_weight(o.k);

  SeedModules mods = prepare_seed_modules(o);
  SeedResult r;
  r.options = o;
  r.output_shape = in_shape;
  r.fake_quant = run_fake_quant_path(mods, *profile, x, w, in_shape, w_shape);
  r.int8 = run_int8_path(mods, *profile, x, w, in_shape, w_shape);
  r.compare = compare_paths(in_shape, {r.fake_quant.values, r.fake_quant.bins},
                            {r.int8.values, r.int8.bins});
  r.profile = std::move(*profile);
  return r;
}

}  // namespace qparity
