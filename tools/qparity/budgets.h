// CI budgets: `--fail-on max-dq=0,bin-mismatch=0,fp32-error-max=1e-6`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace qparity::cli {

enum class BudgetMetric { kMaxDeltaQ, kBinMismatch, kFp32Mismatch, kFp32ErrorMax, kErrorMean };

struct Budget {
  BudgetMetric metric = BudgetMetric::kMaxDeltaQ;
  std::string name;  // as the user wrote it, e.g. "max-dq"
  double limit = 0.0;
};

// What a run measured, for the budgets (a sweep gives its worst point).
struct BudgetMeasures {
  double max_delta_q = 0, bin_mismatch = 0, fp32_mismatch = 0, fp32_error_max = 0, error_mean = 0;
};

struct BudgetVerdict {
  Budget budget;
  double measured = 0.0;
  bool exceeded = false;
};

// The CLI11 check of one NAME=LIMIT item of --fail-on (the option splits its value at commas and
// may repeat). Names: max-dq, bin-mismatch, fp32-mismatch, fp32-error-max, error-mean.
CLI::Validator budget_item();

// The budgets of the items budget_item() accepted; throws std::invalid_argument naming a bad one.
std::vector<Budget> parse_budgets(const std::vector<std::string>& items);

std::vector<BudgetVerdict> check_budgets(const std::vector<Budget>& budgets, const BudgetMeasures& m);

// "max-dq=0" etc., the help text's list.
std::string budget_help();

}  // namespace qparity::cli
