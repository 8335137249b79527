#include "qparity/diff/layer_compare.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "common/format.h"

namespace qparity::diff {
namespace {

using model::Graph;
using model::Layer;
using run::Tensor;

float value_at(const Tensor& t, size_t i) {
  return t.quantized() ? dequantize_value(t.bins[i], static_cast<float>(t.scale), t.zero_point) : t.values[i];
}

QuantGrid grid_of(const Tensor& t) { return {static_cast<float>(t.scale), t.zero_point, {0, 255}}; }

// The fake-quant grid a layer's output lies on: the grid its last node (a fake-quant) used.
std::optional<run::FakeQuantUse> own_fake_quant(const Layer& layer, const run::RunResult& run) {
  const size_t last = layer.nodes.back();
  for (const auto& use : run.fake_quant_uses) {
    if (use.node == last && use.fake_quant_enabled && use.channels.size() == 1) return use;
  }
  return std::nullopt;
}

int64_t fake_quant_bin(const LayerComparison& c, const Tensor& fq, size_t i) {
  return quantize_value(value_at(fq, i), c.fake_quant_grid);
}

int64_t int8_bin(const LayerComparison& c, const Tensor& q, size_t i) {
  return q.quantized() ? q.bins[i] : quantize_value(q.values[i], c.int8_grid);
}

void fill_metrics(const Tensor& fq, const Tensor& q, LayerComparison& c) {
  double signal = 0.0;
  double noise = 0.0;
  double dot = 0.0;
  double fq_norm = 0.0;
  double q_norm = 0.0;
  for (size_t i = 0; i < static_cast<size_t>(c.numel); ++i) {
    const double a = value_at(fq, i);
    const double b = value_at(q, i);
    const int64_t fq_bin = fake_quant_bin(c, fq, i);
    const int64_t q_bin = int8_bin(c, q, i);
    const int64_t dq = q_bin - fq_bin;
    if (dq != 0) {
      ++c.bin_mismatch_count;
      ++c.dq_histogram[dq];
      c.max_abs_dq = std::max(c.max_abs_dq, std::abs(dq));
      if (!c.first_mismatch) {
        c.first_mismatch = LayerMismatch{static_cast<int64_t>(i), fq_bin, q_bin,
                                         static_cast<float>(a), static_cast<float>(b)};
      }
    }
    signal += a * a;
    noise += (a - b) * (a - b);
    dot += a * b;
    fq_norm += a * a;
    q_norm += b * b;
    c.max_abs_error = std::max(c.max_abs_error, std::abs(a - b));
  }
  c.sqnr_db = noise == 0.0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(signal / noise);
  c.rmse_over_scale = c.numel == 0 ? 0.0 : std::sqrt(noise / static_cast<double>(c.numel)) / c.int8_grid.scale;
  c.cosine = fq_norm == 0.0 || q_norm == 0.0 ? (fq_norm == q_norm ? 1.0 : 0.0) : dot / std::sqrt(fq_norm * q_norm);
}

void check_same_size(const LayerComparison& like, const Tensor& fq, const Tensor& q) {
  if (fq.numel() != like.numel || q.numel() != like.numel) {
    throw std::invalid_argument("layer '" + like.name + "': values of another size than the layer's output");
  }
}

}  // namespace

LayerComparison compare_layer_values(const LayerComparison& like, const Tensor& fake_quant, const Tensor& int8) {
  check_same_size(like, fake_quant, int8);
  LayerComparison c = like;
  c.bin_mismatch_count = 0;
  c.max_abs_dq = 0;
  c.dq_histogram.clear();
  c.max_abs_error = 0.0;
  c.first_mismatch.reset();
  c.order_sensitive_bins.reset();
  fill_metrics(fake_quant, int8, c);
  return c;
}

std::vector<int32_t> layer_dq(const LayerComparison& like, const Tensor& fake_quant, const Tensor& int8) {
  check_same_size(like, fake_quant, int8);
  std::vector<int32_t> dq(static_cast<size_t>(like.numel));
  for (size_t i = 0; i < dq.size(); ++i) {
    dq[i] = static_cast<int32_t>(int8_bin(like, int8, i) - fake_quant_bin(like, fake_quant, i));
  }
  return dq;
}

OutputAgreement output_agreement(const Tensor& fq_out, const Tensor& q_out) {
  OutputAgreement a;
  const auto n = static_cast<size_t>(std::min(fq_out.numel(), q_out.numel()));
  double signal = 0.0;
  double noise = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double x = value_at(fq_out, i);
    const double d = x - static_cast<double>(value_at(q_out, i));
    signal += x * x;
    noise += d * d;
    a.max_abs_difference = std::max(a.max_abs_difference, std::abs(d));
  }
  a.sqnr_db = noise == 0.0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(signal / noise);
  // top-1 over the last dimension, row by row.
  const int64_t classes = q_out.dims.empty() ? 1 : q_out.dims.back();
  for (int64_t r = 0; classes > 0 && (r + 1) * classes <= static_cast<int64_t>(n); ++r) {
    auto argmax = [&](const Tensor& t) {
      int64_t best = 0;
      for (int64_t k = 1; k < classes; ++k) {
        if (value_at(t, static_cast<size_t>(r * classes + k)) > value_at(t, static_cast<size_t>(r * classes + best))) best = k;
      }
      return best;
    };
    ++a.top1_rows;
    if (argmax(fq_out) == argmax(q_out)) ++a.top1_agreeing;
  }
  return a;
}

