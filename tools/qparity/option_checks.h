// CLI11 validators and transforms with qparity's messages. Options are typed (double, int64_t,
// lists split by CLI11's delimiters); these only decide what text is acceptable and say why not.
// CLI11 puts "<option>: " in front of each message: "--k: 'abc' is not a number".
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace qparity::cli {

// A value as error messages quote it: one line, shell-quoted ('a b', $'a\nb'), so a newline or
// a byte that is not UTF-8 in the value cannot split or corrupt the message.
std::string shown_value(const std::string& text);

// A finite number, read by CLI11's own conversion ("'nan' is not a finite number").
CLI::Validator finite_number();
// A finite number > 0 ("'-1' must be greater than 0").
CLI::Validator positive_number();
// A decimal integer (a transform: CLI11 2.1 would read "010" as octal 8 and clamp
// "99999999999999999999" to 2^63 - 1; this passes on the decimal value or says
// "'2.5' is not an integer" / "'99999999999999999999' is too large"). `hint` follows the
// "not an integer" message (e.g. "; give four integers n,c,h,w").
CLI::Validator decimal_integer(const std::string& hint = "");
// An integer >= `min` ("'0' must be at least 1"); after decimal_integer().
CLI::Validator at_least(int64_t min);
// An integer in [lo, hi] ("'0' must be in [1, 1024]", then `note`); after decimal_integer().
CLI::Validator in_range(int64_t lo, int64_t hi, const std::string& note = "");
// One of `names` ("unknown value 'tpu' (choose from fbgemm, qnnpack, onednn)"), or with
// `what` "unknown backend 'tpu' (choose fbgemm, qnnpack or onednn)".
CLI::Validator one_of(std::vector<std::string> names, const std::string& what = "");
// `check` with "<name> " in front of its message: "START 'a' is not a number".
CLI::Validator prefixed(const std::string& name, CLI::Validator check);

}  // namespace qparity::cli
