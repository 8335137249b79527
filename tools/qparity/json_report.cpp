// JSON report of `qparity seed`; the keys are documented in docs/json.md.
#include <nlohmann/json.hpp>

#include "qparity/version.h"
#include "json_fragments.h"
#include "reports.h"

namespace qparity::cli {
namespace {

using Json = nlohmann::ordered_json;

Json optional_json(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

Json derivation_json(const QParamDerivation& d) {
  return {{"rule", to_string(d.rule)},
          {"min_val", d.min_val},
          {"max_val", d.max_val},
          {"qmin", d.range.min},
          {"qmax", d.range.max},
          {"scale_before_float", d.scale_before_float},
          {"branch", d.branch}};
}

Json point_json(const QuantPoint& p) {
  Json j = {{"dtype", to_string(p.dtype)},
            {"qscheme", to_string(p.qscheme)},
            {"scale", p.used.grid.scale},
            {"zero_point", p.used.grid.zero_point},
            {"qmin", p.used.grid.range.min},
            {"qmax", p.used.grid.range.max},
            {"provenance", p.used.provenance}};
  j["derivation"] = p.used.derivation ? derivation_json(*p.used.derivation) : Json(nullptr);
  if (!p.channels.empty()) {
    Json channels = Json::array();
    for (const UsedQParams& c : p.channels) {
      channels.push_back({{"scale", c.grid.scale},
                          {"zero_point", c.grid.zero_point},
                          {"provenance", c.provenance},
                          {"derivation", c.derivation ? derivation_json(*c.derivation) : Json(nullptr)}});
    }
    j["channels"] = channels;
  }
  return j;
}

Json path_json(const PathResult& p, const Shape4& shape) {
  Json bins = Json::array();
  for (int64_t w = 0; w < shape.w; ++w) bins.push_back(p.run.bins[static_cast<size_t>(w)]);
  Json path = {{"bins_row", bins},
          {"weight_scale", p.weight.used.grid.scale},
          {"weight_zero_point", p.weight.used.grid.zero_point},
          {"input_scale", p.input.used.grid.scale},
          {"input_zero_point", p.input.used.grid.zero_point},
          {"output_scale", p.output.used.grid.scale},
          {"output_zero_point", p.output.used.grid.zero_point},
          {"points", {{"input", point_json(p.input)},
                      {"weight", point_json(p.weight)},
                      {"output", point_json(p.output)}}}};
  if (!p.weight.channels.empty()) {
    // Per-channel weights: weight_scale / weight_zero_point above are channel 0's.
    Json scales = Json::array(), zero_points = Json::array();
    for (const UsedQParams& c : p.weight.channels) {
      scales.push_back(c.grid.scale);
      zero_points.push_back(c.grid.zero_point);
    }
    path["weight_scales"] = scales;
    path["weight_zero_points"] = zero_points;
  }
  return path;
}

Json compare_json(const Comparison& c) {
  Json j = {{"element_count", c.element_count},
            {"error_mean", c.error_mean},
            {"error_max", c.error_max},
            {"fp32_mismatch_count", c.fp32_mismatch_count},
            {"bin_mismatch_count", c.bin_mismatch_count},
            {"max_abs_delta_q", c.max_abs_delta_q}};
  j["first_mismatch"] = first_mismatch_json(c.first_mismatch);
  j["rows_identical"] = c.rows_identical;
  return j;
}

Json index_json(const ElementIndex& i) { return Json::array({i.n, i.c, i.h, i.w}); }

Json diagnosis_json(const Diagnosis& d) {
  Json findings = Json::array();
  for (const Finding& f : d.findings) {
    findings.push_back({{"class", to_string(f.divergence_class)},
                        {"point", f.point},
                        {"summary", f.summary},
                        {"evidence", f.evidence},
                        {"explains_elements", f.explains_elements},
                        {"explains_bin_mismatches", f.explains_bin_mismatches},
                        {"example", f.example ? index_json(*f.example) : Json(nullptr)}});
  }
  return findings;
}

Json fixes_json(const std::vector<VerifiedFix>& fixes, const SeedOptions& base) {
  Json out = Json::array();
  for (const VerifiedFix& v : fixes) {
    Json apply = Json::object();
    for (const auto& [flag, value] : option_changes(base, v.candidate.options)) {
      apply[flag] = value.empty() ? Json(true) : (value == "false" ? Json(false) : Json(value));
    }
    out.push_back({{"change", v.candidate.change},
                   {"apply", apply},
                   {"command", seed_command_line(v.candidate.options)},
                   {"rationale", v.candidate.rationale},
                   {"verified_parity", v.verified_parity},
                   {"bin_mismatch_count", v.bin_mismatch_count},
                   {"fp32_mismatch_count", v.fp32_mismatch_count},
                   {"error", v.error ? Json(*v.error) : Json(nullptr)}});
  }
  return out;
}

}  // namespace

std::string render_seed_json(const SeedResult& r, const std::optional<Explanation>& why,
                             const RunContext& context) {
  const BackendProfile& p = r.profile;
  Json j = {
      {"schema", "qparity.seed/1"},
      {"qparity_version", version()},
      {"command_line", context.command_line},
      {"scenario",
       {{"k", r.options.k},
        {"backend", r.options.backend},
        {"observer", to_string(r.options.observer)},
        {"rows", r.options.rows},
        {"weight_qscheme", to_string(r.options.weight_qscheme)},
        {"weight_quant_min", r.options.weight_quant_min},
        {"reduce_range", r.options.activation_reduce_range},
        {"weight_pattern", to_string(r.options.weight_pattern)},
        {"weight_observer_max", optional_json(r.options.weight_observer_max)},
        {"output_observer_max", optional_json(r.options.output_observer_max)},
        {"output_observer_min", optional_json(r.options.output_observer_min)},
        {"input_scale", optional_json(r.options.input_scale)},
        {"weight_scale", optional_json(r.options.weight_scale)},
        {"output_scale", optional_json(r.options.output_scale)},
        {"shape", {r.output_shape.n, r.output_shape.c, r.output_shape.h, r.output_shape.w}}}},
      {"profile",
       {{"name", p.name},
        {"requantization", to_string(p.requant)},
        {"accumulation", to_string(p.accumulation)},
        {"fused_fake_quant_rule", to_string(p.fused_fake_quant_rule)},
        {"verified_against_real_kernel", p.verified_against_real_kernel},
        {"provenance", p.provenance}}},
      {"paths",
       {{"fake_quant", path_json(r.fake_quant, r.output_shape)},
        {"int8", path_json(r.int8, r.output_shape)}}},
      {"compare", compare_json(r.compare)},
  };
  if (!context.budgets.empty()) j["budgets"] = budgets_json(context.budgets);
  if (why) {
    const Diagnosis& d = why->diagnosis;
    j["diagnosis"] = diagnosis_json(d);
    j["diagnosis_summary"] = {
        {"paths_agree", d.paths_agree},
        {"first_parting_point",
         d.first_parting_point ? Json(*d.first_parting_point) : Json(nullptr)},
        {"qparams_differ_without_effect", d.differing_without_effect},
        {"mismatched_elements", d.mismatched_elements},
        {"unexplained_elements", d.unexplained_elements}};
    j["fixes"] = fixes_json(why->fixes, r.options);
    if (why->trace) {
      Json stages = Json::array();
      for (const TraceRow& row : why->trace->rows) {
        stages.push_back({{"stage", row.stage},
                          {"fake_quant", row.fake_quant},
                          {"int8", row.int8},
                          {"differs", row.differs}});
      }
      j["trace"] = {{"index", index_json(why->trace->index)},
                    {"stages", stages},
                    {"first_difference", why->trace->first_difference
                                             ? Json(why->trace->rows[*why->trace->first_difference].stage)
                                             : Json(nullptr)}};
    } else {
      j["trace"] = nullptr;
    }
  }
  // Any byte that is not UTF-8 (a file name) becomes U+FFFD instead of an exception.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace qparity::cli
