// Why the two paths part, computed from the run: which quantization point, which class of
// cause, the numbers that prove it, and how many output elements it explains.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qparity/scenario/seed.h"

namespace qparity {

enum class DivergenceClass {
  // A tensor is quantized on different grids (scale / zero point / range) in the two paths.
  kGridMismatch,
  // Bins agree but dequantized floats differ: the paths' scales differ by some ulps.
  kFloatOnly,
  // A scale or value hit a limit in one path only (small-scale threshold, eps, a clamp).
  kThresholdClamp,
  // Pre-rounding values agree but sit on a .5 tie that the paths round differently.
  kRounding,
  // The int8 kernel's multiplier chain lands on a different side of a rounding boundary
  // than the float product the fake-quant path computes.
  kRequantPrecision,
};

std::string_view to_string(DivergenceClass c);

struct Finding {
  DivergenceClass divergence_class = DivergenceClass::kGridMismatch;
  std::string point;  // "input", "weight", "output" or "requantization"
  std::string summary;                // one sentence
  std::vector<std::string> evidence;  // the numbers that prove it
  int64_t explains_elements = 0;      // mismatching elements first changed by this cause
  int64_t explains_bin_mismatches = 0;
  std::optional<ElementIndex> example;  // one element it explains
};

struct Diagnosis {
  bool paths_agree = false;
  int64_t mismatched_elements = 0;  // elements whose float output or bin differs
  // The first point, in model order, where the paths part: the point of the first finding
  // ("requantization" when only the integer kernel differs).
  std::optional<std::string> first_parting_point;
  // Points whose grids differ between the paths without changing any output.
  std::vector<std::string> differing_without_effect;
  std::vector<Finding> findings;
  int64_t unexplained_elements = 0;  // mismatching elements no finding explains (should be 0)
};

// The points ("input", "weight", "output") whose grids differ between the two paths of `result`,
// in model order: where a diagnosis can find grid causes.
std::vector<std::string> points_with_differing_grids(const SeedResult& result);

// Explains `result` (a run of `experiment`) by swapping each differing point's grid from the
// fake-quant path to the int8 one, in model order, and classifying each element that changes;
// what remains after all grids are swapped is due to the integer kernel and is classified
// element by element from its trace.
Diagnosis diagnose(const SeedExperiment& experiment, const SeedResult& result);

}  // namespace qparity
