#include "model_report.h"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <nlohmann/json.hpp>

namespace qparity::cli {
namespace {

std::string sqnr_text(double db) { return std::isinf(db) ? "inf" : fmt::format("{:.1f}", db); }

const diff::ReferenceLayer* find(const std::optional<diff::ReferenceCheck>& check, const std::string& name) {
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

nlohmann::json grid_json(const QuantGrid& g) { return {{"scale", g.scale}, {"zero_point", g.zero_point}}; }

nlohmann::json reference_json(const diff::ReferenceCheck& check) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : check.layers) {
    nlohmann::json j = {{"name", l.name}, {"elements", l.elements}, {"elements_differing", l.elements_differing},
                        {"exact", l.elements_differing == 0}};
    if (!l.first_difference.empty()) j["first_difference"] = l.first_difference;
    layers.push_back(std::move(j));
  }
  return {{"elements", check.elements}, {"elements_differing", check.elements_differing},
          {"output_exact", check.output_exact}, {"layers", layers}};
}

// Float32 values written so they read back to the same bits: shortest round-trip decimal.
nlohmann::json floats_json(const std::vector<float>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const float x : v) a.push_back(x);
  return a;
}

}  // namespace

std::string render_model_console(const ModelReport& r) {
  const auto& c = r.comparison;
  std::string out = fmt::format("qparity model: {} (QAT) against {} (int8), input {} {}\n", r.qat_file, r.int8_file,
                                r.input_description, model::to_string(r.input_dims));
  out += fmt::format("engine {}: {}; PyTorch threads emulated: {}; QAT float ops: {}\n\n", r.profile.name,
                     r.profile.provenance, r.torch_threads, r.float_kernels);
  const bool ref = r.qat_reference.has_value();
  out += fmt::format("{:<34} {:<22} {:>9} {:>8} {:>6} {:>7} {:>11} {:>5}", "layer", "op", "elements", "differ", "max|dq|",
                     "SQNR dB", "max abs err", "grid");
  out += ref ? fmt::format(" {:>9} {:>9}\n", "QAT ref", "int8 ref") : "\n";
  for (const auto& l : c.layers) {
    out += fmt::format("{:<34} {:<22} {:>9} {:>8} {:>6} {:>7} {:>11.4g} {:>5}", l.name, l.op, l.numel,
                       l.bin_mismatch_count, l.max_abs_dq, sqnr_text(l.sqnr_db), l.max_abs_error,
                       l.same_grid ? "same" : "diff");
    out += ref ? fmt::format(" {:>9} {:>9}\n", exactness(find(r.qat_reference, l.name)),
                             exactness(find(r.int8_reference, l.name)))
               : "\n";
  }
  out += "\n";
  if (c.first_divergent) {
    const auto& f = c.layers[*c.first_divergent];
    out += fmt::format("first divergent layer: {} ({} of {} bins differ)\n", f.name, f.bin_mismatch_count, f.numel);
    const auto& w = c.layers[*c.worst];
    out += fmt::format("worst layer: {} ({:.1f}% of bins differ, max |dq| {})\n", w.name,
                       100.0 * static_cast<double>(w.bin_mismatch_count) / static_cast<double>(w.numel), w.max_abs_dq);
  } else {
    out += "the two paths agree bin for bin in every layer\n";
  }
  out += fmt::format("final output {}: max abs difference {:.6g}; top-1 agreement {}/{}\n",
                     model::to_string(c.output_dims), c.output_max_abs_difference, c.top1_agreeing, c.top1_rows);
  if (!r.moved_points.empty()) {
    out += fmt::format("observers still enabled: {} fake-quant points moved their range during this forward (first: {})\n",
                       r.moved_points.size(), r.moved_points.front());
  }
  if (ref) {
    const bool exact = r.qat_reference->elements_differing == 0 && r.int8_reference->elements_differing == 0 &&
                       r.qat_reference->output_exact && r.int8_reference->output_exact;
    out += fmt::format("reference (libtorch ran both models): emulation {} ({} + {} values checked)\n",
                       exact ? "bit-exact" : "NOT exact", r.qat_reference->elements, r.int8_reference->elements);
  } else {
    out += "reference check skipped: " + r.reference_skipped + "\n";
  }
  return out;
}

std::string render_model_json(const ModelReport& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.comparison.layers) {
    nlohmann::json hist = nlohmann::json::object();
    for (const auto& [dq, n] : l.dq_histogram) hist[std::to_string(dq)] = n;
    nlohmann::json compare = {{"numel", l.numel},
                              {"bin_mismatch_count", l.bin_mismatch_count},
                              {"max_abs_dq", l.max_abs_dq},
                              {"dq_histogram", hist},
                              {"sqnr_db", std::isinf(l.sqnr_db) ? nlohmann::json("inf") : nlohmann::json(l.sqnr_db)},
                              {"max_abs_error", l.max_abs_error},
                              {"rmse_over_scale", l.rmse_over_scale},
                              {"cosine", l.cosine},
                              {"first_mismatch", l.first_mismatch ? nlohmann::json(*l.first_mismatch) : nlohmann::json()}};
    nlohmann::json fq = grid_json(l.fake_quant_grid);
    fq["own_output_fake_quant"] = l.fake_quant_grid_is_own;
    fq["provenance"] = l.fake_quant_provenance;
    nlohmann::json q = grid_json(l.int8_grid);
    q["provenance"] = l.int8_quantized ? "the int8 op's output qparams (module scale / zero_point)"
                                       : "a float output: binned on its quantized input's grid";
    layers.push_back({{"name", l.name}, {"op", l.op}, {"shape", l.dims}, {"fake_quant", fq}, {"int8", q},
                      {"same_grid", l.same_grid}, {"compare", compare}});
  }
  const auto& c = r.comparison;
  nlohmann::json summary = {
      {"layers", c.layers.size()},
      {"first_divergent_layer", c.first_divergent ? nlohmann::json(c.layers[*c.first_divergent].name) : nlohmann::json()},
      {"worst_layer", c.worst ? nlohmann::json(c.layers[*c.worst].name) : nlohmann::json()},
      {"output_max_abs_difference", c.output_max_abs_difference},
      {"top1_agreement", {{"rows", c.top1_rows}, {"agreeing", c.top1_agreeing}}},
      {"observers_moved", r.moved_points}};
  nlohmann::json doc = {
      {"schema", "qparity.model/1"},
      {"command", r.command_line},
      {"models", {{"qat", r.qat_file}, {"int8", r.int8_file}}},
      {"input", {{"source", r.input_description}, {"shape", r.input_dims}}},
      {"backend", {{"name", r.profile.name}, {"provenance", r.profile.provenance}}},
      {"pytorch_threads", r.torch_threads},
      {"qat_float_kernels", r.float_kernels},
      {"layers", layers},
      {"outputs", {{"shape", c.output_dims}, {"fake_quant", floats_json(r.fake_quant_output)}, {"int8", floats_json(r.int8_output)}}},
      {"summary", summary}};
  if (r.qat_reference) {
    doc["reference"] = {{"qat", reference_json(*r.qat_reference)}, {"int8", reference_json(*r.int8_reference)}};
  } else {
    doc["reference"] = {{"skipped", r.reference_skipped}};
  }
  return doc.dump(1) + "\n";
}

}  // namespace qparity::cli
