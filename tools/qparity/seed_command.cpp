#include "seed_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <thread>

#include "atomic_file.h"
#include "command_errors.h"
#include "html_report.h"
#include "memory_check.h"
#include "option_checks.h"
#include "qparity/scenario/seed.h"
#include "reports.h"

namespace qparity::cli {
namespace {

// Refuses row counts whose run would not fit in the memory this process may use.
void check_memory(int64_t rows, bool diagnosis) {
  const std::optional<MemoryLimit> limit = read_memory_limit();
  const int64_t fit = limit ? seed_rows_that_fit(limit->bytes, diagnosis) : 0;
  check_fits(estimate_seed_memory(rows, diagnosis), limit, "--rows",
             fmt::format("{} rows{}", rows, diagnosis ? " with the diagnosis" : ""),
             fit > 0 ? fmt::format("use --rows {} or fewer{}", fit,
                                   diagnosis ? " (or --no-diagnosis)" : "")
                     : std::string("free some memory"));
}

}  // namespace

SeedOptions parse_seed_options(const SeedCommandOptions& raw) {
  // Each value alone was checked by its option's validators (add_seed_options).
  SeedOptions o;
  o.k = raw.k;
  o.backend = raw.backend;
  o.observer = parse_observer_kind(raw.observer).value();
  o.rows = raw.rows;
  o.weight_qscheme = parse_weight_qscheme(raw.weight_qscheme).value();
  o.weight_quant_min = raw.weight_quant_min;
  o.activation_reduce_range = raw.reduce_range;
  o.weight_pattern = parse_weight_pattern(raw.weight_pattern).value();
  o.weight_observer_max = raw.weight_observer_max;
  o.output_observer_max = raw.output_observer_max;
  o.output_observer_min = raw.output_observer_min;
  o.input_scale = raw.input_scale;
  o.weight_scale = raw.weight_scale;
  o.output_scale = raw.output_scale;
  validate_seed_options(o);
  check_memory(o.rows, !raw.no_diagnosis);
  return o;
}

void add_seed_options(CLI::App& command, SeedCommandOptions& o) {
  command.add_option("--k", o.k,
                     "Conv weight multiplier: weights are k*I (a float > 0, e.g. 1, 0.01, 3e2)")
      ->check(finite_number())
      ->check(positive_number())
      ->type_name("FLOAT")
      ->default_str("1.0");
  command.add_option("--backend", o.backend,
                     "Engine whose int8 numerics to emulate: fbgemm (the seed's; emulated from "
                     "source), qnnpack, onednn")
      ->check(one_of({"fbgemm", "qnnpack", "onednn"}, "backend"))
      ->type_name("NAME")
      ->capture_default_str();
  command.add_option("--observer", o.observer,
                     "Fake-quant module of the QAT model: fused (FusedMovingAvgObsFakeQuantize, as "
                     "the seed) or plain (FakeQuantize)")
      ->check(one_of({"fused", "plain"}, "observer"))
      ->type_name("KIND")
      ->capture_default_str();
  command
      .add_option("--rows", o.rows,
                  "Input height; the width is always the 256-value ramp (a run that would not fit "
                  "in the memory left, MemAvailable or a cgroup limit, is refused)")
      ->transform(decimal_integer())
      ->check(at_least(1))
      ->type_name("N")
      ->capture_default_str();
  command.add_option("--weight-qscheme", o.weight_qscheme,
                     "Weight fake-quant qscheme: per_tensor_symmetric (the seed), per_tensor_affine, "
                     "per_channel_symmetric or per_channel_affine (per output channel)")
      ->check(one_of({"per_tensor_symmetric", "per_tensor_affine", "per_channel_symmetric",
                      "per_channel_affine"},
                     "qscheme"))
      ->type_name("NAME")
      ->capture_default_str()
      ->group("Quantization knobs");
  command.add_option("--weight-quant-min", o.weight_quant_min,
                     "Weight quant_min, -128 to 0 (quant_max stays 127; PyTorch's ranges include 0); -127 gives the\n"
                     "symmetric [-127, 127]")
      ->transform(decimal_integer())
      ->check(in_range(-128, 126, " (the range ends at 127)"))
      ->type_name("INT")
      ->capture_default_str()
      ->group("Quantization knobs");
  command.add_flag("--reduce-range", o.reduce_range,
                   "Activation fake-quants with reduce_range=True ([0, 127] instead of [0, 255])")
      ->group("Quantization knobs");
  command.add_option("--weight-pattern", o.weight_pattern,
                     "Conv weights: identity (k*I, the seed), negative (-k*I) or mixed "
                     "(k*diag(1,-1,1)) or dense (k*[[1,.5,-.25],[-.5,1,.5],[.25,-.5,1]])")
      ->check(one_of({"identity", "negative", "mixed", "dense"}, "pattern"))
      ->type_name("NAME")
      ->capture_default_str()
      ->group("Quantization knobs");
  command.add_option("--weight-observer-max", o.weight_observer_max,
                     "Hand-set the weight observer's max_val to this value instead of max(W) = k")
      ->check(finite_number())
      ->type_name("FLOAT")
      ->group("Quantization knobs");
  command.add_option("--output-observer-min", o.output_observer_min,
                     "Hand-set the output observer's min_val to this value instead of 0 (a "
                     "negative min gives the output a nonzero zero point)")
      ->check(finite_number())
      ->type_name("FLOAT")
      ->group("Quantization knobs");
  command.add_option("--output-observer-max", o.output_observer_max,
                     "Hand-set the output observer's max_val to this value instead of k")
      ->check(finite_number())
      ->type_name("FLOAT")
      ->group("Quantization knobs");
  command.add_option("--input-scale", o.input_scale,
                     "Hand-set the input fake-quant scale to this value instead of 1/255")
      ->check(finite_number())
      ->check(positive_number())
      ->type_name("FLOAT")
      ->group("Quantization knobs");
  command.add_option("--weight-scale", o.weight_scale,
                     "Hand-set the weight fake-quant scale to this value instead of 2k/255")
      ->check(finite_number())
      ->check(positive_number())
      ->type_name("FLOAT")
      ->group("Quantization knobs");
  command.add_option("--output-scale", o.output_scale,
                     "Hand-set the output fake-quant scale to this value instead of k/255 (a fused "
                     "module overwrites hand-set scales)")
      ->check(finite_number())
      ->check(positive_number())
      ->type_name("FLOAT")
      ->group("Quantization knobs");
  command.add_flag("--no-diagnosis", o.no_diagnosis,
                   "Only compare: skip the diagnosis and the verification of fixes");
  command.add_option("--html", o.html_path,
                     "Also write a self-contained HTML report (plots, tables, diagnosis) to FILE")
      ->type_name("FILE");
  command.add_option("--fail-on", o.fail_on,
                     "CI budgets NAME=LIMIT, comma-separated or repeated (" + budget_help() +
                         "); exit 1 naming every budget exceeded, 0 when all hold")
      ->delimiter(',')
      ->check(budget_item())
      ->type_name("BUDGETS");
  command.add_option("--json", o.json_path,
                     "Also write the full result as JSON to FILE (see docs/json.md); written "
                     "atomically")
      ->type_name("FILE");
}

namespace {

// Re-runs, on the side, the fixes for the points whose grids differ: they need only the
// experiment's qparams, so they run while the experiment itself and the diagnosis do.
class EarlyFixes {
 public:
  EarlyFixes(const SeedExperiment& experiment, const CpuFeatures& cpu) {
    SeedResult qparams;
    qparams.fake_quant = experiment.derive_fake_quant_points();
    qparams.int8 = experiment.derive_int8_points();
    std::vector<FixCandidate> candidates =
        propose_fixes_for_points(experiment, qparams, points_with_differing_grids(qparams));
    thread_ = std::thread([this, candidates = std::move(candidates), cpu] {
      fixes_ = rerun_fixes(candidates, cpu);
    });
  }
  ~EarlyFixes() {
    if (thread_.joinable()) thread_.join();
  }
  EarlyFixes(const EarlyFixes&) = delete;
  EarlyFixes& operator=(const EarlyFixes&) = delete;

