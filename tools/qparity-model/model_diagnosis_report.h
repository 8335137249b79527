// The diagnosis part of `qparity model`'s reports: per-layer local / inherited error, the causes
// with their share of the local mismatches, and the layers ranked by impact on the final output.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model_report.h"

namespace qparity::cli {

// The console section ("" when the diagnosis did not run).
std::string render_diagnosis_console(const ModelReport& report);

// The HTML section (id "diagnosis-section"; "" when the diagnosis did not run): the network as a
// list with each layer's own and inherited error, the causes, a Δq histogram of the layer that
// creates the most error, the layers by impact, the verified fixes and the check.
std::string render_diagnosis_html(const ModelReport& report);

// --layer: the element trace's lines ("" without one), and its JSON object `trace`.
std::string render_trace_text(const ModelReport& report);
void add_trace_json(const ModelReport& report, nlohmann::ordered_json& doc);

// Adds layers[].local, diagnosis[], impact[], fixes[] and summary.diagnosis to a qparity.model/1
// document whose "layers" are the report's comparison layers, in order.
void add_diagnosis_json(const ModelReport& report, nlohmann::ordered_json& doc);

}  // namespace qparity::cli
