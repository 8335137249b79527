// The command line as a shell would need it typed, for the reports of every command.
#pragma once

#include <string>

namespace qparity::cli {

// Arguments with spaces or shell characters are single-quoted, so a report shows a line that
// reproduces the run.
inline std::string shell_quote(const std::string& arg) {
  const bool plain = !arg.empty() && arg.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789-_=+,./:@%") == std::string::npos;
  if (plain) return arg;
  std::string quoted = "'";
  for (const char ch : arg) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return quoted + "'";
}

}  // namespace qparity::cli
