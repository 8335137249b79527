// `qparity seed`: options, validation and the run.
#pragma once

#include <CLI/CLI.hpp>

#include "qparity/scenario/seed.h"
#include <optional>
#include <vector>
#include <cstdint>
#include <string>

namespace qparity::cli {

// The seed options as CLI11 reads them (typed; the validators give each bad value a message
// naming its option). parse_seed_options checks what needs several of them together.
struct SeedCommandOptions {
  double k = 1.0;
  std::string backend = "fbgemm";
  std::string observer = "fused";
  int64_t rows = 256;
  // Quantization knobs beyond the seed (defaults: the seed's qconfig).
  std::string weight_qscheme = "per_tensor_symmetric";
  int64_t weight_quant_min = -128;
  bool reduce_range = false;
  std::string weight_pattern = "identity";
  std::optional<double> weight_observer_max;
  std::optional<double> output_observer_max;
  std::optional<double> output_observer_min;
  std::optional<double> input_scale, weight_scale, output_scale;
  std::optional<std::string> json_path;  // absent = no JSON
  bool no_diagnosis = false;             // skip the diagnosis and fix verification
  std::optional<std::string> html_path;  // absent = no HTML report
  std::vector<std::string> fail_on;      // CI budgets, NAME=LIMIT (one per item)
};

// Adds the seed options to `command`, bound to `options`.
void add_seed_options(CLI::App& command, SeedCommandOptions& options);

// Turns the options into SeedOptions; throws std::invalid_argument naming the option.
SeedOptions parse_seed_options(const SeedCommandOptions& raw);

// Runs the experiment and writes the reports. Returns the process exit code:
// 0 bins agree, 1 bins diverge, 2 error (message already on stderr).
int run_seed_command(const SeedCommandOptions& options, const std::string& command_line);

}  // namespace qparity::cli
