// The command line as a shell would need it typed, for the reports of every command, and the
// checks of the raw argument list that CLI11 does not make.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace qparity::cli {

// Length of the valid UTF-8 sequence starting at s[i] (1 to 4 bytes), or 0 when the bytes there
// are not one (a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF, cut).
inline size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing beyond U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

// Arguments with spaces or shell characters are single-quoted, so a report shows a line that
// reproduces the run. Arguments with control characters (a newline) or bytes that are not UTF-8
// (a Latin-1 file name) use bash's $'...' quoting with \xNN escapes: the line stays one line of
// valid UTF-8 (JSON and HTML need it) and still reproduces the run byte for byte.
inline std::string shell_quote(const std::string& arg) {
  const bool plain = !arg.empty() && arg.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789-_=+,./:@%") == std::string::npos;
  if (plain) return arg;
  bool needs_escapes = false;
  for (size_t i = 0; i < arg.size() && !needs_escapes;) {
    const auto b = static_cast<unsigned char>(arg[i]);
    const size_t n = utf8_sequence_length(arg, i);
    needs_escapes = n == 0 || b < 0x20 || b == 0x7F;
    i += n == 0 ? 1 : n;
  }
  if (!needs_escapes) {
    std::string quoted = "'";
    for (const char ch : arg) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    return quoted + "'";
  }
  std::string quoted = "$'";
  for (size_t i = 0; i < arg.size();) {
    const auto b = static_cast<unsigned char>(arg[i]);
    const size_t n = utf8_sequence_length(arg, i);
    if (n > 1) {
      quoted.append(arg, i, n);
      i += n;
      continue;
    }
    if (b == '\\' || b == '\'') {
      quoted += '\\';
      quoted += static_cast<char>(b);
    } else if (b == '\n') {
      quoted += "\\n";
    } else if (b == '\t') {
      quoted += "\\t";
    } else if (n == 0 || b < 0x20 || b == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", b);
      quoted += hex;
    } else {
      quoted += static_cast<char>(b);
    }
    ++i;
  }
  return quoted + "'";
}

// `message` on one line: newlines and other control characters become \n, \t or \xNN, so a
// value with a newline (CLI11 quotes values raw) cannot split an error into two lines.
inline std::string one_line_message(std::string_view message) {
  std::string out;
  for (const char ch : message) {
    const auto b = static_cast<unsigned char>(ch);
    if (b == '\n') {
      out += "\\n";
    } else if (b == '\t') {
      out += "\\t";
    } else if (b < 0x20 || b == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", b);
      out += hex;
    } else {
      out += ch;
    }
  }
  return out;
}

// `--json=` (an empty value after '=') would make CLI11 take the next argument as the value,
// e.g. `--json= --rows 4` writes a file named "--rows". Returns the error, or "" when there is
// none. Arguments after `--` are not options and are not checked.
inline std::string empty_attached_value_error(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.size() > 3 && arg.starts_with("--") && arg.find('=') == arg.size() - 1) {
      const std::string option(arg.substr(0, arg.size() - 1));
      return shell_quote(option) + ": no value after '=' (give " + shell_quote(option) +
             "=VALUE or " + shell_quote(option) + " VALUE)";
    }
  }
  return "";
}

// The checks for a command line of `qparity` (whose commands take no positional arguments):
// no empty `--option=`, and nothing after `--`, which ends the options (CLI11 2.1 would parse
// `qparity seed -- --json x.json` as an option). Returns the error, or "".
inline std::string argument_list_error(int argc, char** argv) {
  if (std::string error = empty_attached_value_error(argc, argv); !error.empty()) return error;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) != "--") continue;
    if (i + 1 < argc) {
      return "unexpected argument " + shell_quote(argv[i + 1]) +
             " after '--' (qparity takes no arguments without an option)";
    }
    break;
  }
  return "";
}

}  // namespace qparity::cli
