// qparity-model: `qparity model QAT.pt INT8.pt --input x.pt --backend qnnpack`. The one part of
// qparity that links libtorch (to read TorchScript and run the real models); `qparity model`
// hands its arguments to this program so the main CLI starts without loading libtorch.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "../qparity/atomic_file.h"
#include "../qparity/command_errors.h"
#include "model_report.h"
#include "qparity/diff/layer_compare.h"
#include "qparity/run/executor.h"
#include "torchscript_frontend.h"

namespace {

using namespace qparity;

struct ModelOptions {
  std::string qat_file;
  std::string int8_file;
  std::string input_file;
  std::vector<int64_t> input_shape;
  std::string backend;
  int threads = 1;
  int torch_threads = 1;
  bool no_reference = false;
  std::optional<std::string> json_path;
  std::vector<std::string> fail_on;
};

// A deterministic input: element i is sin(i * 0.37) (values in [-1, 1], every element distinct).
run::Tensor synthetic_input(const std::vector<int64_t>& dims) {
  std::vector<float> v(static_cast<size_t>(model::numel(dims)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(std::sin(static_cast<double>(i) * 0.37));
  return run::float_tensor(dims, std::move(v));
}

struct Budget {
  std::string name;
  double limit = 0.0;
};

std::vector<Budget> parse_budgets(const std::vector<std::string>& items) {
  std::vector<Budget> budgets;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    const std::string name = item.substr(0, eq);
    if (eq == std::string::npos || (name != "max-dq" && name != "bin-mismatch" && name != "sqnr-min")) {
      throw std::invalid_argument("--fail-on: '" + item + "' is not NAME=LIMIT with NAME max-dq, bin-mismatch or sqnr-min");
    }
    try {
      size_t used = 0;
      const double limit = std::stod(item.substr(eq + 1), &used);
      if (used != item.size() - eq - 1 || !std::isfinite(limit)) throw std::invalid_argument("");
      budgets.push_back({name, limit});
    } catch (const std::exception&) {
      throw std::invalid_argument("--fail-on: the limit in '" + item + "' is not a finite number");
    }
  }
  return budgets;
}

// Returns 1 when a layer exceeds a budget (one stderr line per exceeded budget), else 0.
int check_budgets(const std::vector<Budget>& budgets, const diff::ModelComparison& c) {
  int status = 0;
  for (const auto& b : budgets) {
    for (const auto& l : c.layers) {
      const double measured = b.name == "max-dq" ? static_cast<double>(l.max_abs_dq)
                              : b.name == "bin-mismatch" ? static_cast<double>(l.bin_mismatch_count)
                                                         : l.sqnr_db;
      const bool exceeded = b.name == "sqnr-min" ? measured < b.limit : measured > b.limit;
      if (exceeded) {
        std::cerr << fmt::format("qparity model: budget {}={} exceeded in layer {} ({})\n", b.name, b.limit, l.name, measured);
        status = 1;
        break;
      }
    }
  }
  return status;
}

int run_model(const ModelOptions& o, const std::string& command_line) {
  if (o.int8_file.empty()) {
    throw std::invalid_argument(
        "the one-file form (deriving the int8 model by emulating convert()) is not available yet; "
        "pass the converted int8 model as the second file");
  }
  const auto budgets = parse_budgets(o.fail_on);
  auto json = cli::reserve_output(o.json_path, "--json");
  const auto profile = make_backend_profile(o.backend, detect_cpu_features());
  if (!profile) throw std::invalid_argument("--backend: unknown engine '" + o.backend + "'");
  if (!torchfe::engine_available(o.backend)) {
    throw std::invalid_argument("--backend " + o.backend + ": this libtorch build has no " + o.backend +
                                " engine, so the int8 model cannot be loaded with it (Debian's PyTorch 1.13.1 has "
                                "qnnpack and onednn)");
  }
  const run::Tensor input = o.input_file.empty() ? synthetic_input(o.input_shape) : torchfe::load_input(o.input_file);
  const torchfe::LoadOptions load{o.backend, o.torch_threads};
  std::cerr << "qparity model: reading and running " << o.qat_file << " ...\n";
  torchfe::LoadedPath qat = torchfe::load_qat_model(o.qat_file, input, load);
  std::cerr << "qparity model: reading and running " << o.int8_file << " ...\n";
  torchfe::LoadedPath int8 = torchfe::load_int8_model(o.int8_file, input, load);
  auto kernels = torchfe::make_torch_float_kernels(o.torch_threads);
  const run::RunResult fq_run = run::run_graph(qat.graph, input, {.profile = &*profile, .float_kernels = kernels.get()});
  const run::RunResult q_run = run::run_graph(int8.graph, input, {.profile = &*profile});
  cli::ModelReport report;
  report.command_line = command_line;
  report.qat_file = o.qat_file;
  report.int8_file = o.int8_file;
  report.input_description = o.input_file.empty() ? "synthetic sin(0.37 i)" : o.input_file;
  report.input_dims = input.dims;
  report.profile = *profile;
  report.torch_threads = o.torch_threads;
  report.float_kernels = std::string(kernels->name());
  report.comparison = diff::compare_paths(qat.graph, fq_run, int8.graph, q_run);
  const run::Tensor& fq_out = fq_run.values[static_cast<size_t>(qat.graph.output)];
  const run::Tensor& q_out = q_run.values[static_cast<size_t>(int8.graph.output)];
  report.fake_quant_output = fq_out.values;
  report.int8_output = q_out.values;
  for (const auto& use : fq_run.fake_quant_uses) {
    if (use.observer_moved) report.moved_points.push_back(qat.graph.fake_quants[static_cast<size_t>(use.point)].module);
  }
  if (o.no_reference) {
    report.reference_skipped = "--no-reference";
  } else {
    report.qat_reference = diff::check_reference(qat.graph, fq_run, qat.reference, qat.output);
    report.int8_reference = diff::check_reference(int8.graph, q_run, int8.reference, int8.output);
  }
  std::cout << cli::render_model_console(report);
  if (json) json->commit(cli::render_model_json(report));
  const int budget_status = check_budgets(budgets, report.comparison);
  const bool diverge = report.comparison.first_divergent.has_value();
  return budget_status != 0 ? 1 : (o.fail_on.empty() && diverge ? 1 : 0);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "qparity model: run a PyTorch 1.13.1 QAT model (traced after prepare_qat) and its converted int8 model\n"
      "(scripted after convert) down qparity's emulation of both paths, compare them layer by layer, and\n"
      "check the emulation against libtorch running the real models.",
      "qparity model"};
  ModelOptions o;
  app.add_option("qat", o.qat_file, "The QAT model: torch.jit.trace of the model after prepare_qat (eager mode)")
      ->required()->check(CLI::ExistingFile);
  app.add_option("int8", o.int8_file, "Its converted int8 model: torch.jit.script(convert(model))")
      ->check(CLI::ExistingFile);
  auto* input = app.add_option("--input", o.input_file, "Input tensor: torch.save'd float32 tensor (.pt) or a .npy (float32, C order)")
                    ->check(CLI::ExistingFile);
  auto* shape = app.add_option("--input-shape", o.input_shape, "Use a deterministic input of this shape instead, e.g. 1,3,224,224")
                    ->delimiter(',')->expected(1, 8)->check(CLI::PositiveNumber);
  input->excludes(shape);
  app.add_option("--backend", o.backend, "The quantized engine the int8 model was converted for and runs on")
      ->required()->check(CLI::IsMember({"qnnpack", "onednn", "fbgemm"}));
  app.add_option("--threads", o.threads, "qparity's own threads (results never depend on it)")
      ->check(CLI::Range(1, 256))->default_val(1);
  app.add_option("--torch-threads", o.torch_threads,
                 "PyTorch's thread count to emulate: its float conv backend choice depends on it")
      ->check(CLI::Range(1, 256))->default_val(1);
  app.add_flag("--no-reference", o.no_reference, "Do not check the emulation against libtorch's run of the real models");
  app.add_option("--json", o.json_path, "Write the report as JSON (schema qparity.model/1) to this file");
  app.add_option("--fail-on", o.fail_on,
                 "CI budgets over every layer, NAME=LIMIT: max-dq, bin-mismatch, sqnr-min (exit 1 when exceeded)")
      ->delimiter(',');
  app.footer(
      "Example:\n"
      "  qparity model resnet18_qat.pt resnet18_int8.pt --input x.pt --backend qnnpack --json r.json\n"
      "Exit codes: 0 the paths agree bin for bin (or every budget holds), 1 bins diverge (or a budget\n"
      "is exceeded), 2 error.");
  try {
    app.parse(argc, argv);
    if (o.input_file.empty() && o.input_shape.empty()) throw CLI::ValidationError("--input", "give --input FILE or --input-shape N,C,H,W");
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "qparity model: error: " << e.what() << " (run 'qparity model --help' for usage)\n";
    return qparity::cli::kErrorExitCode;
  }
  std::string line = "qparity model";
  for (int i = 1; i < argc; ++i) line += std::string(" ") + argv[i];
  return qparity::cli::run_reporting_errors("qparity model", "the models are too large for this machine",
                                            [&] { return run_model(o, line); });
}
