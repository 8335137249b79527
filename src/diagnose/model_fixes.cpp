#include "diagnose/model_fixes.h"

#include <algorithm>
#include <string>

#include "qparity/numerics/fake_quant_module.h"

namespace qparity::diagnose::detail {
namespace {

bool any_of_class(const std::vector<ModelFinding>& findings,
                  std::initializer_list<CauseClass> classes) {
  return std::any_of(findings.begin(), findings.end(), [&](const ModelFinding& f) {
    return std::find(classes.begin(), classes.end(), f.cause) != classes.end();
  });
}

bool is_weight_point(const model::FakeQuantPoint& p) {
  const std::string suffix = ".weight_fake_quant";
  return p.module.size() > suffix.size() &&
         p.module.compare(p.module.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A candidate: the QAT graph with the change applied (the int8 graph stays as convert() made it).
struct Candidate {
  std::string change, python, because;
  model::Graph qat;
};

std::string qscheme_text(QScheme s) {
  switch (s) {
    case QScheme::kPerTensorAffine:
      return "torch.per_tensor_affine";
    case QScheme::kPerTensorSymmetric:
      return "torch.per_tensor_symmetric";
    case QScheme::kPerChannelAffine:
      return "torch.per_channel_affine";
    case QScheme::kPerChannelSymmetric:
      return "torch.per_channel_symmetric";
  }
  return "?";
}

// The fused weight fake-quant derives its grid with ChooseQuantizationParams, convert() with the
// observer's calculate_qparams (eq. 3.1-3.3): a plain FakeQuantize takes its grid from the
// observer, so both paths use one grid. Applied as prepare_qat would: every fused weight
// fake-quant becomes a FakeQuantize whose buffers hold calculate_qparams of the same range.
std::optional<Candidate> plain_weight_fake_quant(const model::Graph& qat,
                                                 const std::string& engine) {
  Candidate c;
  c.qat = qat;
  const model::FakeQuantPoint* first = nullptr;
  for (auto& p : c.qat.fake_quants) {
    if (!is_weight_point(p) || p.kind != FakeQuantModuleKind::kFusedMovingAvgObsFakeQuantize)
      continue;
    if (first == nullptr) first = &p;
    p.kind = FakeQuantModuleKind::kFakeQuantize;
    for (size_t ch = 0; ch < p.min_val.size() && ch < p.scale.size() && ch < p.zero_point.size();
         ++ch) {
      const UsedQParams q = observer_calculate_qparams(p.min_val[ch], p.max_val[ch], p.spec);
      p.scale[ch] = q.grid.scale;
      p.zero_point[ch] = q.grid.zero_point;
    }
  }
  if (first == nullptr) return std::nullopt;
  const QuantSpec& s = first->spec;
  const std::string observer =
      first->per_channel ? "MovingAveragePerChannelMinMaxObserver" : "MovingAverageMinMaxObserver";
  c.change =
      "weights: a plain FakeQuantize instead of the fused FusedMovingAvgObsFakeQuantize, so QAT "
      "takes the "
      "weight grid from the observer's calculate_qparams, the rule convert() uses";
  c.python =
      "from torch.ao.quantization import QConfig, FakeQuantize, " + observer + "\n" +
      "default = torch.ao.quantization.get_default_qat_qconfig(\"" + engine + "\")\n" +
      "model.qconfig = QConfig(activation=default.activation,\n" +
      "                        weight=FakeQuantize.with_args(observer=" + observer +
      ", quant_min=" + std::to_string(s.quant_min) + ", quant_max=" + std::to_string(s.quant_max) +
      ",\n                                                      dtype=torch.qint8, qscheme=" +
      qscheme_text(s.qscheme) + "))\n# then prepare_qat, train and convert as before";
  c.because = "weight_grid / asymmetric_same_sign_channel findings";
  return c;
}

// Observers left enabled after eval() keep moving the QAT grids in every forward, away from the
// grids convert() took: disable them (as torch.ao.quantization.disable_observer does) before the
// forwards whose outputs are compared, and before convert().
std::optional<Candidate> disable_observers(const model::Graph& qat) {
  Candidate c;
  c.qat = qat;
  bool any = false;
  for (auto& p : c.qat.fake_quants) {
    any = any || p.observer_enabled;
    p.observer_enabled = false;
  }
  if (!any) return std::nullopt;
  c.change =
      "disable the observers after training (they are still enabled, so every forward moves the "
      "QAT grids "
      "away from the ones convert() takes)";
  c.python =
      "model.apply(torch.ao.quantization.disable_observer)\n"
      "# before evaluating the QAT model and before convert()";
  c.because = "observer_moved findings";
  return c;
}

}  // namespace

std::vector<ModelFix> verified_fixes(const ModelPaths& paths,
                                     const diff::ModelComparison& comparison,
                                     const std::vector<ModelFinding>& findings,
                                     const ModelDiagnosisOptions& options) {
  std::vector<ModelFix> fixes;
  if (options.qat_options == nullptr) return fixes;
  std::vector<Candidate> candidates;
  if (any_of_class(findings, {CauseClass::kWeightGrid, CauseClass::kAsymmetricSameSignChannel})) {
    if (auto c = plain_weight_fake_quant(paths.qat, options.profile->name))
      candidates.push_back(std::move(*c));
  }
  if (any_of_class(findings, {CauseClass::kObserverMoved})) {
    if (auto c = disable_observers(paths.qat)) candidates.push_back(std::move(*c));
  }
  const run::Tensor& int8_out = paths.int8_run.values[static_cast<size_t>(paths.int8.output)];
  const Divergence before = divergence_of(
      comparison, paths.qat_run.values[static_cast<size_t>(paths.qat.output)], int8_out);
  for (auto& c : candidates) {
    const run::RunResult qat_run = run::run_graph(
        c.qat, paths.qat_run.values[static_cast<size_t>(paths.qat.input)], *options.qat_options);
    const diff::ModelComparison after_comparison =
        diff::compare_paths(c.qat, qat_run, paths.int8, paths.int8_run);
    ModelFix fix{c.change,
                 c.python,
                 c.because,
                 false,
                 before,
                 divergence_of(after_comparison, qat_run.values[static_cast<size_t>(c.qat.output)],
                               int8_out)};
    fix.verified = fix.after.bins_differing < fix.before.bins_differing;
    if (fix.verified) fixes.push_back(std::move(fix));
  }
  return fixes;
}

}  // namespace qparity::diagnose::detail
