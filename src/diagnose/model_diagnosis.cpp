#include "qparity/diagnose/model_diagnosis.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "common/format.h"
#include "diagnose/model_fixes.h"
#include "diagnose/model_rerun.h"
#include "qparity/model/convert.h"
#include "qparity/ops/conv2d.h"

namespace qparity::diagnose {
namespace {

using detail::Mismatches;
using model::OpKind;
using qparity::detail::g9;

std::string count_text(int64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

int64_t total_of(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (const int64_t x : v) s += x;
  return s;
}

bool is_weighted(OpKind op) { return op == OpKind::kQConv2d || op == OpKind::kQLinear; }

// The grid an int8 op's output is put on by the op itself (nullptr: it keeps its input's).
model::OutputGrid* own_output_grid(model::Node& node) {
  if (auto* p = std::get_if<model::QConvParams>(&node.params)) return &p->output;
  if (auto* p = std::get_if<model::QBinaryParams>(&node.params)) return &p->output;
  if (auto* p = std::get_if<model::QCatParams>(&node.params)) return &p->output;
  if (auto* p = std::get_if<model::QuantizeParams>(&node.params)) return &p->output;
  return nullptr;
}

// The fake-quant path's weight of a QAT conv / linear layer: the float tensor its weight
// fake-quant was fed (for ConvBn, the BN-scaled weight of QAT's forward) and the grids it used.
struct QatWeight {
  const model::FakeQuantPoint* point = nullptr;
  bool moved = false;  // its observer moved the range during the forward
  std::vector<UsedQParams> used;
  model::ConstantTensor value;
};

std::optional<QatWeight> qat_weight(const ModelPaths& p, const model::Layer& layer) {
  for (const size_t i : layer.nodes) {
    const model::Node& op = p.qat.nodes[i];
    if ((op.op != OpKind::kConv2d && op.op != OpKind::kLinear) || op.inputs.size() < 2) continue;
    for (const auto& use : p.qat_run.fake_quant_uses) {
      const model::Node& fq = p.qat.nodes[use.node];
      if (fq.output != op.inputs[1] || !use.fake_quant_enabled) continue;
      QatWeight w;
      w.point = &p.qat.fake_quants[static_cast<size_t>(use.point)];
      w.used = use.channels;
      w.moved = use.observer_moved;
      const auto in = static_cast<size_t>(fq.inputs.at(0));
      const model::ValueInfo& info = p.qat.values[in];
      if (info.constant) {
        w.value = *info.constant;
      } else {
        w.value = {info.dims, p.qat_run.values[in].values};
      }
      return w;
    }
  }
  return std::nullopt;
}

std::vector<QuantGrid> grids_of(const std::vector<UsedQParams>& used) {
  std::vector<QuantGrid> grids;
  for (const auto& u : used) grids.push_back(u.grid);
  return grids;
}

std::string rule_text(const std::optional<QParamDerivation>& d, const std::string& otherwise) {
  return d ? std::string(to_string(d->rule)) : otherwise;
}

bool same_sign(const std::vector<float>& w, size_t begin, size_t end) {
  const bool nonneg =
      std::all_of(w.begin() + static_cast<std::ptrdiff_t>(begin),
                  w.begin() + static_cast<std::ptrdiff_t>(end), [](float v) { return v >= 0.0f; });
  const bool nonpos =
      std::all_of(w.begin() + static_cast<std::ptrdiff_t>(begin),
                  w.begin() + static_cast<std::ptrdiff_t>(end), [](float v) { return v <= 0.0f; });
  return nonneg || nonpos;
}

// Elements that differ (floats by their bits), over the shorter of the two.
template <typename T>
int64_t differing(const std::vector<T>& a, const std::vector<T>& b) {
  int64_t n = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if constexpr (std::is_same_v<T, float>) {
      n += std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i]);
    } else {
      n += a[i] != b[i];
    }
  }
  return n;
}

// The profile the swaps run under: a swapped-in QAT weight grid may have a zero point the
// engine's prepack refuses (onednn: 0 only); the kernel's arithmetic with it is still defined,
// and that is what the swap measures.
BackendProfile what_if(BackendProfile p) {
  p.requires_zero_weight_zero_point = false;
  return p;
}

