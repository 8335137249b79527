// A deterministic fuzz driver (issue 9, "Also"): every input parser of qparity gets inputs made
// by seeded mutation of valid ones (bit flips, boundary bytes and numbers, truncation, splices,
// inserted tokens, random bytes), and each run must end in success or a clean error, never a
// crash. Run N of seed S is always the same input, so a failure is replayed by its run number
// alone; CTest runs each target a few seconds, docs/fuzzing.md says how to run it for hours.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace qparity::fuzz {

// Thrown by a target when an input breaks one of its properties (a crash is the other failure).
struct PropertyFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Target {
  std::string name;
  std::vector<std::string> seeds;       // valid inputs the mutations start from (at least one)
  std::vector<std::string> dictionary;  // tokens spliced in: boundary numbers, separators, keys
  // Runs one input: returns, or throws PropertyFailure. Any other exception is a failure too:
  // a target catches the clean errors its parser promises.
  std::function<void(const std::string&)> run;
  size_t max_size = 4096;  // mutated inputs are cut to this many bytes
};

// The mutations, exposed for the driver's own test: input `run` of `seed` from `seeds`.
std::string mutate(const std::vector<std::string>& seeds,
                   const std::vector<std::string>& dictionary, size_t max_size, uint64_t seed,
                   uint64_t run);

// The driver's command line (see --help): runs the targets, prints one summary line per target,
// returns 0 when no run failed, 1 otherwise, 2 for a bad command line. `extra_seeds` files given
// with --corpus are added to the seeds of every target run.
int run_driver(int argc, char** argv, std::vector<Target> targets);

// A failed property: "<what> for input <escaped input>".
[[noreturn]] void fail(const std::string& what, const std::string& input);

// The input as one printable line: \xNN for bytes outside printable ASCII.
std::string escaped(const std::string& input, size_t max_shown = 200);

}  // namespace qparity::fuzz
