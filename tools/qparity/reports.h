// Reporters of the seed experiment: console text and JSON.
#pragma once

#include <string>

#include <optional>
#include <vector>

#include "budgets.h"
#include "qparity/diagnose/diagnosis.h"
#include "qparity/diagnose/fixes.h"
#include "qparity/diagnose/trace.h"
#include "qparity/scenario/seed.h"

namespace qparity::cli {

// Everything a report needs besides the result itself, so reports reproduce themselves.
struct RunContext {
  std::string command_line;
  std::vector<BudgetVerdict> budgets;  // --fail-on results, empty without budgets
};

// Prints one stderr line per exceeded budget; returns the exit code (0 all hold, 1 otherwise).
int report_budgets(const std::string& command, const std::vector<BudgetVerdict>& verdicts);

// The explanation of a run, when one was computed.
struct Explanation {
  Diagnosis diagnosis;
  std::vector<VerifiedFix> fixes;
  std::optional<ElementExplanation> trace;  // the first mismatching element
};

std::string render_seed_console(const SeedResult& result, const std::optional<Explanation>& why,
                                const RunContext& context);
std::string render_seed_json(const SeedResult& result, const std::optional<Explanation>& why,
                             const RunContext& context);

}  // namespace qparity::cli
