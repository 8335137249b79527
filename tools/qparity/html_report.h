// Self-contained HTML reports (no network, no scripts from elsewhere): plots drawn as inline
// SVG generated here, tables, the diagnosis, fixes and traces, and the exact command line.
#pragma once

#include <string>

#include "qparity/diagnose/trace.h"
#include "qparity/sweep/sweep.h"
#include "reports.h"

namespace qparity::cli {

// `qparity seed --html`: staircase of output bin against input bin for both paths (divergent
// points marked), the Δq histogram, the qparams/provenance table, the diagnosis, verified fixes
// and the first mismatch's trace.
std::string render_seed_html(const SeedResult& result, const std::optional<Explanation>& why,
                             const RunContext& context);

// `qparity explain --html`: the element's stage-by-stage trace with the first difference marked,
// plus the staircase of its row.
std::string render_explain_html(const SeedResult& result, const ElementExplanation& explanation,
                                const RunContext& context);

// `qparity sweep --html`: outcome against k for every series (log axis for log-spaced sweeps),
// bin mismatch count against k, the outcome ranges and boundaries, and every point.
std::string render_sweep_html(const SweepSpec& spec, const SweepResult& result,
                              const RunContext& context);

}  // namespace qparity::cli
