// `qparity sweep`: the seed-family experiment over ranges of k and sets of its parameters.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qparity/sweep/sweep.h"

namespace qparity::cli {

// The sweep options as CLI11 reads them: typed, lists split at commas, k at colons.
struct SweepCommandOptions {
  std::vector<std::string> k = {"0.001", "1000", "61"};  // START, STOP, COUNT
  bool log = false;
  std::vector<std::string> backends = {"fbgemm"};
  std::vector<std::string> observers = {"fused"};
  std::vector<std::string> weight_qschemes = {"per_tensor_symmetric"};
  std::vector<std::string> reduce_ranges = {"off"};
  std::vector<std::string> weight_patterns = {"identity"};
  int64_t rows = 256;
  std::optional<int64_t> threads;
  bool refine = false;
  bool no_diagnosis = false;
  std::optional<std::string> json_path;
  std::optional<std::string> csv_path;
  std::optional<std::string> html_path;
  std::vector<std::string> fail_on;
};

void add_sweep_options(CLI::App& command, SweepCommandOptions& options);

// The sweep the options ask for, checked before any work starts (every k range end usable, the
// points on --threads fit in memory); throws std::invalid_argument naming the option.
SweepSpec parse_sweep_options(const SweepCommandOptions& options);

// Exit code: 0 every point agrees, 1 some point diverges or is refused by the engine, 2 error.
int run_sweep_command(const SweepCommandOptions& options, const std::string& command_line);

}  // namespace qparity::cli
