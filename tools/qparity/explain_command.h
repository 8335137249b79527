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

// Returns the exit code: 0 the traced element agrees in both paths, 1 it differs, 2 error.
int run_explain_command(const ExplainCommandOptions& options, const std::string& command_line);

}  // namespace qparity::cli