// One int8 layer re-run locally on the fake-quant path's input, then again after each swap of a
// quantization point from the int8 path to the fake-quant path's (in model order: weight,
// accumulator, output grid, output range). Each swap's finding explains the mismatches it puts
// right; what no swap puts right is the ops' own arithmetic.
class LayerStudy {
 public:
  LayerStudy(const ModelPaths& paths, const ModelDiagnosisOptions& options,
             const diff::LayerComparison& like, const model::Layer& layer,
             const model::Layer* qat_layer, run::RunResult fed)
      : paths_(paths),
        options_(options),
        like_(like),
        layer_(layer),
        qat_layer_(qat_layer),
        fed_(std::move(fed)),
        graph_(detail::layer_graph(paths.int8, layer)),
        profile_(what_if(*options.profile)),
        fake_quant_(paths.qat_run.values[static_cast<size_t>(like.fake_quant_value)]) {}

  // The local error: the layer as it is, on the fake-quant path's input; `dq` gets each
  // element's Δq.
  Mismatches local(std::vector<int32_t>& dq) {
    current_ = measure(&dq);
    return current_;
  }

  std::vector<ModelFinding> explain() {
    if (current_.total > 0) swap_weight();
    if (current_.total > 0) swap_accumulation();
    if (current_.total > 0) swap_output_grid();
    if (current_.total > 0) swap_output_range();
    if (current_.total > 0) attribute_rest();
    return std::move(findings_);
  }

 private:
  model::Node* weighted_node() {
    for (auto it = layer_.nodes.rbegin(); it != layer_.nodes.rend(); ++it) {
      if (is_weighted(graph_.nodes[*it].op)) return &graph_.nodes[*it];
    }
    return nullptr;
  }

  Mismatches measure(std::vector<int32_t>* dq_out = nullptr) {
    const run::RunOptions options{.profile = &profile_,
                                  .framework_threads = options_.framework_threads,
                                  .quantized_kernels = options_.int8_kernels};
    run::Tensor out = run::rerun_nodes(graph_, fed_, layer_.nodes, options);
    if (requantize_to_) {
      for (auto& b : out.bins) {
        b = static_cast<uint8_t>(
            quantize_value(dequantize_value(b, static_cast<float>(out.scale), out.zero_point),
                           {requantize_to_->scale, requantize_to_->zero_point, {0, 255}}));
      }
      out.scale = requantize_to_->scale;
      out.zero_point = requantize_to_->zero_point;
    }
    if (clamp_to_) {
      for (auto& b : out.bins)
        b = static_cast<uint8_t>(std::clamp<int64_t>(b, clamp_to_->min, clamp_to_->max));
    }
    std::vector<int32_t> dq = diff::layer_dq(like_, fake_quant_, out);
    Mismatches m = detail::count_mismatches(dq, like_.dims);
    if (dq_out != nullptr) *dq_out = std::move(dq);
    return m;
  }

  // Re-measures after a swap; returns the mismatches put right per channel (>= 0 each).
  std::vector<int64_t> remeasure() {
    const Mismatches before = current_;
    current_ = measure();
    std::vector<int64_t> gained(before.per_channel.size(), 0);
    for (size_t c = 0; c < gained.size(); ++c)
      gained[c] = before.per_channel[c] - current_.per_channel[c];
    return gained;
  }

  void add(CauseClass cause, const std::string& point, int64_t explains,
           std::vector<std::string> evidence) {
    if (explains <= 0) return;
    findings_.push_back({cause, layer_.name, point, explains, std::move(evidence)});
  }

  // The sum of v over the entries `take` marks.
  static int64_t sum_where(const std::vector<int64_t>& v, const std::vector<bool>& take) {
    int64_t s = 0;
    for (size_t c = 0; c < v.size() && c < take.size(); ++c) s += take[c] ? v[c] : 0;
    return s;
  }

