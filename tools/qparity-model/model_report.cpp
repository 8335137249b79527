#include "model_report.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "model_diagnosis_report.h"
#include "qparity/numerics/quantize.h"
#include "qparity/version.h"

namespace qparity::cli {
namespace {

using Json = nlohmann::ordered_json;

const diff::ReferenceLayer* find(const std::optional<diff::ReferenceCheck>& check,
                                 const std::string& name) {
  if (!check) return nullptr;
  for (const auto& l : check->layers) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

std::string exactness(const diff::ReferenceLayer* l) {
  if (l == nullptr) return "-";
  return l->elements_differing == 0 ? "exact" : fmt::format("{} off", l->elements_differing);
}

// Float32 values written so they read back to the same bits (shortest round-trip decimal of the
// exact value); non-finite values as strings.
Json floats_json(const std::vector<float>& v) {
  Json a = Json::array();
  for (const float x : v) a.push_back(json_real(static_cast<double>(x)));
  return a;
}

Json reference_json(const diff::ReferenceCheck& check) {
  Json layers = Json::array();
  for (const auto& l : check.layers) {
    Json j = {{"name", l.name},
              {"elements", l.elements},
              {"elements_differing", l.elements_differing},
              {"exact", l.elements_differing == 0}};
    if (!l.first_difference.empty()) j["first_difference"] = l.first_difference;
    layers.push_back(std::move(j));
  }
  return {{"exact", check.elements_differing == 0 && check.output_exact},
          {"elements", check.elements},
          {"elements_differing", check.elements_differing},
          {"output_exact", check.output_exact},
          {"layers", layers}};
}

Json first_mismatch_json(const diff::LayerComparison& l) {
  if (!l.first_mismatch) return nullptr;
  const diff::LayerMismatch& m = *l.first_mismatch;
  return {{"index", m.index},
          {"position", unravel(m.index, l.dims)},
          {"fake_quant_bin", m.fake_quant_bin},
          {"int8_bin", m.int8_bin},
          {"fake_quant_value", json_real(static_cast<double>(m.fake_quant_value))},
          {"int8_value", json_real(static_cast<double>(m.int8_value))}};
}

Json layer_json(const diff::LayerComparison& l) {
  Json hist = Json::object();
  for (const auto& [dq, n] : l.dq_histogram) hist[std::to_string(dq)] = n;
  Json compare = {{"numel", l.numel},
                  {"bin_mismatch_count", l.bin_mismatch_count},
                  {"max_abs_dq", l.max_abs_dq},
                  {"dq_histogram", hist},
                  {"sqnr_db", json_real(l.sqnr_db)},
                  {"max_abs_error", json_real(l.max_abs_error)},
                  {"rmse_over_scale", json_real(l.rmse_over_scale)},
                  {"cosine", json_real(l.cosine)},
                  {"first_mismatch", first_mismatch_json(l)},
                  {"order_sensitive_bins", l.order_sensitive_bins ? Json(*l.order_sensitive_bins) : Json()}};
  Json fq = {{"scale", l.fake_quant_grid.scale},
             {"zero_point", l.fake_quant_grid.zero_point},
             {"own_output_fake_quant", l.fake_quant_grid_is_own},
             {"provenance", l.fake_quant_provenance}};
  Json q = {
      {"scale", l.int8_grid.scale},
      {"zero_point", l.int8_grid.zero_point},
      {"quantized_output", l.int8_quantized},
      {"provenance", l.int8_quantized ? "the int8 op's output qparams (module scale / zero_point)"
                                      : "a float output: binned on its quantized input's grid"}};
  return {{"name", l.name},    {"op", l.op}, {"shape", l.dims},
          {"fake_quant", fq},  {"int8", q},  {"same_grid", l.same_grid},
          {"compare", compare}};
}

// The QAT bins summation order decides, over all layers, and the layers with any.
struct OrderTotals {
  int64_t bins = 0;
  int64_t layers_checked = 0;
  std::vector<std::string> layers;
};

OrderTotals order_totals(const ModelReport& r) {
  OrderTotals t;
  for (const auto& l : r.comparison.layers) {
    if (!l.order_sensitive_bins) continue;
    ++t.layers_checked;
    t.bins += *l.order_sensitive_bins;
    if (*l.order_sensitive_bins > 0) t.layers.push_back(l.name);
  }
  return t;
}

Json order_check_json(const ModelReport& r) {
  if (r.order_check.empty()) return Json();
  const OrderTotals t = order_totals(r);
  return {{"alternative", r.order_check},
          {"layers_checked", t.layers_checked},
          {"bins", t.bins},
          {"layers", t.layers}};
}

}  // namespace

std::string sqnr_text(double db) {
  if (std::isnan(db)) return "nan";
  return std::isinf(db) ? (db > 0 ? "inf" : "-inf") : fmt::format("{:.1f}", db);
}

Json json_real(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

std::vector<float> output_values(const run::Tensor& t) {
  if (!t.quantized()) return t.values;
  std::vector<float> v(t.bins.size());
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = dequantize_value(t.bins[i], static_cast<float>(t.scale), t.zero_point);
  return v;
}

std::vector<int64_t> unravel(int64_t index, const model::Dims& dims) {
  std::vector<int64_t> at(dims.size(), 0);
  for (size_t k = dims.size(); k-- > 0;) {
    if (dims[k] <= 0) continue;
    at[k] = index % dims[k];
    index /= dims[k];
  }
  return at;
}

std::string budget_measure_text(const ModelBudgetVerdict& v) {
  if (v.budget == "sqnr-min") return "SQNR " + sqnr_text(v.measured) + " dB";
  if (v.budget == "max-dq") return fmt::format("max |dq| {}", v.measured);
  return fmt::format("{} bins differ", v.measured);
}

bool reference_exact(const ModelReport& r) {
  const bool int8_exact =
      !r.int8_reference || (r.int8_reference->elements_differing == 0 && r.int8_reference->output_exact);
  return r.qat_reference && r.qat_reference->elements_differing == 0 && r.qat_reference->output_exact && int8_exact;
}

std::string int8_model_text(const ModelReport& r) {
  return r.int8_file.empty() ? std::string("qparity's convert() of it") : r.int8_file;
}

std::string convert_text(const ModelReport& r) {
  if (r.convert_mode == "derived") {
    return "int8 model: derived by qparity's emulation of eager convert() (BN folding, weight and output qparams "
           "from the observers); libtorch checks the QAT path only\n";
  }
  if (r.convert_mode == "unavailable") return "convert() check: not run: " + r.convert_error + "\n";
  if (r.convert_mode != "checked") return {};
  if (r.convert_differences.empty()) {
    return "convert() check: qparity's convert() of the QAT model equals the int8 model to the bit (weights, bias, "
           "output grids, memory layouts)\n";
  }
  std::string out = fmt::format("convert() check: {} differences from the int8 model:\n", r.convert_differences.size());
  for (size_t i = 0; i < r.convert_differences.size() && i < 10; ++i) out += "  " + r.convert_differences[i] + "\n";
  if (r.convert_differences.size() > 10) out += fmt::format("  ... {} more (see --json)\n", r.convert_differences.size() - 10);
  return out;
}

std::string render_model_console(const ModelReport& r) {
  const auto& c = r.comparison;
  std::string out =
      fmt::format("qparity model: {} (QAT) against {} (int8), input {} {}\n", r.qat_file,
                  int8_model_text(r), r.input_description, model::to_string(r.input_dims));
  out += fmt::format("engine {}: {}; PyTorch threads emulated: {}; QAT float ops: {}\n\n",
                     r.profile.name, r.profile.provenance, r.torch_threads, r.float_kernels);
  const bool ref = r.qat_reference.has_value();
  out += fmt::format("{:<34} {:<22} {:>9} {:>8} {:>6} {:>7} {:>11} {:>5}", "layer", "op",
                     "elements", "differ", "max|dq|", "SQNR dB", "max abs err", "grid");
  out += ref ? fmt::format(" {:>9} {:>9}\n", "QAT ref", "int8 ref") : "\n";
  for (const auto& l : c.layers) {
    out += fmt::format("{:<34} {:<22} {:>9} {:>8} {:>6} {:>7} {:>11.4g} {:>5}", l.name, l.op,
                       l.numel, l.bin_mismatch_count, l.max_abs_dq, sqnr_text(l.sqnr_db),
                       l.max_abs_error, l.same_grid ? "same" : "diff");
    out += ref ? fmt::format(" {:>9} {:>9}\n", exactness(find(r.qat_reference, l.name)),
                             exactness(find(r.int8_reference, l.name)))
               : "\n";
  }
  out += "\n";
  if (c.first_divergent) {
    const auto& f = c.layers[*c.first_divergent];
    out += fmt::format("first divergent layer: {} ({} of {} bins differ", f.name,
                       f.bin_mismatch_count, f.numel);
    if (f.first_mismatch) {
      out += fmt::format("; first at {}: fake-quant bin {}, int8 bin {}",
                         model::to_string(unravel(f.first_mismatch->index, f.dims)),
                         f.first_mismatch->fake_quant_bin, f.first_mismatch->int8_bin);
    }
    out += ")\n";
    const auto& w = c.layers[*c.worst];
    out += fmt::format(
        "worst layer: {} ({:.1f}% of bins differ, max |dq| {})\n", w.name,
        100.0 * static_cast<double>(w.bin_mismatch_count) / static_cast<double>(w.numel),
        w.max_abs_dq);
  } else {
    out += "the two paths agree bin for bin in every layer\n";
  }
  out += fmt::format("final output {}: max abs difference {:.6g}; top-1 agreement {}/{}\n",
                     model::to_string(c.output_dims), c.output_max_abs_difference, c.top1_agreeing,
                     c.top1_rows);
  if (!r.moved_points.empty()) {
    out += fmt::format(
        "observers still enabled: {} fake-quant points moved their range during this forward "
        "(first: {})\n",
        r.moved_points.size(), r.moved_points.front());
  }
  if (ref && r.int8_reference) {
    out +=
        fmt::format("reference (libtorch ran both models): emulation {} ({} + {} values checked)\n",
                    reference_exact(r) ? "bit-exact" : "NOT exact", r.qat_reference->elements,
                    r.int8_reference->elements);
  } else if (ref) {
    out += fmt::format("reference (libtorch ran the QAT model): emulation {} ({} values checked)\n",
                       reference_exact(r) ? "bit-exact" : "NOT exact", r.qat_reference->elements);
  } else {
    out += "reference check skipped: " + r.reference_skipped + "\n";
  }
  if (!r.order_check.empty()) {
    const OrderTotals t = order_totals(r);
    out += fmt::format("QAT summation order: {} bins in {} of {} checked layers change with {}{}\n", t.bins,
                       t.layers.size(), t.layers_checked, r.order_check,
                       t.layers.empty() ? "" : " (first: " + t.layers.front() + "); PyTorch's own order decides them");
  }
  out += convert_text(r);
  out += render_diagnosis_console(r);
  out += render_trace_text(r);
  for (const auto& v : r.budgets) {
    out += fmt::format("budget {}={}: {} ({}{})\n", v.budget, v.limit,
                       v.exceeded ? "EXCEEDED" : "held", budget_measure_text(v),
                       v.layer.empty() ? "" : " in layer " + v.layer);
  }
  return out;
}

std::string render_model_json(const ModelReport& r) {
  const auto& c = r.comparison;
  Json layers = Json::array();
  int64_t layers_differing = 0;
  int64_t bins_differing = 0;
  int64_t elements = 0;
  for (const auto& l : c.layers) {
    layers.push_back(layer_json(l));
    layers_differing += l.bin_mismatch_count > 0 ? 1 : 0;
    bins_differing += l.bin_mismatch_count;
    elements += l.numel;
  }
  const Json summary = {{"agree", !c.first_divergent.has_value()},
                        {"layers", c.layers.size()},
                        {"layers_differing", layers_differing},
                        {"elements", elements},
                        {"bins_differing", bins_differing},
                        {"first_divergent_layer",
                         c.first_divergent ? Json(c.layers[*c.first_divergent].name) : Json()},
                        {"worst_layer", c.worst ? Json(c.layers[*c.worst].name) : Json()},
                        {"output_max_abs_difference", json_real(c.output_max_abs_difference)},
                        {"top1_agreement", {{"rows", c.top1_rows}, {"agreeing", c.top1_agreeing}}},
                        {"observers_moved", r.moved_points},
                        {"reference_exact", r.qat_reference ? Json(reference_exact(r)) : Json()},
                        {"order_check", order_check_json(r)}};
  Json doc = {{"schema", "qparity.model/1"},
              {"qparity_version", std::string(version())},
              {"command_line", r.command_line},
              {"models", {{"qat", r.qat_file}, {"int8", r.int8_file.empty() ? Json() : Json(r.int8_file)}}},
              {"input", {{"source", r.input_description}, {"shape", r.input_dims}}},
              {"backend", {{"name", r.profile.name}, {"provenance", r.profile.provenance}}},
              {"pytorch_threads", r.torch_threads},
              {"qat_float_kernels", r.float_kernels},
              {"layers", layers},
              {"outputs",
               {{"shape", c.output_dims},
                {"fake_quant", floats_json(r.fake_quant_output)},
                {"int8", floats_json(r.int8_output)}}}};
  if (r.qat_reference) {
    doc["reference"] = {{"qat", reference_json(*r.qat_reference)},
                        {"int8", r.int8_reference ? reference_json(*r.int8_reference) : Json()}};
  } else {
    doc["reference"] = {{"skipped", r.reference_skipped}};
  }
  doc["summary"] = summary;
  if (!r.convert_mode.empty()) {
    doc["convert"] = {{"mode", r.convert_mode}, {"differences", r.convert_differences}};
    if (!r.convert_error.empty()) doc["convert"]["error"] = r.convert_error;
  }
  if (!r.budgets.empty()) {
    Json budgets = Json::array();
    for (const auto& v : r.budgets) {
      budgets.push_back({{"budget", v.budget},
                         {"limit", v.limit},
                         {"measured", json_real(v.measured)},
                         {"layer", v.layer.empty() ? Json() : Json(v.layer)},
                         {"exceeded", v.exceeded}});
    }
    doc["budgets"] = budgets;
  }
  add_diagnosis_json(r, doc);
  add_trace_json(r, doc);
  // Any byte that is not UTF-8 (a file name) becomes U+FFFD instead of an exception.
  return doc.dump(1, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace qparity::cli
