// Changes a user could make, each verified by re-running the experiment with it applied.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qparity/diagnose/diagnosis.h"
#include "qparity/scenario/seed.h"

namespace qparity {

struct FixCandidate {
  std::string change;     // what to change, in the user's terms
  std::string rationale;  // why it should help, from the diagnosis numbers
  SeedOptions options;    // the experiment with the change applied
};

struct VerifiedFix {
  FixCandidate candidate;
  // The re-run reached parity: its bins agree everywhere, and, when the original run's bins
  // already agreed (a float-only difference), its floats agree too.
  bool verified_parity = false;
  int64_t bin_mismatch_count = 0;
  int64_t fp32_mismatch_count = 0;
  std::optional<std::string> error;  // the re-run was refused (e.g. the engine rejects it)
};

// Candidate changes relevant to the findings (none when the paths agree).
std::vector<FixCandidate> propose_fixes(const SeedExperiment& experiment,
                                        const SeedResult& result, const Diagnosis& diagnosis);

// Re-runs every candidate; the result lists each with whether it reached parity.
// `original` is the run the candidates try to fix.
std::vector<VerifiedFix> verify_fixes(const std::vector<FixCandidate>& candidates,
                                      const SeedResult& original, const CpuFeatures& cpu);

}  // namespace qparity