  void swap_weight() {
    model::Node* node = weighted_node();
    if (node == nullptr || qat_layer_ == nullptr) return;
    const auto qat = qat_weight(paths_, *qat_layer_);
    auto& params = std::get<model::QConvParams>(node->params);
    if (!qat || qat->value.dims != params.weight.dims) return;
    weight_moved_ = qat->moved;
    const model::QuantizedWeight int8_weight = params.weight;
    const std::vector<QuantGrid> grids = grids_of(qat->used);
    const bool per_channel = qat->point->per_channel;
    if (per_channel != int8_weight.per_channel || grids.size() != int8_weight.scales.size()) return;
    const auto convert = model::convert_float(paths_.qat, layer_.name);
    const bool convert_known = convert && convert->weight.dims == int8_weight.dims;
    // 1. The grid: convert()'s own float weight quantized on the QAT path's grids.
    std::vector<bool> differs(grids.size(), false);
    for (size_t c = 0; c < grids.size(); ++c) {
      differs[c] = static_cast<float>(int8_weight.scales[c]) != grids[c].scale ||
                   int8_weight.zero_points[c] != grids[c].zero_point;
    }
    const bool any_grid = std::find(differs.begin(), differs.end(), true) != differs.end();
    const model::QuantizedWeight qat_ints =
        model::quantize_weight(qat->value, per_channel, grids, int8_weight.bias);
    if (any_grid && convert_known) {
      params.weight = model::quantize_weight(convert->weight, per_channel, grids, int8_weight.bias);
      const std::vector<int64_t> gained = remeasure();
      report_grid(*qat, int8_weight, qat_ints, differs, gained, convert->weight);
    }
    // 2. The float weight itself (all of it when convert()'s is unknown).
    const bool values_differ =
        !convert_known || differing(convert->weight.data, qat->value.data) > 0;
    if (!values_differ) return;
    params.weight = qat_ints;
    const std::vector<int64_t> gained = remeasure();
    const int64_t explains = total_of(gained);
    if (!convert_known) {
      report_whole_weight(*qat, int8_weight, qat_ints, explains);
      return;
    }
    const bool bn =
        std::any_of(paths_.qat.convert_sources.begin(), paths_.qat.convert_sources.end(),
                    [&](const model::ConvertSource& s) { return s.module == layer_.name && s.bn; });
    const int64_t n = differing(convert->weight.data, qat->value.data);
    add(bn ? CauseClass::kBatchNormFolding : CauseClass::kWeightValues, "weight", explains,
        {count_text(n, "float weight") + " of " + std::to_string(qat->value.data.size()) +
             (bn ? " differ between QAT's ConvBn forward (weight scaled by gamma / "
                   "sqrt(running_var + eps) "
                   "before its fake-quant) and convert()'s folded weight (eq. O8.1)"
                 : " differ between the weight QAT fake-quantizes and the module weight convert() "
                   "quantizes"),
         count_text(differing(int8_weight.data, qat_ints.data), "integer weight") +
             " then differ"});
  }

  // How the int8 model's weight qparams were derived: recorded by convert() when qparity made
  // the int8 graph, else taken from qparity's convert() of the QAT graph when the caller found it
  // equal to the int8 model.
  const model::QParamsOrigin& int8_origin(const model::QuantizedWeight& w) const {
    if (!w.origin.derivations.empty() || options_.converted == nullptr) return w.origin;
    for (const model::Node& n : options_.converted->nodes) {
      if (n.layer != layer_.name || !is_weighted(n.op)) continue;
      const auto& p = std::get<model::QConvParams>(n.params);
      if (p.weight.scales == w.scales && p.weight.zero_points == w.zero_points)
        return p.weight.origin;
    }
    return w.origin;
  }

  std::string grid_pair(const QatWeight& qat, const model::QuantizedWeight& w, size_t c) const {
    const QuantGrid& g = qat.used[c].grid;
    const model::QParamsOrigin& origin = int8_origin(w);
    const auto s8 = static_cast<float>(w.scales[c]);
    std::string text =
        "QAT " + g9(g.scale) + " zp " + std::to_string(g.zero_point) + " (" +
        rule_text(qat.used[c].derivation, "its buffers") + "), int8 " + g9(s8) + " zp " +
        std::to_string(w.zero_points[c]) + " (" +
        rule_text(
            c < origin.derivations.size() ? std::optional(origin.derivations[c]) : std::nullopt,
            "as the int8 model stores it") +
        ")";
    if (g.scale != s8)
      text += ", " + std::to_string(std::abs(ulp_distance(g.scale, s8))) + " ulps apart";
    return text;
  }