ModelComparison compare_paths(const Graph& fake_quant, const run::RunResult& fake_quant_run, const Graph& int8,
                              const run::RunResult& int8_run) {
  const std::vector<Layer> fq_layers = model::layers_of(fake_quant);
  std::unordered_map<std::string, size_t> fq_index;
  for (size_t i = 0; i < fq_layers.size(); ++i) fq_index[fq_layers[i].name] = i;
  std::unordered_map<model::ValueId, const Layer*> int8_layer_of_value;
  const std::vector<Layer> q_layers = model::layers_of(int8);
  for (const Layer& l : q_layers) int8_layer_of_value[l.output] = &l;
  // The fake-quant layer standing for each int8 layer (by name; dequantize has none and stands
  // for its input's layer).
  std::unordered_map<std::string, const Layer*> counterpart;
  ModelComparison result;
  for (const Layer& layer : q_layers) {
    const model::Node& last = int8.nodes[layer.nodes.back()];
    LayerComparison c;
    c.name = layer.name;
    c.op = std::string(to_string(last.op));
    const Tensor& q = int8_run.values[static_cast<size_t>(layer.output)];
    c.dims = q.dims;
    c.numel = q.numel();
    c.int8_value = layer.output;
    const Layer* fq_layer = nullptr;
    if (const auto it = fq_index.find(layer.name); it != fq_index.end()) {
      fq_layer = &fq_layers[it->second];
    } else if (last.op == model::OpKind::kDequantize && !last.inputs.empty() &&
               int8_layer_of_value.count(last.inputs[0]) != 0) {
      fq_layer = counterpart[int8_layer_of_value[last.inputs[0]]->name];
      c.has_fake_quant_counterpart = fq_layer != nullptr;
    }
    if (fq_layer == nullptr) {
      throw std::invalid_argument("the models do not correspond: int8 layer '" + layer.name +
                                  "' (" + std::string(to_string(last.op)) + ", output " +
                                  model::to_string(q.dims) +
                                  ") has no layer of that name in the QAT model");
    }
    counterpart[layer.name] = fq_layer;
    c.fake_quant_value = fq_layer->output;
    const Tensor& fq = fake_quant_run.values[static_cast<size_t>(fq_layer->output)];
    if (fq.numel() != q.numel()) {
      throw std::invalid_argument("the models do not correspond: layer '" + layer.name + "' outputs " +
                                  model::to_string(q.dims) + " in the int8 model and " + model::to_string(fq.dims) +
                                  " in the QAT model");
    }
    c.int8_quantized = q.quantized();
    if (q.quantized()) {
      c.int8_grid = grid_of(q);
    } else {
      // dequantize: bin both on the grid of its quantized input.
      const Tensor& qin = int8_run.values[static_cast<size_t>(last.inputs[0])];
      c.int8_grid = grid_of(qin);
    }
    if (const auto use = own_fake_quant(*fq_layer, fake_quant_run); use && fq_layer->name == layer.name) {
      c.fake_quant_grid = use->channels[0].grid;
      c.fake_quant_provenance = use->provenance;
    } else if (const auto in_use = own_fake_quant(*fq_layer, fake_quant_run)) {
      c.fake_quant_grid = in_use->channels[0].grid;
      c.fake_quant_provenance = "the grid of " + fq_layer->name + "'s output fake-quant";
    } else {
      c.fake_quant_grid = c.int8_grid;
      c.fake_quant_grid_is_own = false;
      c.fake_quant_provenance = "QAT does not fake-quantize this layer's output: binned on the int8 grid";
    }
    c.same_grid = c.fake_quant_grid.scale == c.int8_grid.scale && c.fake_quant_grid.zero_point == c.int8_grid.zero_point;
    fill_metrics(fq, q, c);
    if (c.bin_mismatch_count > 0 && !result.first_divergent) result.first_divergent = result.layers.size();
    result.layers.push_back(std::move(c));
  }
  // Every QAT layer whose output is fake-quantized is a quantized layer of the int8 model too.
  for (const Layer& l : fq_layers) {
    const model::Node& last = fake_quant.nodes[l.nodes.back()];
    if (last.op != model::OpKind::kFakeQuant || counterpart.count(l.name) != 0) continue;
    throw std::invalid_argument(
        "the models do not correspond: QAT layer '" + l.name + "' (output " +
        model::to_string(fake_quant_run.values[static_cast<size_t>(l.output)].dims) +
        ") has no layer of that name in the int8 model");
  }
  for (size_t i = 0; i < result.layers.size(); ++i) {
    const auto share = [&](size_t k) {
      return static_cast<double>(result.layers[k].bin_mismatch_count) / static_cast<double>(std::max<int64_t>(1, result.layers[k].numel));
    };
    if (result.layers[i].bin_mismatch_count == 0) continue;
    if (!result.worst || share(i) > share(*result.worst) ||
        (share(i) == share(*result.worst) && result.layers[i].max_abs_dq > result.layers[*result.worst].max_abs_dq)) {
      result.worst = i;
    }
  }
  const Tensor& fq_out = fake_quant_run.values[static_cast<size_t>(fake_quant.output)];
  const Tensor& q_out = int8_run.values[static_cast<size_t>(int8.output)];
  result.output_dims = q_out.dims;
  const OutputAgreement agreement = output_agreement(fq_out, q_out);
  result.output_max_abs_difference = agreement.max_abs_difference;
  result.top1_rows = agreement.top1_rows;
  result.top1_agreeing = agreement.top1_agreeing;
  return result;
}

