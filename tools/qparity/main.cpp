// qparity: finds and explains where a fake-quantized (QAT) model and its int8 twin part.
// This file only parses the command line; the work is in the library and the commands.
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "qparity/version.h"
#include "atomic_file.h"
#include "command_line.h"
#include "explain_command.h"
#include "seed_command.h"
#include "sweep_command.h"

namespace {

constexpr int kUsageExitCode = 2;

std::string join_arguments(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) line += ' ';
    line += qparity::cli::shell_quote(argv[i]);
  }
  return line;
}

std::string version_line() { return "qparity " + std::string(qparity::version()); }

int usage_error(const std::string& message) {
  std::cerr << "qparity: error: " << qparity::cli::one_line_message(message)
            << " (run 'qparity --help' for usage)\n";
  return kUsageExitCode;
}

// --help and --version print through std::cout: a failed write (`> /dev/full`, a closed stdout)
// is an error too.
int checked_exit(const CLI::App& app, const CLI::Error& e) {
  const int code = app.exit(e);
  std::cout.flush();
  if (!std::cout) {
    std::cerr << "qparity: error: cannot write to stdout\n";
    return kUsageExitCode;
  }
  return code;
}

// One command per invocation, and the options after it: `qparity seed --rows 1 explain` and
// `qparity --rows 1 sweep` would otherwise run one command and drop the other's options.
std::string command_line_error(const CLI::App& app) {
  const std::vector<CLI::App*> commands = app.get_subcommands();
  if (commands.size() > 1) {
    return "one command per invocation, got '" + commands[0]->get_name() + "' and '" +
           commands[1]->get_name() + "'";
  }
  if (commands.size() == 1) {
    for (const CLI::Option* option : app.get_options()) {
      if (option->count() > 0) {
        return option->get_name() + " comes before the command '" + commands[0]->get_name() +
               "': options go after it (qparity " + commands[0]->get_name() + " " +
               option->get_name() + " ...)";
      }
    }
  }
  return "";
}

// `qparity model ...` runs qparity-model, installed beside this binary: only it links libtorch,
// so every other command starts without loading it. Returns only when it cannot be started.
// `qparity explain QAT.pt ...` (a model file where the seed's explain takes options) runs it too,
// as "<argv[0]> explain": an element trace of the user's model.
int exec_model_command(int argc, char** argv, const char* command = "model") {
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  const auto program = (error ? std::filesystem::path(argv[0]).parent_path() : self.parent_path()) / "qparity-model";
  std::vector<char*> args;
  // "<argv[0]> model": qparity-model records the command line as it was typed.
  std::string name = std::string(argv[0]) + " " + command;
  args.push_back(name.data());
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(program.c_str(), args.data());
  std::cerr << "qparity " << command << ": error: cannot start " << program.string() << " (" << std::strerror(errno)
            << "); it is built beside qparity when libtorch is installed (apt-get install libtorch-dev)\n";
  return kUsageExitCode;
}

}  // namespace