  void report_grid(const QatWeight& qat, const model::QuantizedWeight& int8_weight,
                   const model::QuantizedWeight& qat_ints, const std::vector<bool>& differs,
                   const std::vector<int64_t>& gained,
                   const model::ConstantTensor& convert_weight) {
    const size_t channels = differs.size();
    const size_t inner = convert_weight.data.size() / channels;
    // Per-channel grids: a same-sign channel that QAT puts on an asymmetric grid is its own cause.
    std::vector<bool> asym(channels, false);
    if (qat.point->per_channel) {
      for (size_t c = 0; c < channels; ++c) {
        asym[c] = differs[c] && qat.used[c].grid.zero_point != int8_weight.zero_points[c] &&
                  same_sign(convert_weight.data, c * inner, (c + 1) * inner);
      }
    }
    // gained is per output channel of the layer's output, which is the weight's channel.
    const bool per_output = gained.size() == channels;
    const int64_t total = total_of(gained);
    const int64_t asym_gain = per_output ? sum_where(gained, asym) : 0;
    const auto count_of = [&](bool want_asym) {
      int64_t n = 0;
      for (size_t c = 0; c < channels; ++c) n += differs[c] && asym[c] == want_asym;
      return n;
    };
    const auto first_of = [&](bool want_asym) {
      for (size_t c = 0; c < channels; ++c) {
        if (differs[c] && asym[c] == want_asym) return c;
      }
      return channels;
    };
    const int64_t ints = differing(int8_weight.data, qat_ints.data);
    if (const size_t c = first_of(true); c < channels) {
      add(CauseClass::kAsymmetricSameSignChannel, "weight", asym_gain,
          {count_text(count_of(true), "weight channel") +
           " whose weights all have one sign get an asymmetric grid in "
           "QAT only (the fused fake-quant's rule moves the zero point off 0, eq. 2.1 not taken); "
           "first: channel " +
           std::to_string(c) + ": " + grid_pair(qat, int8_weight, c)});
    }
    if (const size_t c = first_of(false); c < channels) {
      add(weight_moved_ ? CauseClass::kObserverMoved : CauseClass::kWeightGrid, "weight",
          total - asym_gain,
          {(channels == 1
                ? std::string("the per-tensor weight grid differs between the two paths: ")
                : "the weight grid differs in " + std::to_string(count_of(false)) + " of " +
                      std::to_string(channels) + " channels; first: channel " + std::to_string(c) +
                      ": ") +
               grid_pair(qat, int8_weight, c),
           count_text(ints, "integer weight") + " of " + std::to_string(int8_weight.data.size()) +
               " differ (QAT's fake-quant bins against the int8 model's)"});
    }
  }

  void report_whole_weight(const QatWeight& qat, const model::QuantizedWeight& int8_weight,
                           const model::QuantizedWeight& qat_ints, int64_t explains) {
    std::vector<std::string> evidence{
        count_text(differing(int8_weight.data, qat_ints.data), "integer weight") + " of " +
        std::to_string(int8_weight.data.size()) +
        " differ (QAT's fake-quant bins against the int8 model's)"};
    for (size_t c = 0; c < qat.used.size(); ++c) {
      if (qat.used[c].grid.scale != static_cast<float>(int8_weight.scales[c]) ||
          qat.used[c].grid.zero_point != int8_weight.zero_points[c]) {
        evidence.push_back("first channel with another grid: " + std::to_string(c) + ": " +
                           grid_pair(qat, int8_weight, c));
        break;
      }
    }
    add(CauseClass::kWeightGrid, "weight", explains, std::move(evidence));
  }

  void swap_accumulation() {
    if (weighted_node() == nullptr) return;
    const bool can_saturate =
        (profile_.onednn_isa && *profile_.onednn_isa != OnednnIsa::kVnni) || profile_.fbgemm_isa;
    if (!can_saturate) return;
    profile_.accumulation_override = AccumulationModel::kExactInt32;
    const int64_t explains = total_of(remeasure());
    add(CauseClass::kAccumulatorSaturation, "accumulator", explains,
        {"the " + profile_.name + " kernel on this CPU class (" + isa_text() +
         ") sums u8*s8 products in pairs saturating to int16 (docs/numerics.md eq. 6.5-6.6c); with "
         "exact int32 "
         "sums " +
         count_text(explains, "more element") + " agree"});
  }

  std::string isa_text() const {
    if (profile_.onednn_isa) return std::string(to_string(*profile_.onednn_isa));
    if (profile_.fbgemm_isa) return std::string(to_string(*profile_.fbgemm_isa));
    return "?";
  }

