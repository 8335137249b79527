#include "explain_command.h"

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "atomic_file.h"
#include "command_errors.h"
#include "html_report.h"
#include "option_checks.h"
#include "qparity/diagnose/trace.h"
#include "qparity/version.h"

namespace qparity::cli {
namespace {

std::string shape_text(const Shape4& s) {
  return fmt::format("[{}, {}, {}, {}]", s.n, s.c, s.h, s.w);
}

std::string render_console(const SeedResult& r, const ElementExplanation& e, bool defaulted) {
  std::string out = fmt::format(
      "qparity explain: element [{}, {}, {}, {}] of the seed experiment (k = {:.17g}, backend {}, "
      "observer {}){}\n\n",
      e.index.n, e.index.c, e.index.h, e.index.w, r.options.k, r.profile.name,
      to_string(r.options.observer), defaulted ? ", the first mismatching element" : "");
  size_t width_a = 10, width_b = 10, width_s = 5;
  for (const TraceRow& row : e.rows) {
    width_s = std::max(width_s, row.stage.size());
    width_a = std::max(width_a, row.fake_quant.size());
    width_b = std::max(width_b, row.int8.size());
  }
  out += fmt::format("  {:<{}}  {:<{}}  {}\n", "stage", width_s, "fake-quant path", width_a,
                     "int8 path");
  for (size_t i = 0; i < e.rows.size(); ++i) {
    const TraceRow& row = e.rows[i];
    const char* mark = e.first_difference && *e.first_difference == i
                           ? "   <- first difference"
                           : (row.differs ? "   <- differs" : "");
    out += fmt::format("  {:<{}}  {:<{}}  {}{}\n", row.stage, width_s, row.fake_quant, width_a,
                       row.int8, mark);
  }
  const bool outputs_agree = e.fake_quant.output_bin == e.int8.output_bin &&
                             e.fake_quant.output_dequantized == e.int8.output_dequantized;
  if (e.first_difference) {
    const TraceRow& row = e.rows[*e.first_difference];
    out += fmt::format("\nthe paths first differ at: {} ({} vs {})\n", row.stage, row.fake_quant,
                       row.int8);
    if (outputs_agree) out += "the output of this element is nevertheless identical in both paths\n";
  } else {
    out += "\nthis element is identical in both paths at every stage\n";
  }
  return out;
}

std::string render_json(const SeedResult& r, const ElementExplanation& e,
                        const std::string& command_line) {
  using Json = nlohmann::ordered_json;
  Json rows = Json::array();
  for (const TraceRow& row : e.rows) {
    rows.push_back({{"stage", row.stage},
                    {"fake_quant", row.fake_quant},
                    {"int8", row.int8},
                    {"differs", row.differs}});
  }
  Json j = {{"schema", "qparity.explain/1"},
            {"qparity_version", version()},
            {"command_line", command_line},
            {"scenario",
             {{"k", r.options.k},
              {"backend", r.options.backend},
              {"observer", to_string(r.options.observer)},
              {"rows", r.options.rows}}},
            {"index", {e.index.n, e.index.c, e.index.h, e.index.w}},
            {"stages", rows}};
  j["first_difference"] =
      e.first_difference ? Json(e.rows[*e.first_difference].stage) : Json(nullptr);
  // Any byte that is not UTF-8 (a file name) becomes U+FFFD instead of an exception.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace

ElementIndex check_index(const std::vector<int64_t>& parts, const Shape4& shape) {
  if (parts.size() != 4) {
    std::string text;
    for (size_t i = 0; i < parts.size(); ++i) text += (i > 0 ? "," : "") + std::to_string(parts[i]);
    throw std::invalid_argument("--index: '" + text + "' has " + std::to_string(parts.size()) +
                                " numbers; it needs four: n,c,h,w");
  }
  const int64_t limits[4] = {shape.n, shape.c, shape.h, shape.w};
  const char* names[4] = {"n", "c", "h", "w"};
  for (int i = 0; i < 4; ++i) {
    if (parts[static_cast<size_t>(i)] < 0 || parts[static_cast<size_t>(i)] >= limits[i]) {
      throw std::invalid_argument(fmt::format("--index: {} = {} is outside the output shape {} ({} "
                                              "must be in [0, {}])",
                                              names[i], parts[static_cast<size_t>(i)],
                                              shape_text(shape), names[i], limits[i] - 1));
    }
  }
  return {parts[0], parts[1], parts[2], parts[3]};
}

void add_explain_options(CLI::App& command, ExplainCommandOptions& o) {
  add_seed_options(command, o.seed);
  command.add_option("--index", o.index,
                     "Output element to trace, as n,c,h,w (default: the first mismatching element; "
                     "[0, 0, 0, 0] when the paths agree)")
      ->delimiter(',')
      ->transform(decimal_integer("; give four integers n,c,h,w"))
      ->type_name("N,C,H,W");
}

int run_explain_command(const ExplainCommandOptions& raw, const std::string& command_line) {
  return run_reporting_errors("qparity explain", "try fewer --rows", [&]() -> int {
    // explain runs no diagnosis: it needs the memory of `seed --no-diagnosis` (measured).
    SeedCommandOptions seed = raw.seed;
    seed.no_diagnosis = true;
    const SeedOptions options = parse_seed_options(seed);
    if (!raw.seed.fail_on.empty()) {
      throw std::invalid_argument("--fail-on: budgets apply to `seed` and `sweep`, not to `explain`");
    }
    check_distinct_outputs({{"--json", raw.seed.json_path}, {"--html", raw.seed.html_path}});
    OutputFiles outputs({{"--json", raw.seed.json_path}, {"--html", raw.seed.html_path}});
    const SeedExperiment experiment(options, detect_cpu_features());
    ElementIndex index;
    const bool defaulted = raw.index.empty();
    if (!defaulted) index = check_index(raw.index, experiment.output_shape());
    const SeedResult result = run_experiment(experiment);
    if (defaulted && result.compare.first_mismatch) index = result.compare.first_mismatch->index;
    const ElementExplanation e = explain_element(experiment, result, index);
    if (outputs.wants("--json")) outputs.set("--json", render_json(result, e, command_line));
    if (outputs.wants("--html")) {
      outputs.set("--html", render_explain_html(result, e, RunContext{command_line, {}}));
    }
    outputs.write_all(
        render_console(result, e, defaulted && result.compare.first_mismatch.has_value()));
    const bool outputs_agree = e.fake_quant.output_bin == e.int8.output_bin &&
                               e.fake_quant.output_dequantized == e.int8.output_dequantized;
    return outputs_agree ? 0 : 1;
  });
}

}  // namespace qparity::cli
