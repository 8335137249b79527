// Local re-runs of int8 layers for the model diagnosis: an int8 layer fed the fake-quant path's
// values instead of its own inputs, and the int8 path re-run from one layer on.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "qparity/diagnose/model_diagnosis.h"

namespace qparity::diagnose::detail {

// The fake-quant path's value standing for int8 value `id` (the output of the QAT layer of the
// same name), or kNoValue.
class ValueMap {
 public:
  ValueMap(const ModelPaths& paths, const diff::ModelComparison& comparison);
  model::ValueId fake_quant_of(model::ValueId int8_value) const;

 private:
  std::unordered_map<model::ValueId, model::ValueId> map_;
};

// `qat_value` as int8 value `like` holds it: quantized onto like's grid (eq. 5.1) when like is
// quantized, the float values as they are otherwise.
run::Tensor as_int8(const run::Tensor& qat_value, const run::Tensor& like);

// The inputs an int8 layer reads from outside itself, fed from the fake-quant path: a RunResult
// holding only those values. nullopt (and `why`) when one has no fake-quant counterpart.
std::optional<run::RunResult> fed_inputs(const ModelPaths& paths, const ValueMap& map,
                                         const model::Layer& layer, std::string& why);

// A copy of the int8 graph that holds the nodes of `layer` only (the others are left empty): a
// swap edits these, and nothing else may run.
model::Graph layer_graph(const model::Graph& int8, const model::Layer& layer);

// Mismatch counts of one layer's Δq, in all and per output channel (dim 1 of a 4-d value, the
// last dim otherwise).
struct Mismatches {
  int64_t total = 0;
  int64_t max_abs_dq = 0;
  std::vector<int64_t> per_channel;
};
Mismatches count_mismatches(const std::vector<int32_t>& dq, const model::Dims& dims);

// Runs `jobs` jobs on `threads` threads; job i writes only its own results, so the outcome does
// not depend on the thread count. Rethrows the first job's exception (by index).
void parallel_for(int64_t jobs, int threads, const std::function<void(int64_t)>& job);

}  // namespace qparity::diagnose::detail
