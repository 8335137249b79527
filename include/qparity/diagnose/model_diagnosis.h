// Why a model's two paths part, layer by layer (docs/model.md "Diagnosis"): which int8 layers
// create error by themselves and which only inherit it, the causes of each layer's own error
// computed by swapping one quantization point at a time from the int8 path into a local re-run,
// and what each layer's own error costs at the final output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qparity/diff/layer_compare.h"
#include "qparity/model/graph.h"
#include "qparity/profile/backend_profile.h"
#include "qparity/run/executor.h"

namespace qparity::diagnose {

// The two paths of one model and their runs on the same input.
struct ModelPaths {
  const model::Graph& qat;
  const run::RunResult& qat_run;
  const model::Graph& int8;
  const run::RunResult& int8_run;
};

struct ModelDiagnosisOptions {
  const BackendProfile* profile = nullptr;  // the int8 path's (required)
  int framework_threads = 1;                // the PyTorch thread count the int8 run emulated
  int threads = 1;     // qparity's own: layers are re-run in parallel; results never depend on it
  bool impact = true;  // re-run the rest of the int8 path once per layer that creates error
  // qparity's convert() of the QAT graph, when it equals the int8 graph: it records the rules
  // behind the int8 qparams, which an int8 model read from a file does not (nullptr: none).
  const model::Graph* converted = nullptr;
  // How to run the QAT path again (its float kernels): fixes that change the QAT model are
  // verified by re-running it. nullptr: no fix is tried.
  const run::RunOptions* qat_options = nullptr;
  // Run the int8 re-runs' conv / linear with these kernels instead of qparity's (the framework's
  // own, to check the diagnosis; see compare_diagnoses). nullptr: qparity's.
  run::QuantizedKernels* int8_kernels = nullptr;
};

// An int8 layer run on the fake-quant path's input (quantized onto the int8 layer's input grid):
// the mismatches it makes by itself. The rest of its mismatches are inherited from its inputs.
struct LocalError {
  bool measured = false;
  std::string not_measured;  // why, when not measured
  int64_t bin_mismatch_count = 0;
  int64_t max_abs_dq = 0;
  // Elements that differ in the full run but agree when the layer is fed the QAT input.
  int64_t inherited_count = 0;
};

// The classes of cause, each found by its own swap (or, for the last two, what remains).
enum class CauseClass {
  kWeightGrid,                 // weight scale / zero point computed by different rules
  kAsymmetricSameSignChannel,  // a same-sign weight channel gets an asymmetric grid in QAT only
  kBatchNormFolding,           // QAT's ConvBn forward weight vs convert()'s folded weight
  kWeightValues,               // the QAT weight differs from the one convert() quantizes (no BN)
  kAccumulatorSaturation,      // int16 pair sums in the int8 kernel (no VNNI, FBGEMM depthwise)
  kActivationGrid,             // the layer's output grid differs (scale ulps / zero point)
  kOutputGridNotObserved,      // the int8 op keeps its input's grid; QAT observes its output
  kObserverMoved,              // the QAT grid moved during this forward (observer still enabled)
  kReducedRangeClamp,          // QAT clamps to a reduced range the int8 op does not
  kUnquantizedOp,              // QAT leaves the op's output unrounded; int8 rounds it
  kIntegerArithmetic,          // int32 accumulation and requantization vs float math + rounding
};

std::string_view to_string(CauseClass c);

struct ModelFinding {
  CauseClass cause = CauseClass::kIntegerArithmetic;
  std::string layer;
  std::string point;  // weight, accumulator, output, op
  // Mismatching elements of the layer's local run that this cause's swap puts right (for the
  // last two classes: the mismatches left after every swap).
  int64_t explains_elements = 0;
  std::vector<std::string> evidence;  // the numbers, one sentence each
};

// What one layer's own error costs at the final output: the int8 path re-run from that layer on
// with the layer's own error taken out of its output (each element's local Δq subtracted from
// its bin), so the error it inherits stays. Replacing the whole output with the fake-quant
// path's would credit the layer with every earlier layer's error too.
struct LayerImpact {
  std::string layer;
  int64_t local_mismatches = 0;
  diff::OutputAgreement before, after;
  double sqnr_gain_db() const;  // after - before (+inf when the outputs become equal)
};

// How far the two paths are apart over the whole model.
struct Divergence {
  int64_t bins_differing = 0;
  int64_t layers_differing = 0;
  diff::OutputAgreement output;
};
Divergence divergence_of(const diff::ModelComparison& comparison,
                         const run::Tensor& fake_quant_output, const run::Tensor& int8_output);

// A change a PyTorch user can make to the QAT script, applied to the model (as prepare_qat /
// convert would with it) and both paths re-run on the same input. Only changes that reduce the
// bins differing are reported (verified), with the figures before and after.
struct ModelFix {
  std::string change;   // one sentence
  std::string python;   // the lines to write
  std::string because;  // the findings it answers
  bool verified = false;
  Divergence before, after;
};

struct ModelDiagnosis {
  std::vector<LocalError> local;       // one per comparison layer, same order
  std::vector<ModelFinding> findings;  // model order; within a layer, swap order
  std::vector<LayerImpact> impact;     // most final SQNR gained first
  std::vector<ModelFix> fixes;         // verified ones only
  int64_t local_mismatches = 0;        // over all layers
  int64_t explained_elements = 0;      // by the findings, over all layers
};

// Differences between two diagnoses of the same paths (e.g. qparity's kernels against the
// framework's in the re-runs), one sentence each: per-layer local and inherited counts, each
// finding's class, layer, point and count, and each impact's figures. Empty when they agree.
std::vector<std::string> compare_diagnoses(const ModelDiagnosis& a, const ModelDiagnosis& b,
                                           const diff::ModelComparison& comparison);

// Diagnoses `paths` whose layer comparison is `comparison` (diff::compare_paths). Throws
// run::OpRefused when a re-run cannot run (it ran in the full run, so this means a bug).
ModelDiagnosis diagnose_model(const ModelPaths& paths, const diff::ModelComparison& comparison,
                              const ModelDiagnosisOptions& options);

}  // namespace qparity::diagnose
