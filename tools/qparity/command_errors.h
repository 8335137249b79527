// How every command reports failure: one line on stderr naming the command, exit code 2.
#pragma once

#include <exception>
#include <iostream>
#include <new>

#include "command_line.h"

namespace qparity::cli {

constexpr int kErrorExitCode = 2;

// Runs `body` (which returns the command's exit code); any exception it throws becomes one
// line "<command>: error: <what>" on stderr and exit code 2.
template <typename Body>
int run_reporting_errors(const char* command, const char* memory_hint, Body&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    std::cerr << command << ": error: out of memory (" << memory_hint << ")\n";
  } catch (const std::exception& e) {
    std::cerr << command << ": error: " << one_line_message(e.what()) << "\n";
  }
  return kErrorExitCode;
}

}  // namespace qparity::cli