  void swap_output_grid() {
    if (like_.same_grid || !like_.int8_quantized) return;
    const QuantGrid& qat = like_.fake_quant_grid;
    model::Node& last = graph_.nodes[layer_.nodes.back()];
    model::OutputGrid* own = own_output_grid(last);
    const std::string grids =
        "int8 scale " + g9(like_.int8_grid.scale) + " zp " +
        std::to_string(like_.int8_grid.zero_point) + ", QAT scale " + g9(qat.scale) + " zp " +
        std::to_string(qat.zero_point) +
        (qat.scale != like_.int8_grid.scale
             ? " (" + std::to_string(std::abs(ulp_distance(qat.scale, like_.int8_grid.scale))) +
                   " ulps apart)"
             : "");
    if (own != nullptr) {
      own->scale = static_cast<double>(qat.scale);
      own->zero_point = qat.zero_point;
    } else {
      requantize_to_ = qat;
    }
    const int64_t explains = total_of(remeasure());
    if (output_observer_moved()) {
      add(CauseClass::kObserverMoved, "output", explains,
          {"the output grids differ (" + grids +
           ") because QAT's output observer is still enabled and moved its "
           "range during this forward, after convert() had taken the grid; QAT's: " +
           like_.fake_quant_provenance});
    } else if (own != nullptr) {
      add(CauseClass::kActivationGrid, "output", explains,
          {"the output grids differ: " + grids + "; QAT's: " + like_.fake_quant_provenance});
    } else {
      add(CauseClass::kOutputGridNotObserved, "output", explains,
          {"the int8 op (" + like_.op + ") keeps its input's grid (" + grids +
           "), while QAT fake-quantizes its output with an observer of its own"});
    }
  }

  // Whether the layer's own output fake-quant moved its observer's range in the QAT run.
  bool output_observer_moved() const {
    if (qat_layer_ == nullptr || !like_.fake_quant_grid_is_own) return false;
    const size_t last = qat_layer_->nodes.back();
    for (const auto& use : paths_.qat_run.fake_quant_uses) {
      if (use.node == last) return use.observer_moved;
    }
    return false;
  }

  void swap_output_range() {
    const QRange r = like_.fake_quant_grid.range;
    if (!like_.int8_quantized || !like_.fake_quant_grid_is_own || (r.min <= 0 && r.max >= 255))
      return;
    clamp_to_ = r;
    const int64_t explains = total_of(remeasure());
    add(CauseClass::kReducedRangeClamp, "output", explains,
        {"QAT clamps this output to bins [" + std::to_string(r.min) + ", " + std::to_string(r.max) +
         "] (a reduce_range qconfig, meant for fbgemm / x86), the int8 " + profile_.name +
         " op to [0, 255]"});
  }

  void attribute_rest() {
    if (!like_.fake_quant_grid_is_own) {
      add(CauseClass::kUnquantizedOp, "op", current_.total,
          {"QAT does not fake-quantize this layer's output (" + like_.op +
           " computed in float); the int8 op rounds it onto its grid (scale " +
           g9(like_.int8_grid.scale) + ")"});
      return;
    }
    std::string how =
        "QAT computes in float and rounds once at its output fake-quant; the int8 op (" + like_.op +
        ")";
    if (weighted_node() != nullptr) {
      how += " sums exact int32 products and requantizes (" +
             std::string(to_string(profile_.requant)) + ")";
    } else {
      how += " rounds with its own integer or float arithmetic";
    }
    add(CauseClass::kIntegerArithmetic, "op", current_.total,
        {how + ": " + count_text(current_.total, "element") +
         " still differ with every grid swapped, max |dq| " + std::to_string(current_.max_abs_dq)});
  }

  const ModelPaths& paths_;
  const ModelDiagnosisOptions& options_;
  const diff::LayerComparison& like_;
  const model::Layer& layer_;
  const model::Layer* qat_layer_;
  run::RunResult fed_;
  model::Graph graph_;
  BackendProfile profile_;
  const run::Tensor& fake_quant_;
  std::optional<QuantGrid> requantize_to_;
  std::optional<QRange> clamp_to_;
  bool weight_moved_ = false;
  Mismatches current_;
  std::vector<ModelFinding> findings_;
};

