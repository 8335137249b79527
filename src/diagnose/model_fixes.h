// Fixes for a diagnosed model: qconfig changes applied to the QAT graph and verified by re-running.
#pragma once

#include <vector>

#include "qparity/diagnose/model_diagnosis.h"

namespace qparity::diagnose::detail {

// The candidate fixes the findings call for, each verified against the two paths' runs;
// returns the verified ones.
std::vector<ModelFix> verified_fixes(const ModelPaths& paths,
                                     const diff::ModelComparison& comparison,
                                     const std::vector<ModelFinding>& findings,
                                     const ModelDiagnosisOptions& options);

}  // namespace qparity::diagnose::detail
