// Reporters of the seed experiment: console text and JSON.
#pragma once

#include <string>

#include "qparity/scenario/seed.h"

namespace qparity::cli {

// Everything a report needs besides the result itself, so reports reproduce themselves.
struct RunContext {
  std::string command_line;
};

std::string render_seed_console(const SeedResult& result, const RunContext& context);
std::string render_seed_json(const SeedResult& result, const RunContext& context);

}  // namespace qparity::cli