  std::vector<VerifiedFix> take() {
    thread_.join();
    return std::move(fixes_);
  }

 private:
  std::vector<VerifiedFix> fixes_;
  std::thread thread_;
};

// The diagnosis, its verified fixes and the first mismatch's trace. The reported fixes are
// those the diagnosis's findings call for, each verified by a full re-run (most were already
// re-run by `early`).
Explanation explain_run(const SeedExperiment& experiment, const SeedResult& result,
                        const CpuFeatures& cpu, EarlyFixes& early_fixes) {
  Explanation e{diagnose(experiment, result), {}, {}};
  std::vector<VerifiedFix> early = early_fixes.take();
  std::vector<FixCandidate> late;
  for (FixCandidate& c : propose_fixes(experiment, result, e.diagnosis)) {
    const auto done = std::find_if(early.begin(), early.end(), [&](const VerifiedFix& v) {
      return v.candidate.change == c.change;
    });
    if (done != early.end()) {
      e.fixes.push_back(*done);
    } else {
      late.push_back(std::move(c));
    }
  }
  for (VerifiedFix& v : rerun_fixes(late, cpu)) e.fixes.push_back(std::move(v));
  settle_parity(e.fixes, result);
  if (result.compare.first_mismatch) {
    e.trace = explain_element(experiment, result, result.compare.first_mismatch->index);
  }
  return e;
}

}  // namespace

int run_seed_command(const SeedCommandOptions& raw, const std::string& command_line) {
  return run_reporting_errors("qparity seed", "try fewer --rows", [&]() -> int {
    const SeedOptions options = parse_seed_options(raw);
    const std::vector<Budget> budgets = parse_budgets(raw.fail_on);
    check_distinct_outputs({{"--json", raw.json_path}, {"--html", raw.html_path}});
    OutputFiles outputs({{"--json", raw.json_path}, {"--html", raw.html_path}});
    const CpuFeatures cpu = detect_cpu_features();
    const SeedExperiment experiment(options, cpu);
    std::optional<EarlyFixes> early;
    if (!raw.no_diagnosis) early.emplace(experiment, cpu);
    const SeedResult result = run_experiment(experiment);
    std::optional<Explanation> why;
    if (early) why = explain_run(experiment, result, cpu, *early);
    RunContext context{command_line, {}};
    const Comparison& c = result.compare;
    context.budgets = check_budgets(
        budgets, {static_cast<double>(c.max_abs_delta_q), static_cast<double>(c.bin_mismatch_count),
                  static_cast<double>(c.fp32_mismatch_count), static_cast<double>(c.error_max),
                  c.error_mean});
    if (outputs.wants("--json")) outputs.set("--json", render_seed_json(result, why, context));
    if (outputs.wants("--html")) outputs.set("--html", render_seed_html(result, why, context));
    outputs.write_all(render_seed_console(result, why, context));
    if (!budgets.empty()) return report_budgets("qparity seed", context.budgets);
    return result.compare.bin_mismatch_count == 0 ? 0 : 1;
  });
}

}  // namespace qparity::cli
