// qparity-model: `qparity model QAT.pt INT8.pt --input x.pt --backend qnnpack`. The one part of
// qparity that links libtorch (to read TorchScript and run the real models); `qparity model`
// hands its arguments to this program so the main CLI starts without loading libtorch.
//
// Every bad input ends the same way: one line on stderr, "qparity model: error: <what>", naming
// the file or option and what is wrong, exit code 2, and no output file (outputs are checked at
// the start, written to temporaries once every report has been rendered, and only then renamed
// into place, all of them or none; see ../qparity/atomic_file.h).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>
#include <fstream>
#include <iostream>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "../qparity/atomic_file.h"
#include "../qparity/command_errors.h"
#include "../qparity/command_line.h"
#include "../qparity/option_checks.h"
#include "model_html.h"
#include "model_report.h"
#include "qparity/diagnose/model_diagnosis.h"
#include "qparity/diagnose/model_trace.h"
#include "qparity/diff/layer_compare.h"
#include "qparity/model/convert.h"
#include "qparity/run/executor.h"
#include "torchscript_frontend.h"

namespace {

using namespace qparity;

// "qparity model", or "qparity explain" when `qparity explain QAT.pt ...` started this program
// (an element trace: --layer is required and the console shows the trace only).
std::string g_command = "qparity model";
bool explain_mode() { return g_command == "qparity explain"; }

// The largest input --input-shape makes: 2^28 float32 values (1 GiB); the emulation keeps every
// activation of both paths besides, so anything near this is already far beyond a real model.
constexpr int64_t kMaxSyntheticElements = int64_t{1} << 28;

struct ModelOptions {
  std::string qat_file;
  std::string int8_file;
  std::string input_file;
  std::vector<int64_t> input_shape;  // --input-shape, split at commas by CLI11; empty = absent
  std::string backend;
  int threads = 1;
  int torch_threads = 1;
  bool no_order_check = false;
  bool no_reference = false;
  bool no_diagnosis = false;
  bool check_diagnosis = false;
  std::string trace_layer;            // --layer: trace one element of this layer
  std::vector<int64_t> trace_index;   // --index: its position (empty: the layer's first mismatch)
  std::optional<std::string> json_path;
  std::optional<std::string> html_path;
  std::vector<std::string> fail_on;
};

// A deterministic input: element i is sin(i * 0.37) (values in [-1, 1], every element distinct).
run::Tensor synthetic_input(const std::vector<int64_t>& dims) {
  std::vector<float> v(static_cast<size_t>(model::numel(dims)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(std::sin(static_cast<double>(i) * 0.37));
  return run::float_tensor(dims, std::move(v));
}

// --input-shape "1,3,224,224" (each item an integer by its CLI11 transform): 1 to 8 positive
// dimensions, at most kMaxSyntheticElements elements in all.
std::vector<int64_t> check_input_shape(const std::vector<int64_t>& dims) {
  std::string text;
  for (size_t i = 0; i < dims.size(); ++i) text += (i > 0 ? "," : "") + std::to_string(dims[i]);
  const std::string what = "--input-shape '" + text + "': ";
  for (const int64_t d : dims) {
    if (d > kMaxSyntheticElements) {
      throw std::invalid_argument(what + "dimension '" + std::to_string(d) + "' is too large");
    }
    if (d <= 0) {
      throw std::invalid_argument(what + "dimension " + std::to_string(d) +
                                  " must be a positive integer");
    }
  }
  if (dims.size() > 8)
    throw std::invalid_argument(what + fmt::format("{} dimensions; at most 8", dims.size()));
  int64_t count = 1;
  for (const int64_t d : dims) {
    if (count > kMaxSyntheticElements / d) {
      throw std::invalid_argument(
          what +
          fmt::format("more than {} elements (2^28), too large an input", kMaxSyntheticElements));
    }
    count *= d;
  }
  return dims;
}

// An input file must exist, be a regular file, be readable and not be empty.
void check_readable(const std::string& path, const std::string& role) {
  const std::string what = role + " '" + path + "': ";
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (path.empty()) throw std::invalid_argument(role + ": the file name is empty");
  if (ec || !std::filesystem::exists(status)) throw std::invalid_argument(what + "no such file");
  if (std::filesystem::is_directory(status))
    throw std::invalid_argument(what + "is a directory, not a file");
  if (!std::filesystem::is_regular_file(status))
    throw std::invalid_argument(what + "is not a regular file");
  if (std::ifstream in(path, std::ios::binary); !in) {
    throw std::invalid_argument(what + "cannot be read (" + std::strerror(errno) + ")");
  }
  if (std::filesystem::file_size(path, ec) == 0 && !ec)
    throw std::invalid_argument(what + "is empty (0 bytes)");
}

// CI budgets over every layer: max-dq=N, bin-mismatch=N (per layer, integers >= 0) and
// sqnr-min=DB (every layer's SQNR at least DB).
struct Budget {
  std::string name;
  double limit = 0.0;
};

std::vector<Budget> parse_budgets(const std::vector<std::string>& items) {
  std::vector<Budget> budgets;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    const std::string name = item.substr(0, eq);
    if (eq == std::string::npos) {
      throw std::invalid_argument("--fail-on: '" + item +
                                  "' is not NAME=LIMIT (NAME max-dq, bin-mismatch or sqnr-min)");
    }
    if (name != "max-dq" && name != "bin-mismatch" && name != "sqnr-min") {
      throw std::invalid_argument("--fail-on: unknown budget '" + name +
                                  "' (max-dq, bin-mismatch or sqnr-min)");
    }
    const std::string value = item.substr(eq + 1);
    double limit = 0.0;
    if (!CLI::detail::lexical_cast(value, limit) || !std::isfinite(limit)) {
      throw std::invalid_argument("--fail-on: the limit of " + name +
                                  " must be a finite number, got '" + value + "'");
    }
    if (name != "sqnr-min" && (limit < 0.0 || limit != std::floor(limit))) {
      throw std::invalid_argument(
          "--fail-on: " + name + " counts, its limit must be an integer >= 0, got '" + value + "'");
    }
    budgets.push_back({name, limit});
  }
  return budgets;
}

// Each budget measured at its worst layer: the most bins differing / largest |dq|, or the lowest
// SQNR.
std::vector<cli::ModelBudgetVerdict> check_budgets(const std::vector<Budget>& budgets,
                                                   const diff::ModelComparison& c) {
  std::vector<cli::ModelBudgetVerdict> verdicts;
  for (const auto& b : budgets) {
    cli::ModelBudgetVerdict v{b.name,
                              b.limit,
                              b.name == "sqnr-min" ? std::numeric_limits<double>::infinity() : 0.0,
                              {},
                              false};
    for (const auto& l : c.layers) {
      const double measured = b.name == "max-dq"         ? static_cast<double>(l.max_abs_dq)
                              : b.name == "bin-mismatch" ? static_cast<double>(l.bin_mismatch_count)
                                                         : l.sqnr_db;
      const bool worse = b.name == "sqnr-min" ? measured < v.measured : measured > v.measured;
      if (worse || (v.layer.empty() && measured == v.measured)) {
        v.measured = measured;
        v.layer = l.name;
      }
    }
    v.exceeded = b.name == "sqnr-min" ? v.measured < b.limit : v.measured > b.limit;
    verdicts.push_back(std::move(v));
  }
  return verdicts;
}

// One line: libtorch's messages can span many lines (TorchScript tracebacks end with the Python
// exception, "RuntimeError: ..."; c10 errors go on with "Exception raised from ...").
std::string one_line(const std::string& message) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= message.size()) {
    const size_t nl = message.find('\n', start);
    std::string line =
        message.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t'))
      line.pop_back();
    if (!line.empty()) lines.push_back(line);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  if (lines.empty()) return "unknown error";
  if (lines.size() > 1 && message.find("Traceback of TorchScript") != std::string::npos) {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
      const size_t colon = it->find("Error: ");
      if (colon != std::string::npos && it->find(' ') > colon) return it->substr(colon + 7);
    }
  }
  return lines.front();
}

