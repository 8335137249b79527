// One element's trace through both paths, stage by stage, with the first stage where the
// paths differ marked.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "qparity/scenario/seed.h"

namespace qparity {

struct TraceRow {
  std::string stage;       // e.g. "weight[0] dequantized"
  std::string fake_quant;  // the value in the fake-quant path, as text
  std::string int8;        // the value in the int8 path
  // The two values stand for different real numbers (stages in different units, such as a
  // float sum against an int32 accumulator, are compared through their real value).
  bool differs = false;
};

struct ElementExplanation {
  ElementIndex index;
  ElementTrace fake_quant;
  ElementTrace int8;
  std::vector<TraceRow> rows;
  std::optional<size_t> first_difference;  // index into rows
};

// Traces `index` through both paths of `result` (a run of `experiment`).
ElementExplanation explain_element(const SeedExperiment& experiment, const SeedResult& result,
                                   const ElementIndex& index);

}  // namespace qparity
