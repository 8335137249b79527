// Reporters of `qparity model`: the console table and the JSON document (qparity.model/1).
#pragma once

#include <optional>
#include <string>

#include "qparity/diff/layer_compare.h"
#include "qparity/profile/backend_profile.h"

namespace qparity::cli {

struct ModelReport {
  std::string command_line;
  std::string qat_file, int8_file, input_description;
  model::Dims input_dims;
  BackendProfile profile;
  int torch_threads = 1;
  std::string float_kernels;  // who computed the QAT path's order-dependent float ops
  diff::ModelComparison comparison;
  std::vector<float> fake_quant_output, int8_output;
  std::vector<std::string> moved_points;  // fake-quant points whose observer moved in the run
  std::optional<diff::ReferenceCheck> qat_reference, int8_reference;
  std::string reference_skipped;  // why there is no reference check
};

std::string render_model_console(const ModelReport& report);
std::string render_model_json(const ModelReport& report);

}  // namespace qparity::cli
