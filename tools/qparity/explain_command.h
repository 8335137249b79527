// `qparity explain`: one element's trace through both paths.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <vector>
#include <string>

#include "seed_command.h"

namespace qparity::cli {

struct ExplainCommandOptions {
  SeedCommandOptions seed;
  std::vector<int64_t> index;  // n,c,h,w; empty = the first mismatch
};

void add_explain_options(CLI::App& command, ExplainCommandOptions& options);

// --index n,c,h,w (split at the commas and read as integers by CLI11) as an element of an output
// of `shape`; throws std::invalid_argument naming --index and the part outside the shape.
ElementIndex check_index(const std::vector<int64_t>& parts, const Shape4& shape);

// Returns the exit code: 0 the traced element agrees in both paths, 1 it differs, 2 error.
int run_explain_command(const ExplainCommandOptions& options, const std::string& command_line);

}  // namespace qparity::cli
