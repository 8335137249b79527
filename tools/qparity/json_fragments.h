// JSON pieces more than one report writes.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include <optional>

#include "budgets.h"
#include "qparity/diff/compare.h"

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

// `first_mismatch`: null, or {index, error_fp32, expected_q, actual_q}.
inline nlohmann::ordered_json first_mismatch_json(const std::optional<FirstMismatch>& first) {
  if (!first) return nullptr;
  const FirstMismatch& m = *first;
  return {{"index", {m.index.n, m.index.c, m.index.h, m.index.w}},
          {"error_fp32", m.error_fp32},
          {"expected_q", m.expected_q},
          {"actual_q", m.actual_q}};
}

}  // namespace qparity::cli
