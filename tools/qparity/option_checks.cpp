#include "option_checks.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "command_line.h"

namespace qparity::cli {
namespace {

// Every validator here has an empty description: CLI11 would append it to the option's
// type name in --help ("FLOAT:FLOAT > 0"); the help text of each option says what it takes.

// The number CLI11 reads from `text`, or nothing.
std::optional<double> cli11_number(const std::string& text) {
  double value = 0.0;
  if (!CLI::detail::lexical_cast(text, value)) return std::nullopt;
  return value;
}

}  // namespace

std::string shown_value(const std::string& text) {
  const std::string q = shell_quote(text);
  return q.front() == '\'' || q.front() == '$' ? q : "'" + q + "'";
}

CLI::Validator finite_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::optional<double> value = cli11_number(text);
        if (!value) return shown_value(text) + " is not a number";
        if (!std::isfinite(*value)) return shown_value(text) + " is not a finite number";
        return "";
      },
      "");
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::optional<double> value = cli11_number(text);
        if (value && !(*value > 0.0)) return shown_value(text) + " must be greater than 0";
        return "";
      },
      "");
}

CLI::Validator decimal_integer(const std::string& hint) {
  return CLI::Validator(
      [hint](std::string& text) -> std::string {
        const size_t digits = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
        if (text.size() == digits || text.find_first_not_of("0123456789", digits) != std::string::npos) {
          return shown_value(text) + " is not an integer" + hint;
        }
        // Beyond int64_t (CLI11 2.1 would clamp it silently).
        if (std::abs(*cli11_number(text)) >= 9.2e18) return shown_value(text) + " is too large";
        // Leading zeros go: the value is the decimal one, never octal.
        const size_t first = std::min(text.find_first_not_of('0', digits), text.size() - 1);
        text.erase(digits, first - digits);
        return "";
      },
      "");
}

CLI::Validator at_least(int64_t min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        int64_t value = 0;
        if (CLI::detail::lexical_cast(text, value) && value < min) {
          return shown_value(text) + " must be at least " + std::to_string(min);
        }
        return "";
      },
      "");
}

CLI::Validator in_range(int64_t lo, int64_t hi, const std::string& note) {
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, range, note](std::string& text) -> std::string {
        int64_t value = 0;
        if (CLI::detail::lexical_cast(text, value) && (value < lo || value > hi)) {
          return shown_value(text) + " must be in " + range + note;
        }
        return "";
      },
      "");
}

CLI::Validator one_of(std::vector<std::string> names, const std::string& what) {
  std::string choices;
  for (size_t i = 0; i < names.size(); ++i) {
    if (what.empty()) {
      choices += (i > 0 ? ", " : "") + names[i];
    } else {
      choices += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
    }
  }
  const std::string message_tail =
      what.empty() ? " (choose from " + choices + ")" : " (choose " + choices + ")";
  const std::string noun = what.empty() ? "value" : what;
  return CLI::Validator(
      [names = std::move(names), message_tail, noun](std::string& text) -> std::string {
        if (std::find(names.begin(), names.end(), text) != names.end()) return "";
        return "unknown " + noun + " " + shown_value(text) + message_tail;
      },
      "");
}

CLI::Validator prefixed(const std::string& name, CLI::Validator check) {
  return CLI::Validator(
      [name, check = std::move(check)](std::string& text) -> std::string {
        const std::string message = check(text);
        return message.empty() ? message : name + " " + message;
      },
      "");
}

}  // namespace qparity::cli