// The int8 path re-run from `layer` on, with the layer's own error (its local Δq) taken out of
// its output bins: the final output without this layer's own error.
run::Tensor without_local_error(const ModelPaths& paths, const ModelDiagnosisOptions& options,
                                const diff::LayerComparison& like, const model::Layer& layer,
                                const std::vector<int32_t>& local_dq) {
  run::RunResult base = paths.int8_run;
  run::Tensor& out = base.values[static_cast<size_t>(like.int8_value)];
  for (size_t i = 0; i < out.bins.size(); ++i) {
    out.bins[i] =
        static_cast<uint8_t>(std::clamp<int64_t>(int64_t{out.bins[i]} - local_dq[i], 0, 255));
  }
  std::vector<size_t> rest;
  for (size_t i = layer.nodes.back() + 1; i < paths.int8.nodes.size(); ++i) rest.push_back(i);
  if (rest.empty()) return std::move(out);
  const run::RunOptions run_options{.profile = options.profile,
                                    .framework_threads = options.framework_threads,
                                    .quantized_kernels = options.int8_kernels};
  return run::rerun_nodes(paths.int8, base, rest, run_options);
}

// The final output is the last node's (run_graph's order): a re-run of the nodes after a layer
// ends with it.
bool output_is_last_node(const model::Graph& g) {
  return !g.nodes.empty() && g.nodes.back().output == g.output;
}

struct LayerOutcome {
  LocalError local;
  std::vector<ModelFinding> findings;
  std::optional<LayerImpact> impact;
};

LayerOutcome study_layer(const ModelPaths& paths, const ModelDiagnosisOptions& options,
                         const diff::LayerComparison& like, const model::Layer& layer,
                         const model::Layer* qat_layer, const detail::ValueMap& map,
                         const diff::OutputAgreement& before) {
  LayerOutcome o;
  std::string why;
  auto fed = detail::fed_inputs(paths, map, layer, why);
  if (!fed) {
    o.local.not_measured = why;
    return o;
  }
  LayerStudy study(paths, options, like, layer, qat_layer, std::move(*fed));
  std::vector<int32_t> local_dq;
  const Mismatches local = study.local(local_dq);
  o.local.measured = true;
  o.local.bin_mismatch_count = local.total;
  o.local.max_abs_dq = local.max_abs_dq;
  // Inherited: the elements that differ in the full run but agree when fed the QAT input.
  const std::vector<int32_t> full_dq =
      diff::layer_dq(like, paths.qat_run.values[static_cast<size_t>(like.fake_quant_value)],
                     paths.int8_run.values[static_cast<size_t>(like.int8_value)]);
  for (size_t i = 0; i < full_dq.size(); ++i)
    o.local.inherited_count += full_dq[i] != 0 && local_dq[i] == 0;
  if (local.total == 0) return o;
  o.findings = study.explain();
  // A float output (dequantize) has no bins to take the error out of; it creates none anyway.
  if (options.impact && output_is_last_node(paths.int8) && like.int8_quantized) {
    const run::Tensor after = without_local_error(paths, options, like, layer, local_dq);
    o.impact = LayerImpact{
        layer.name, local.total, before,
        diff::output_agreement(paths.qat_run.values[static_cast<size_t>(paths.qat.output)], after)};
  }
  return o;
}

}  // namespace

std::string_view to_string(CauseClass c) {
  switch (c) {
    case CauseClass::kWeightGrid:
      return "weight_grid";
    case CauseClass::kAsymmetricSameSignChannel:
      return "asymmetric_same_sign_channel";
    case CauseClass::kBatchNormFolding:
      return "bn_folding";
    case CauseClass::kWeightValues:
      return "weight_values";
    case CauseClass::kAccumulatorSaturation:
      return "accumulator_saturation";
    case CauseClass::kActivationGrid:
      return "activation_grid";
    case CauseClass::kOutputGridNotObserved:
      return "output_grid_not_observed";
    case CauseClass::kObserverMoved:
      return "observer_moved";
    case CauseClass::kReducedRangeClamp:
      return "reduced_range_clamp";
    case CauseClass::kUnquantizedOp:
      return "unquantized_op";
    case CauseClass::kIntegerArithmetic:
      return "integer_arithmetic";
  }
  return "?";
}

Divergence divergence_of(const diff::ModelComparison& comparison,
                         const run::Tensor& fake_quant_output, const run::Tensor& int8_output) {
  Divergence d;
  for (const auto& l : comparison.layers) {
    d.bins_differing += l.bin_mismatch_count;
    d.layers_differing += l.bin_mismatch_count > 0 ? 1 : 0;
  }
  d.output = diff::output_agreement(fake_quant_output, int8_output);
  return d;
}

double LayerImpact::sqnr_gain_db() const {
  if (after.sqnr_db == before.sqnr_db) return 0.0;
  return after.sqnr_db - before.sqnr_db;
}