// Runs a frontend step reading `file`; a failure that does not name the file yet gets
// "<file>: <context>" in front of it.
template <typename Step>
auto naming_file(const std::string& file, const std::string& context, Step&& step)
    -> decltype(step()) {
  try {
    return step();
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    const std::string line = one_line(e.what());
    if (line.rfind(file + ":", 0) == 0) throw std::invalid_argument(line);
    throw std::invalid_argument(file + ": " + context + line);
  }
}

// The two paths are independent: with two or more threads the QAT path runs on a second one.
// Each path's results are the same either way (neither reads the other's state).
std::pair<run::RunResult, run::RunResult> run_both_paths(const model::Graph& qat, const model::Graph& int8,
                                                         const run::Tensor& input, const run::RunOptions& fq_options,
                                                         const run::RunOptions& q_options, int threads) {
  if (threads < 2) return {run::run_graph(qat, input, fq_options), run::run_graph(int8, input, q_options)};
  auto fq = std::async(std::launch::async, [&] { return run::run_graph(qat, input, fq_options); });
  run::RunResult q = run::run_graph(int8, input, q_options);  // on a throw, fq's destructor waits for it
  return {fq.get(), std::move(q)};
}

// Which QAT bins libtorch's float kernels' summation order decides: each order-dependent layer
// again with qparity's sequential reference kernels on the same inputs.
void check_summation_order(const model::Graph& qat, const run::RunResult& fq_run, const BackendProfile& profile,
                           int torch_threads, cli::ModelReport& report) {
  const run::RunOptions reference_order{.profile = &profile, .framework_threads = torch_threads};
  const auto counts = diff::order_sensitive_bins(qat, fq_run, reference_order);
  for (auto& layer : report.comparison.layers) {
    if (const auto it = counts.find(layer.name); it != counts.end()) layer.order_sensitive_bins = it->second;
  }
  report.order_check = "qparity's sequential reference kernels instead of " + report.float_kernels;
}