namespace {

// Counts elements of `emulated` that are not exactly `real`; describes the first.
int64_t differing(const Tensor& emulated, const Tensor& real, std::string& first) {
  if (emulated.dims != real.dims || emulated.type != real.type) {
    first = "shape or type differs: " + model::to_string(emulated.dims) + " against " + model::to_string(real.dims);
    return real.numel();
  }
  int64_t count = 0;
  if (real.quantized()) {
    if (emulated.scale != real.scale || emulated.zero_point != real.zero_point) {
      first = "output qparams differ: scale " + detail::g9(emulated.scale) + " zp " + std::to_string(emulated.zero_point) +
              " against " + detail::g9(real.scale) + " zp " + std::to_string(real.zero_point);
      return real.numel();
    }
    for (size_t i = 0; i < real.bins.size(); ++i) {
      if (emulated.bins[i] == real.bins[i]) continue;
      if (count++ == 0) {
        first = "element " + std::to_string(i) + ": bin " + std::to_string(emulated.bins[i]) + " against " +
                std::to_string(real.bins[i]);
      }
    }
    return count;
  }
  for (size_t i = 0; i < real.values.size(); ++i) {
    if (std::bit_cast<uint32_t>(emulated.values[i]) == std::bit_cast<uint32_t>(real.values[i])) continue;
    if (count++ == 0) {
      first = "element " + std::to_string(i) + ": " + detail::g9(emulated.values[i]) + " against " +
              detail::g9(real.values[i]);
    }
  }
  return count;
}

}  // namespace

ReferenceCheck check_reference(const Graph& graph, const run::RunResult& run,
                               const std::vector<std::optional<Tensor>>& reference, const Tensor& real_output) {
  ReferenceCheck check;
  for (const Layer& layer : model::layers_of(graph)) {
    ReferenceLayer r;
    r.name = layer.name;
    for (const size_t i : layer.nodes) {
      const auto v = static_cast<size_t>(graph.nodes[i].output);
      if (v >= reference.size() || !reference[v]) continue;
      ++r.values_checked;
      r.elements += reference[v]->numel();
      std::string first;
      const int64_t d = differing(run.values[v], *reference[v], first);
      if (d > 0 && r.first_difference.empty()) {
        r.first_difference = graph.nodes[i].source_op + ": " + first;
      }
      r.elements_differing += d;
    }
    check.elements += r.elements;
    check.elements_differing += r.elements_differing;
    check.layers.push_back(std::move(r));
  }
  std::string ignored;
  check.output_exact = differing(run.values[static_cast<size_t>(graph.output)], real_output, ignored) == 0;
  return check;
}

namespace {

bool order_dependent(model::OpKind op) {
  using model::OpKind;
  return op == OpKind::kConv2d || op == OpKind::kLinear || op == OpKind::kBatchNorm || op == OpKind::kAvgPool2d ||
         op == OpKind::kAdaptiveAvgPool2d || op == OpKind::kMean;
}

}  // namespace

std::map<std::string, int64_t> order_sensitive_bins(const model::Graph& qat, const run::RunResult& run,
                                                    const run::RunOptions& alternative) {
  std::map<std::string, int64_t> out;
  for (const Layer& layer : model::layers_of(qat)) {
    const model::Node& last = qat.nodes[layer.nodes.back()];
    const bool dependent = std::any_of(layer.nodes.begin(), layer.nodes.end(),
                                       [&](size_t i) { return order_dependent(qat.nodes[i].op); });
    if (!dependent || last.op != model::OpKind::kFakeQuant) continue;
    const Tensor again = run::rerun_nodes(qat, run, layer.nodes, alternative);
    const Tensor& before = run.values[static_cast<size_t>(last.output)];
    // Fake-quantized values on one grid are equal exactly when their bins are.
    int64_t differing = 0;
    for (size_t i = 0; i < before.values.size(); ++i) {
      differing += std::bit_cast<uint32_t>(before.values[i]) != std::bit_cast<uint32_t>(again.values[i]) ? 1 : 0;
    }
    out[layer.name] = differing;
  }
  return out;
}

}  // namespace qparity::diff