std::vector<std::string> compare_diagnoses(const ModelDiagnosis& a, const ModelDiagnosis& b,
                                           const diff::ModelComparison& comparison) {
  std::vector<std::string> out;
  for (size_t i = 0; i < a.local.size() && i < b.local.size() && i < comparison.layers.size();
       ++i) {
    const LocalError& x = a.local[i];
    const LocalError& y = b.local[i];
    if (x.bin_mismatch_count != y.bin_mismatch_count || x.inherited_count != y.inherited_count ||
        x.max_abs_dq != y.max_abs_dq) {
      out.push_back("layer " + comparison.layers[i].name + ": own mismatches " +
                    std::to_string(x.bin_mismatch_count) + " against " +
                    std::to_string(y.bin_mismatch_count) + ", inherited " +
                    std::to_string(x.inherited_count) + " against " +
                    std::to_string(y.inherited_count));
    }
  }
  if (a.local.size() != b.local.size()) out.push_back("a different number of layers");
  const auto finding_text = [](const ModelFinding& f) {
    return std::string(to_string(f.cause)) + " in " + f.layer + " (" + f.point + ") explaining " +
           std::to_string(f.explains_elements);
  };
  for (size_t i = 0; i < std::max(a.findings.size(), b.findings.size()); ++i) {
    const std::string x = i < a.findings.size() ? finding_text(a.findings[i]) : "none";
    const std::string y = i < b.findings.size() ? finding_text(b.findings[i]) : "none";
    if (x != y) out.push_back("finding " + std::to_string(i + 1) + ": " + x + " against " + y);
  }
  for (size_t i = 0; i < std::max(a.impact.size(), b.impact.size()); ++i) {
    const auto text = [](const std::vector<LayerImpact>& v, size_t k) {
      if (k >= v.size()) return std::string("none");
      return v[k].layer + " SQNR " + g9(v[k].after.sqnr_db) + " max abs " +
             g9(v[k].after.max_abs_difference) + " top-1 " +
             std::to_string(v[k].after.top1_agreeing);
    };
    if (text(a.impact, i) != text(b.impact, i)) {
      out.push_back("impact " + std::to_string(i + 1) + ": " + text(a.impact, i) + " against " +
                    text(b.impact, i));
    }
  }
  return out;
}

ModelDiagnosis diagnose_model(const ModelPaths& paths, const diff::ModelComparison& comparison,
                              const ModelDiagnosisOptions& options) {
  if (options.profile == nullptr)
    throw std::invalid_argument("diagnose_model: a profile is required");
  const std::vector<model::Layer> int8_layers = model::layers_of(paths.int8);
  if (int8_layers.size() != comparison.layers.size()) {
    throw std::invalid_argument("diagnose_model: the comparison is not of these paths");
  }
  std::unordered_map<std::string, size_t> qat_index;
  const std::vector<model::Layer> qat_layers = model::layers_of(paths.qat);
  for (size_t i = 0; i < qat_layers.size(); ++i) qat_index[qat_layers[i].name] = i;
  const detail::ValueMap map(paths, comparison);
  const diff::OutputAgreement before =
      diff::output_agreement(paths.qat_run.values[static_cast<size_t>(paths.qat.output)],
                             paths.int8_run.values[static_cast<size_t>(paths.int8.output)]);
  std::vector<LayerOutcome> outcomes(int8_layers.size());
  detail::parallel_for(static_cast<int64_t>(int8_layers.size()), options.threads, [&](int64_t i) {
    const auto k = static_cast<size_t>(i);
    const auto it = qat_index.find(int8_layers[k].name);
    outcomes[k] =
        study_layer(paths, options, comparison.layers[k], int8_layers[k],
                    it == qat_index.end() ? nullptr : &qat_layers[it->second], map, before);
  });
  ModelDiagnosis d;
  for (auto& o : outcomes) {
    d.local_mismatches += o.local.bin_mismatch_count;
    d.local.push_back(std::move(o.local));
    for (auto& f : o.findings) {
      d.explained_elements += f.explains_elements;
      d.findings.push_back(std::move(f));
    }
    if (o.impact) d.impact.push_back(std::move(*o.impact));
  }
  d.fixes = detail::verified_fixes(paths, comparison, d.findings, options);
  std::stable_sort(d.impact.begin(), d.impact.end(),
                   [](const LayerImpact& a, const LayerImpact& b) {
                     return a.sqnr_gain_db() > b.sqnr_gain_db();
                   });
  return d;
}

}  // namespace qparity::diagnose