void progress(const std::string& line) {
  if (::isatty(STDERR_FILENO) == 1) std::cerr << g_command << ": " << line << "\n";
}

// Two-file form: qparity's convert() of the QAT model against the real int8 model, to the bit.
// FX inserts its fake-quants as top-level modules (activation_post_process_N); eager mode
// nests them in the module they observe.
bool is_fx(const model::Graph& qat) {
  return std::any_of(qat.fake_quants.begin(), qat.fake_quants.end(), [](const model::FakeQuantPoint& p) {
    return p.module.rfind("activation_post_process_", 0) == 0 && p.module.find('.') == std::string::npos;
  });
}

// Returns qparity's convert() of the QAT model when it equals the int8 model to the bit: the
// diagnosis then knows the rules behind the int8 qparams.
std::optional<model::Graph> check_convert(const model::Graph& qat, const model::Graph& int8,
                                          const BackendProfile& profile, cli::ModelReport& report) {
  if (is_fx(qat)) {
    report.convert_mode = "unavailable";
    report.convert_error = "an FX model; qparity emulates eager convert() only";
    return std::nullopt;
  }
  try {
    model::Graph converted = model::convert_eager(qat, profile);
    report.convert_differences = model::compare_converted(converted, int8);
    report.convert_mode = "checked";
    if (report.convert_differences.empty()) return converted;
  } catch (const std::invalid_argument& e) {
    report.convert_mode = "unavailable";
    report.convert_error = e.what();
  }
  return std::nullopt;
}

// --layer NAME [--index i,j,..]: the layer's position in the comparison and the element's flat
// index (default: the layer's first mismatching element, else element 0).
std::pair<size_t, int64_t> traced_element(const ModelOptions& o, const diff::ModelComparison& c) {
  size_t layer = c.layers.size();
  for (size_t i = 0; i < c.layers.size(); ++i) {
    if (c.layers[i].name == o.trace_layer) layer = i;
  }
  if (layer == c.layers.size()) {
    std::string names;
    for (size_t i = 0; i < c.layers.size() && i < 6; ++i) names += (i > 0 ? ", " : "") + c.layers[i].name;
    throw std::invalid_argument("--layer '" + o.trace_layer + "': no such layer in the int8 model (its layers: " + names +
                                (c.layers.size() > 6 ? ", ...)" : ")"));
  }
  const auto& l = c.layers[layer];
  if (o.trace_index.empty()) return {layer, l.first_mismatch ? l.first_mismatch->index : 0};
  if (o.trace_index.size() != l.dims.size()) {
    throw std::invalid_argument(fmt::format("--index: layer '{}' outputs {}: give {} indices, got {}", l.name,
                                            model::to_string(l.dims), l.dims.size(), o.trace_index.size()));
  }
  int64_t flat = 0;
  for (size_t k = 0; k < l.dims.size(); ++k) {
    if (o.trace_index[k] < 0 || o.trace_index[k] >= l.dims[k]) {
      throw std::invalid_argument(fmt::format("--index: index {} is {}, outside [0, {}] of layer '{}''s output {}", k,
                                              o.trace_index[k], l.dims[k] - 1, l.name, model::to_string(l.dims)));
    }
    flat = flat * l.dims[k] + o.trace_index[k];
  }
  return {layer, flat};
}