int main(int argc, char** argv) {
  // Keep freed buffers in the heap instead of returning them to the kernel: the diagnosis
  // re-runs the experiment several times, and fresh pages cost more than the arithmetic.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_ARENA_MAX, 1);  // threads reuse the same warm heap (few, large allocations)
  qparity::cli::install_output_safeguards();
  if (argc > 1 && std::string(argv[1]) == "model") return exec_model_command(argc, argv);
  if (argc > 2 && std::string(argv[1]) == "explain" && std::string(argv[2]).ends_with(".pt")) {
    return exec_model_command(argc, argv, "explain");
  }
  if (const std::string error = qparity::cli::argument_list_error(argc, argv); !error.empty()) {
    return usage_error(error);
  }
  CLI::App app{
      "qparity: compare a fake-quantized (QAT) model with its converted int8 twin, bin for bin,\n"
      "with numerics emulating PyTorch 1.13.1's kernels (qnnpack, onednn; fbgemm from source).\n"
      "Without a command it runs `seed` (the seed experiment); its options work here too.\n",
      "qparity"};
  app.set_version_flag("--version", version_line());
  app.footer(
      "Examples:\n"
      "  qparity                                   the seed experiment (k = 1, fbgemm, fused)\n"
      "  qparity seed --backend qnnpack --k 0.01   the same on qnnpack with weights 0.01*I\n"
      "  qparity seed --observer plain --json r.json\n"
      "  qparity explain --index 0,0,0,128          one element's trace through both paths\n"
      "  qparity sweep --k 0.001:1000:61 --log      where the paths part, over a range of k\n"
      "  qparity model qat.pt int8.pt --input x.pt --backend qnnpack   your own model, layer by layer\n"
      "One command per invocation, its options after it; `--` ends the options.\n"
      "Exit codes: 0 the paths agree bin for bin, 1 bins diverge, 2 error.\n"
      "Documentation: README.md, docs/usage.md, docs/json.md, docs/numerics.md.");

  qparity::cli::SeedCommandOptions seed_options;
  CLI::App* seed = app.add_subcommand(
      "seed",
      "Reproduce the seed experiment: QuantStub -> Conv2d 1x1 (weights k*I, bias 0) + ReLU ->\n"
      "DeQuantStub fed the ramp 0..255/255, as QAT fake-quant and as convert()ed int8; compare.");
  seed->set_version_flag("--version", version_line());
  seed->footer("Exit codes: 0 the paths agree bin for bin, 1 bins diverge, 2 error.");
  qparity::cli::add_seed_options(*seed, seed_options);
  qparity::cli::ExplainCommandOptions explain_options;
  CLI::App* explain = app.add_subcommand(
      "explain",
      "Trace one output element through both paths, stage by stage: input, weight, accumulator,\n"
      "bias, multiplier, pre-rounding value, rounding, zero point, clamp, output bin; the first\n"
      "stage where the paths differ is marked. Takes every option of `seed`.");
  explain->set_version_flag("--version", version_line());
  explain->footer(
      "Your own model: qparity explain QAT.pt [INT8.pt] --input x.pt --backend E --layer NAME [--index I,J,..]\n"
      "traces one element of a layer (options of `qparity model`; see docs/model.md).\n"
      "Exit codes: 0 the element's output agrees in both paths, 1 it differs, 2 error.");
  qparity::cli::add_explain_options(*explain, explain_options);
  qparity::cli::SweepCommandOptions sweep_options;
  CLI::App* sweep = app.add_subcommand(
      "sweep",
      "Run the seed-family experiment over a range of k and sets of engines, observers and\n"
      "quantization knobs; group contiguous k ranges by outcome (agree, or the diagnosis class),\n"
      "report where outcomes change, and with --refine bisect each boundary to adjacent float32 k.");
  sweep->set_version_flag("--version", version_line());
  sweep->footer(
      "Examples:\n"
      "  qparity sweep --k 0.001:1000:61 --log --backend qnnpack,onednn --observer fused,plain\n"
      "  qparity sweep --k 0.005:0.05:10 --log --refine --csv points.csv\n"
      "Exit codes: 0 every point agrees bin for bin, 1 some point diverges or is refused by the\n"
      "engine, 2 error.");
  qparity::cli::add_sweep_options(*sweep, sweep_options);
  CLI::App* model = app.add_subcommand(
      "model",
      "Your own model: a QAT model (torch.jit.trace after prepare_qat) and its int8 twin\n"
      "(torch.jit.script after convert), run down both paths with emulated numerics, compared layer\n"
      "by layer and checked against libtorch's run of the real models. `qparity model --help`.");
  model->allow_extras();
  // Without a command qparity runs the seed experiment, so its options work there too.
  qparity::cli::add_seed_options(app, seed_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return checked_exit(app, e);
  } catch (const CLI::CallForAllHelp& e) {
    return checked_exit(app, e);
  } catch (const CLI::CallForVersion& e) {
    return checked_exit(app, e);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }
  if (model->parsed()) {
    return usage_error("'model' must be the first argument (qparity model QAT.pt INT8.pt ...)");
  }
  if (const std::string error = command_line_error(app); !error.empty()) return usage_error(error);
  if (sweep->parsed()) {
    return qparity::cli::run_sweep_command(sweep_options, join_arguments(argc, argv));
  }
  if (explain->parsed()) {
    return qparity::cli::run_explain_command(explain_options, join_arguments(argc, argv));
  }
  // Bare `qparity` and `qparity seed` both run the seed experiment.
  return qparity::cli::run_seed_command(seed_options, join_arguments(argc, argv));
}
