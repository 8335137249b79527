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

// The same for a list of points ("input", "weight", "output", "requantization"): lets a caller
// start verifying fixes for the points whose grids differ while the diagnosis still runs.
std::vector<FixCandidate> propose_fixes_for_points(const SeedExperiment& experiment,
                                                   const SeedResult& result,
                                                   const std::vector<std::string>& points);

// Re-runs every candidate; the result lists each with whether it reached parity.
// `original` is the run the candidates try to fix.
std::vector<VerifiedFix> verify_fixes(const std::vector<FixCandidate>& candidates,
                                      const SeedResult& original, const CpuFeatures& cpu);

// The two halves of verify_fixes: the re-runs (independent of the original run's results, so
// they may start before it finishes), then the parity verdicts against the original.
std::vector<VerifiedFix> rerun_fixes(const std::vector<FixCandidate>& candidates,
                                     const CpuFeatures& cpu);
void settle_parity(std::vector<VerifiedFix>& fixes, const SeedResult& original);

}  // namespace qparity