int run_model(const ModelOptions& o, const std::string& command_line) {
  if (o.input_file.empty() && o.input_shape.empty()) {
    throw std::invalid_argument(
        "--input: give an input, --input FILE (.pt or .npy) or --input-shape N,C,H,W");
  }
  check_readable(o.qat_file, "QAT model");
  const bool one_file = o.int8_file.empty();  // the int8 model is qparity's own convert()
  if (!one_file) check_readable(o.int8_file, "int8 model");
  if (!o.input_file.empty()) check_readable(o.input_file, "--input");
  const std::vector<int64_t> shape =
      o.input_file.empty() ? check_input_shape(o.input_shape) : std::vector<int64_t>{};
  const auto budgets = parse_budgets(o.fail_on);
  cli::check_distinct_outputs(
      {{"QAT model", o.qat_file},
       {"int8 model", one_file ? std::nullopt : std::optional(o.int8_file)},
       {"--input", o.input_file.empty() ? std::nullopt : std::optional(o.input_file)},
       {"--json", o.json_path},
       {"--html", o.html_path}});
  const auto profile = make_backend_profile(o.backend, detect_cpu_features());
  if (!profile) throw std::invalid_argument("--backend: unknown engine '" + o.backend + "'");
  // Without the engine in this libtorch, only the one-file form can run: qparity derives the int8
  // model itself, and the QAT model's ops do not depend on the quantized engine.
  const bool engine_here = torchfe::engine_available(o.backend);
  if (o.check_diagnosis && !engine_here) {
    throw std::invalid_argument("--check-diagnosis: this libtorch has no " + o.backend +
                                " engine to check the diagnosis with");
  }
  if (!engine_here && !one_file) {
    throw std::invalid_argument(
        "--backend " + o.backend + ": this libtorch build has no " + o.backend +
        " engine, so the int8 model cannot be loaded with it (Debian's PyTorch 1.13.1 has "
        "qnnpack and onednn); the one-file form (QAT.pt only) emulates it without loading an int8 model");
  }
  cli::OutputFiles outputs({{"--json", o.json_path}, {"--html", o.html_path}});
  const run::Tensor input =
      o.input_file.empty()
          ? synthetic_input(shape)
          : naming_file(o.input_file, "", [&] { return torchfe::load_input(o.input_file); });
  const std::string input_text =
      model::to_string(input.dims) +
      (o.input_file.empty() ? " (--input-shape)" : " from " + o.input_file);
  const torchfe::LoadOptions load{engine_here ? o.backend : std::string("qnnpack"), o.torch_threads};
  progress("reading and running " + o.qat_file + " ...");
  torchfe::LoadedPath qat =
      naming_file(o.qat_file, "the model fails on the input " + input_text + ": ",
                  [&] { return torchfe::load_qat_model(o.qat_file, input, load); });
  cli::ModelReport report;
  torchfe::LoadedPath int8;
  std::optional<model::Graph> converted;  // equal to the int8 model: it knows its qparams' rules
  if (one_file) {
    if (is_fx(qat.graph)) {
      throw std::invalid_argument(o.qat_file + ": an FX model: the one-file form emulates eager convert() only; "
                                  "pass its convert_fx model as INT8.pt");
    }
    int8.graph = naming_file(o.qat_file, "", [&] { return model::convert_eager(qat.graph, *profile); });
    report.convert_mode = "derived";
  } else {
    progress("reading and running " + o.int8_file + " ...");
    int8 = naming_file(o.int8_file, "the model fails on the input " + input_text + ": ",
                       [&] { return torchfe::load_int8_model(o.int8_file, input, load); });
    model::adopt_layer_names(int8.graph, qat.graph);
    converted = check_convert(qat.graph, int8.graph, *profile, report);
  }
  auto kernels = torchfe::make_torch_float_kernels(o.torch_threads);
  // Both paths emulate the PyTorch thread count's elementwise loop split (eq. 6.9).
  const run::RunOptions fq_options{.profile = &*profile, .float_kernels = kernels.get(),
                                   .framework_threads = o.torch_threads};
  const run::RunOptions q_options{.profile = &*profile, .framework_threads = o.torch_threads};
  const auto [fq_run, q_run] = run_both_paths(qat.graph, int8.graph, input, fq_options, q_options, o.threads);
  report.command_line = command_line;
  report.qat_file = o.qat_file;
  report.int8_file = o.int8_file;
  report.input_description = o.input_file.empty() ? "synthetic sin(0.37 i)" : o.input_file;
  report.input_dims = input.dims;
  report.profile = *profile;
  report.torch_threads = o.torch_threads;
  report.float_kernels = std::string(kernels->name());
  try {
    report.comparison = diff::compare_paths(qat.graph, fq_run, int8.graph, q_run);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(o.qat_file + (one_file ? "" : " and " + o.int8_file) + ": " + e.what());
  }
  if (!o.no_order_check) check_summation_order(qat.graph, fq_run, *profile, o.torch_threads, report);
  if (o.no_diagnosis) {
    report.diagnosis_skipped = "--no-diagnosis";
  } else {
    progress("diagnosing: each layer on the QAT path's input, its causes, its impact ...");
    diagnose::ModelDiagnosisOptions options{.profile = &*profile, .framework_threads = o.torch_threads,
                                            .threads = o.threads, .converted = converted ? &*converted : nullptr,
                                            .qat_options = &fq_options};
    const diagnose::ModelPaths paths{qat.graph, fq_run, int8.graph, q_run};
    report.diagnosis = diagnose::diagnose_model(paths, report.comparison, options);
    if (o.check_diagnosis) {
      progress("checking the diagnosis with libtorch's int8 conv / linear ...");
      const auto real_kernels = torchfe::make_torch_quantized_kernels(o.torch_threads);
      options.int8_kernels = real_kernels.get();
      options.qat_options = nullptr;  // the fixes re-run the QAT path only: nothing to check
      const diagnose::ModelDiagnosis real = diagnose::diagnose_model(paths, report.comparison, options);
      const auto stats = real_kernels->stats();
      report.diagnosis_check = cli::ModelReport::DiagnosisCheck{
          std::string(real_kernels->name()), diagnose::compare_diagnoses(*report.diagnosis, real, report.comparison),
          stats.ran, stats.declined, stats.first_declined};
    }
  }
  const run::Tensor& fq_out = fq_run.values[static_cast<size_t>(qat.graph.output)];
  const run::Tensor& q_out = q_run.values[static_cast<size_t>(int8.graph.output)];
  report.fake_quant_output = cli::output_values(fq_out);
  report.int8_output = cli::output_values(q_out);
  for (const auto& use : fq_run.fake_quant_uses) {
    if (use.observer_moved)
      report.moved_points.push_back(qat.graph.fake_quants[static_cast<size_t>(use.point)].module);
  }
  if (o.no_reference) {
    report.reference_skipped = "--no-reference";
  } else if (!engine_here) {
    // This libtorch's fused fake-quant derives qparams with ATen's rule; a build with the engine
    // uses the engine's (the profile's fused_fake_quant_rule), which is what is emulated.
    report.reference_skipped = "this libtorch has no " + o.backend + " engine: its QAT run is not the run of a " +
                               o.backend + " build, and there is no real int8 model to run";
  } else {
    report.qat_reference = diff::check_reference(qat.graph, fq_run, qat.reference, qat.output);
    if (!one_file) report.int8_reference = diff::check_reference(int8.graph, q_run, int8.reference, int8.output);
  }
  if (!o.trace_layer.empty()) {
    const auto [layer, index] = traced_element(o, report.comparison);
    report.trace = diagnose::trace_model_element({qat.graph, fq_run, int8.graph, q_run}, report.comparison, layer,
                                                 index, *profile);
  }
  report.budgets = check_budgets(budgets, report.comparison);
  // Every report is rendered and written to its temporary before any file is moved into place:
  // all of them appear, or none.
  if (outputs.wants("--json")) outputs.set("--json", cli::render_model_json(report));
  if (outputs.wants("--html")) outputs.set("--html", cli::render_model_html(report));
  if (explain_mode()) {
    outputs.write_all(cli::render_trace_console(report));
    return report.trace && report.trace->fake_quant_bin != report.trace->int8_bin ? 1 : 0;
  }
  outputs.write_all(cli::render_model_console(report));
  int status = 0;
  for (const auto& v : report.budgets) {
    if (!v.exceeded) continue;
    std::cerr << fmt::format("{}: budget {}={} exceeded: {} in layer {}\n", g_command, v.budget,
                             v.limit, cli::budget_measure_text(v), v.layer);
    status = 1;
  }
  const bool diverge = report.comparison.first_divergent.has_value();
  return budgets.empty() && diverge ? 1 : status;
}

}  // namespace

