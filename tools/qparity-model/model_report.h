// Reporters of `qparity model`: the console table, the JSON document (qparity.model/1, schema in
// docs/schema/qparity.model.schema.json) and, in model_html.h, the HTML page.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "qparity/diagnose/model_diagnosis.h"
#include "qparity/diagnose/model_trace.h"
#include "qparity/diff/layer_compare.h"
#include "qparity/profile/backend_profile.h"
#include "qparity/run/tensor.h"

namespace qparity::cli {

// One --fail-on budget, measured at its worst layer.
struct ModelBudgetVerdict {
  std::string budget;  // max-dq, bin-mismatch, sqnr-min
  double limit = 0.0;
  double measured = 0.0;  // the worst layer's value (sqnr-min: the lowest SQNR, may be +inf)
  std::string layer;      // the worst layer; empty when the model has no layer
  bool exceeded = false;
};

struct ModelReport {
  std::string command_line;
  std::string qat_file, int8_file, input_description;
  model::Dims input_dims;
  BackendProfile profile;
  int torch_threads = 1;
  std::string float_kernels;  // who computed the QAT path's order-dependent float ops
  // The other summation order the QAT layers were re-run with (empty: not checked); each
  // layer's count is in its comparison's order_sensitive_bins.
  std::string order_check;
  diff::ModelComparison comparison;
  std::vector<float> fake_quant_output, int8_output;
  std::vector<std::string> moved_points;  // fake-quant points whose observer moved in the run
  std::optional<diff::ReferenceCheck> qat_reference, int8_reference;
  std::string reference_skipped;            // why there is no reference check
  std::vector<ModelBudgetVerdict> budgets;  // --fail-on, in the order given
  // qparity's emulation of eager convert(): "derived" when it made the int8 path (no INT8 file:
  // int8_file is empty and there is no int8 reference), "checked" when it was compared with the
  // given int8 model (every difference listed), "unavailable" when it could not run (why in
  // convert_error).
  std::string convert_mode;
  std::vector<std::string> convert_differences;
  std::string convert_error;
  // Local / inherited error, causes and impact (model_diagnosis_report.h); absent with
  // --no-diagnosis (why in diagnosis_skipped).
  std::optional<diagnose::ModelDiagnosis> diagnosis;
  std::string diagnosis_skipped;
  // --check-diagnosis: the diagnosis again with libtorch's own int8 conv / linear in every
  // re-run, and how it differs (empty: identical).
  struct DiagnosisCheck {
    std::string kernels;
    std::vector<std::string> differences;
    int64_t ops_ran = 0, ops_declined = 0;
    std::string first_declined;
  };
  std::optional<DiagnosisCheck> diagnosis_check;
  std::optional<diagnose::ModelElementTrace> trace;  // --layer / --index
};

// A final output's float values (a quantized output dequantized), flattened row-major.
std::vector<float> output_values(const run::Tensor& t);

// Row-major multi-index of flat element `index` in `dims`.
std::vector<int64_t> unravel(int64_t index, const model::Dims& dims);

// An SQNR (or any dB figure) for the console: one decimal, "inf" / "-inf" / "nan".
std::string sqnr_text(double db);

// A number JSON can hold, or "inf" / "-inf" / "nan" (JSON has no non-finite numbers).
nlohmann::ordered_json json_real(double v);

// "3 bins" / "SQNR 12.5 dB" ...: a verdict's measure in words.
std::string budget_measure_text(const ModelBudgetVerdict& v);

// Whether the emulation matched libtorch in every value of both paths (false without the check).
bool reference_exact(const ModelReport& report);

std::string render_model_console(const ModelReport& report);
std::string render_model_json(const ModelReport& report);
// `qparity explain QAT.pt ...`: the run's first line and the element trace.
std::string render_trace_console(const ModelReport& report);

}  // namespace qparity::cli
