// JSON pieces more than one report writes.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "budgets.h"

namespace qparity::cli {

// `budgets`: one {budget, limit, measured, exceeded} per --fail-on budget.
inline nlohmann::ordered_json budgets_json(const std::vector<BudgetVerdict>& verdicts) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const BudgetVerdict& v : verdicts) {
    out.push_back({{"budget", v.budget.name},
                   {"limit", v.budget.limit},
                   {"measured", v.measured},
                   {"exceeded", v.exceeded}});
  }
  return out;
}

}  // namespace qparity::cli