int main(int argc, char** argv) {
  cli::install_output_safeguards();
  const std::string program = argc > 0 ? argv[0] : "qparity-model";
  if (program.ends_with(" explain")) g_command = "qparity explain";
  if (const std::string error = cli::empty_attached_value_error(argc, argv); !error.empty()) {
    std::cerr << g_command << ": error: " << error << " (run '" << g_command << " --help' for usage)\n";
    return qparity::cli::kErrorExitCode;
  }
  CLI::App app{
      "qparity model: run a PyTorch 1.13.1 QAT model (traced after prepare_qat) and its converted "
      "int8 model\n"
      "(scripted after convert) down qparity's emulation of both paths, compare them layer by "
      "layer, and\n"
      "check the emulation against libtorch running the real models.\n"
      "As `qparity explain QAT.pt [INT8.pt] ... --layer NAME [--index I,J,..]`: trace one element only.",
      g_command};
  ModelOptions o;
  app.add_option("QAT.pt", o.qat_file,
                 "The QAT model: torch.jit.trace of the model after prepare_qat (eager mode)")
      ->required();
  app.add_option("INT8.pt", o.int8_file,
                 "Its converted int8 model: torch.jit.script(convert(model))");
  auto* input = app.add_option("--input", o.input_file,
                               "Input tensor: a float32 tensor saved with torch.save (.pt) or "
                               "numpy.save (.npy, '<f4', C\n"
                               "order); NaN and Inf are refused")
                    ->type_name("FILE");
  auto* shape = app.add_option("--input-shape", o.input_shape,
                               "Use a deterministic input of this shape instead (element i = "
                               "sin(0.37 i)), e.g. 1,3,224,224")
                    ->delimiter(',')
                    ->transform(cli::decimal_integer("; give the dimensions as N,C,H,W"))
                    ->type_name("N,C,H,W");
  input->excludes(shape);
  shape->excludes(input);
  app.add_option("--backend", o.backend,
                 "The quantized engine the int8 model was converted for and runs on (Debian's "
                 "libtorch has\n"
                 "qnnpack and onednn; fbgemm needs a libtorch built with FBGEMM)")
      ->required()
      ->check(CLI::IsMember({"qnnpack", "onednn", "fbgemm"}));
  app.add_option("--threads", o.threads,
                 "qparity's own threads; 2 or more run the two paths at once (results never depend on it;\n"
                 "default: this machine's CPU count)")
      ->check(CLI::Range(1, 256))
      ->default_val(std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 256));
  auto* no_diagnosis = app.add_flag("--no-diagnosis", o.no_diagnosis,
               "Skip the diagnosis: each int8 layer re-run on the QAT path's input (its own error and the\n"
               "inherited), the causes of its own error, and each layer's impact on the final output");
  app.add_flag("--check-diagnosis", o.check_diagnosis,
               "Run the diagnosis a second time with libtorch's own quantized conv / linear in every re-run\n"
               "and report any difference (proof that its counts hold for the real kernels; slower)")
      ->excludes(no_diagnosis);
  auto* layer = app.add_option("--layer", o.trace_layer,
                               "Trace one element of this layer (named as in the table) through both paths, stage by\n"
                               "stage: taps, sum and accumulator, bias, requantization or fake-quant, bins")
                    ->type_name("NAME");
  app.add_option("--index", o.trace_index,
                 "The element to trace, one index per output dimension, e.g. 0,3,7,12 (default: the layer's\n"
                 "first mismatching element)")
      ->delimiter(',')
      ->transform(cli::decimal_integer("; give the indices as i,j,k,..."))
      ->type_name("I,J,..")
      ->needs(layer);
  app.add_flag("--no-order-check", o.no_order_check,
               "Skip counting the QAT bins that the float kernels' summation order decides (each conv,\n"
               "linear, batch-norm and pooling layer re-run with qparity's sequential kernels)");
  app.add_option("--torch-threads", o.torch_threads,
                 "PyTorch's thread count to emulate: its float conv backend choice depends on it")
      ->check(CLI::Range(1, 256))
      ->default_val(1);
  app.add_flag("--no-reference", o.no_reference,
               "Do not check the emulation against libtorch's run of the real models");
  app.add_option("--json", o.json_path,
                 "Write the report as JSON (schema qparity.model/1, docs/schema/) to this file")
      ->type_name("FILE");
  app.add_option(
         "--html", o.html_path,
         "Write a self-contained HTML report (per-layer table, SQNR and mismatch share along the\n"
         "network) to this file")
      ->type_name("FILE");
  app.add_option(
         "--fail-on", o.fail_on,
         "CI budgets over every layer, NAME=LIMIT[,...]: max-dq=N, bin-mismatch=N (per layer),\n"
         "sqnr-min=DB (exit 1 naming each budget exceeded, 0 when all hold)")
      ->delimiter(',')
      ->type_name("NAME=LIMIT");
  app.footer(
      "Examples:\n"
      "  qparity model resnet18_qat.pt resnet18_int8.pt --input x.pt --backend qnnpack --json "
      "r.json\n"
      "  qparity model qat.pt int8.pt --input-shape 1,3,224,224 --backend onednn --html r.html "
      "--no-reference\n"
      "  qparity model qat.pt int8.pt --input x.npy --backend qnnpack --fail-on "
      "max-dq=1,sqnr-min=30\n"
      "Exit codes: 0 the paths agree bin for bin in every layer (or every budget holds), 1 bins "
      "diverge\n"
      "(or a budget is exceeded), 2 error: one line on stderr naming the file or option, and no "
      "output\n"
      "file is written. --json and --html files appear complete or not at all. See docs/model.md.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help: a failed write to stdout is an error too
      const int code = app.exit(e);
      std::cout.flush();
      if (!std::cout) {
        std::cerr << g_command << ": error: cannot write to stdout\n";
        return qparity::cli::kErrorExitCode;
      }
      return code;
    }
    std::cerr << g_command << ": error: " << one_line(e.what()) << " (run '" << g_command << " --help' for usage)\n";
    return qparity::cli::kErrorExitCode;
  }
  if (explain_mode() && o.trace_layer.empty()) {
    std::cerr << "qparity explain: error: --layer: name the layer whose element to trace (run 'qparity explain "
                 "--help' for usage)\n";
    return qparity::cli::kErrorExitCode;
  }
  // The command line as typed: `qparity model` (`qparity explain QAT.pt ...`) starts this program
  // as "<qparity's argv[0]> model" ("... explain").
  const std::string word = explain_mode() ? " explain" : " model";
  std::string line = program.ends_with(word) ? cli::shell_quote(program.substr(0, program.size() - word.size())) + word
                                             : cli::shell_quote(program);
  for (int i = 1; i < argc; ++i) line += " " + cli::shell_quote(argv[i]);
  try {
    return run_model(o, line);
  } catch (const std::bad_alloc&) {
    std::cerr << g_command << ": error: out of memory (the models or the input are too large for this machine)\n";
  } catch (const std::exception& e) {
    std::cerr << g_command << ": error: " << one_line(e.what()) << "\n";
  }
  return qparity::cli::kErrorExitCode;
}
