#include "budgets.h"

#include "option_checks.h"
#include "reports.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <stdexcept>

namespace qparity::cli {
namespace {

struct MetricName {
  const char* name;
  BudgetMetric metric;
  bool integer;
};

constexpr MetricName kMetrics[] = {
    {"max-dq", BudgetMetric::kMaxDeltaQ, true},
    {"bin-mismatch", BudgetMetric::kBinMismatch, true},
    {"fp32-mismatch", BudgetMetric::kFp32Mismatch, true},
    {"fp32-error-max", BudgetMetric::kFp32ErrorMax, false},
    {"error-mean", BudgetMetric::kErrorMean, false},
};

double measured_value(BudgetMetric metric, const BudgetMeasures& m) {
  switch (metric) {
    case BudgetMetric::kMaxDeltaQ:
      return m.max_delta_q;
    case BudgetMetric::kBinMismatch:
      return m.bin_mismatch;
    case BudgetMetric::kFp32Mismatch:
      return m.fp32_mismatch;
    case BudgetMetric::kFp32ErrorMax:
      return m.fp32_error_max;
    case BudgetMetric::kErrorMean:
      return m.error_mean;
  }
  return 0.0;
}

// The budget `item` names, or why it names none (the message, without the option).
Budget read_budget(const std::string& item, std::string& why) {
  const size_t eq = item.find('=');
  if (eq == std::string::npos) {
    why = shown_value(item) + " must be NAME=LIMIT (" + budget_help() + ")";
    return {};
  }
  const std::string name = item.substr(0, eq);
  const std::string value = item.substr(eq + 1);
  for (const MetricName& m : kMetrics) {
    if (name != m.name) continue;
    double limit = 0.0;
    if (!CLI::detail::lexical_cast(value, limit) || !std::isfinite(limit) || limit < 0.0) {
      why = name + " needs a limit >= 0, got " + shown_value(value);
    } else if (m.integer && limit != std::floor(limit)) {
      why = name + " counts, its limit must be an integer, got " + shown_value(value);
    }
    return {m.metric, name, limit};
  }
  why = "unknown budget " + shown_value(name) + " (" + budget_help() + ")";
  return {};
}

}  // namespace

std::string budget_help() {
  return "max-dq, bin-mismatch, fp32-mismatch, fp32-error-max, error-mean";
}

CLI::Validator budget_item() {
  return CLI::Validator(
      [](std::string& item) {
        std::string why;
        read_budget(item, why);
        return why;
      },
      "");  // no description: CLI11 would append it to the type name in --help
}

std::vector<Budget> parse_budgets(const std::vector<std::string>& items) {
  std::vector<Budget> budgets;
  for (const std::string& item : items) {
    std::string why;
    budgets.push_back(read_budget(item, why));
    if (!why.empty()) throw std::invalid_argument("--fail-on: " + why);
  }
  return budgets;
}

std::vector<BudgetVerdict> check_budgets(const std::vector<Budget>& budgets, const BudgetMeasures& m) {
  std::vector<BudgetVerdict> verdicts;
  for (const Budget& b : budgets) {
    const double measured = measured_value(b.metric, m);
    verdicts.push_back({b, measured, !(measured <= b.limit)});
  }
  return verdicts;
}

int report_budgets(const std::string& command, const std::vector<BudgetVerdict>& verdicts) {
  int code = 0;
  for (const BudgetVerdict& v : verdicts) {
    if (!v.exceeded) continue;
    char measured[40];
    std::snprintf(measured, sizeof measured, "%.9g", v.measured);
    std::cerr << command << ": budget exceeded: " << v.budget.name << "=" << v.budget.limit
              << " (measured " << measured << ")\n";
    code = 1;
  }
  return code;
}

}  // namespace qparity::cli
