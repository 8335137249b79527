// The seed experiment (shared/docs/seed-experiment.md) and its family: QuantStub ->
// Conv2d(3,3,1x1) with weights k·I (or a sign pattern of it) and zero bias -> ReLU (fused) ->
// DeQuantStub, fed the ramp i/255 along W, run once as the QAT (fake-quant) model and once as
// its convert()ed int8 twin. It is a built-in model of the model engine: the QAT model is an IR
// graph (model/graph.h) built from the options, its int8 twin is qparity's convert()
// (model/convert.h), and both run on the executor (run/executor.h) that `qparity model` uses.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qparity/diff/compare.h"
#include "qparity/model/graph.h"
#include "qparity/numerics/fake_quant.h"
#include "qparity/numerics/fake_quant_module.h"
#include "qparity/ops/conv2d.h"
#include "qparity/profile/backend_profile.h"

namespace qparity::run {
struct RunWorkspace;
}  // namespace qparity::run

namespace qparity {

enum class ObserverKind {
  kFused,  // FusedMovingAvgObsFakeQuantize (the seed)
  kPlain,  // FakeQuantize
};

std::string_view to_string(ObserverKind kind);
std::optional<ObserverKind> parse_observer_kind(std::string_view name);

// Sign pattern of the 3x3 conv weight matrix.
enum class WeightPattern {
  kIdentity,          // k·I (the seed)
  kNegativeIdentity,  // -k·I
  kMixedSigns,        // k·diag(+1, -1, +1)
  kDense,             // k·[[1, .5, -.25], [-.5, 1, .5], [.25, -.5, 1]]: three products per output
};

std::string_view to_string(WeightPattern pattern);
std::optional<WeightPattern> parse_weight_pattern(std::string_view name);

struct SeedOptions {
  double k = 1.0;  // conv weight multiplier, as the Python double k
  std::string backend = "fbgemm";
  ObserverKind observer = ObserverKind::kFused;
  int64_t rows = 256;  // input height; the width is always the 256-value ramp
  // Quantization knobs a QAT user changes; the defaults are the seed's qconfig.
  QScheme weight_qscheme = QScheme::kPerTensorSymmetric;  // per-channel: along output channels
  int64_t weight_quant_min = -128;
  int64_t weight_quant_max = 127;
  bool activation_reduce_range = false;
  WeightPattern weight_pattern = WeightPattern::kIdentity;
  // Overrides the hand-set weight observer max_val (the seed sets it to max(W) = k).
  std::optional<double> weight_observer_max;
  // Overrides the hand-set output observer max_val (the seed sets it to k).
  std::optional<double> output_observer_max;
  // Overrides the hand-set output observer min_val (the seed sets it to 0).
  std::optional<double> output_observer_min;
  // Override the hand-set scales (the seed: input 1/255, weight 2k/255, output k/255, each a
  // double rounded to float32 by torch.Tensor([...])). A fused module overwrites them anyway.
  std::optional<double> input_scale;
  std::optional<double> weight_scale;
  std::optional<double> output_scale;
};

constexpr int64_t kSeedChannels = 3;
constexpr int64_t kSeedWidth = 256;

// Bytes a run needs per input row (all buffers of both paths), for memory checks.
int64_t seed_bytes_per_row();

// Throws std::invalid_argument naming the option when it is unusable.
void validate_seed_options(const SeedOptions& options);

// The `qparity seed` command-line options that turn `base` into `changed`, as (flag, value)
// pairs; a flag without value has an empty value, a flag turned off has the value "false"
// (written --flag=false). Reports and fixes use it to say exactly what to run.
std::vector<std::pair<std::string, std::string>> option_changes(const SeedOptions& base,
                                                                const SeedOptions& changed);

// All options of `options` that differ from the defaults, as one `qparity seed ...` line.
std::string seed_command_line(const SeedOptions& options);

// One quantization point (input, weight, output) as one path used it.
struct QuantPoint {
  std::string name;  // "input", "weight", "output"
  QDType dtype = QDType::kQUInt8;
  QScheme qscheme = QScheme::kPerTensorAffine;
  UsedQParams used;                   // per-channel points: output channel 0
  std::vector<UsedQParams> channels;  // per-channel points: every output channel
};

// The grids of the three points, in model order.
struct PathGrids {
  QuantGrid input, weight, output;
  std::vector<QuantGrid> weight_channels;  // per-channel weights (weight = channel 0)
  const QuantGrid& weight_of(int64_t channel) const {
    return weight_channels.empty() ? weight : weight_channels[static_cast<size_t>(channel)];
  }
};

// The outputs of one path: the quint8 output bins (NCHW), and the float each bin stands for
// (the fake-quant output value eq. 4.1, or the dequantized int8 output eq. 5.2).
struct PathRun {
  std::vector<uint8_t> bins;
  std::array<float, 256> value_of_bin{};
  float value(size_t i) const { return value_of_bin[bins[i]]; }
  PathOutputs outputs() const { return {bins, &value_of_bin}; }
};

struct PathResult {
  std::string name;  // "fake_quant" or "int8"
  QuantPoint input, weight, output;
  PathGrids grids() const;
  PathRun run;
};

// Every stage of one output element in one path, in real units where a stage has them.
struct ElementTrace {
  struct Tap {
    int64_t channel = 0;
    float input = 0.0f;          // float input
    int64_t input_bin = 0;       // input quantized / fake-quant bin
    float input_dequantized = 0.0f;
    float weight = 0.0f;         // float weight
    int64_t weight_bin = 0;
    float weight_dequantized = 0.0f;
  };
  std::vector<Tap> taps;
  // Fake-quant path: the float conv sum; int8 path: the int32 accumulator.
  double accumulator = 0.0;
  int64_t accumulator_exact = 0;  // int8: the exact Σ (x - x_zp)(w - w_zp), without saturation
  float accumulator_real = 0.0f;  // the accumulator in real units
  float bias = 0.0f;
  float multiplier = 0.0f;   // fake-quant: f(1/out_s); int8: the requant multiplier
  float pre_rounding = 0.0f; // the value that is rounded
  bool zero_point_added_before_rounding = false;
  int64_t rounded = 0;
  int64_t zero_point = 0;
  int64_t unclamped = 0;     // rounded (+ zp) before the clamp
  int64_t output_bin = 0;
  float output_dequantized = 0.0f;
};

// The prepared experiment: tensors, the QAT graph after the seed's hand-setting, its convert(),
// the profile.
class SeedExperiment {
 public:
  // Throws std::invalid_argument for unusable options.
  SeedExperiment(const SeedOptions& options, const CpuFeatures& cpu);

  const SeedOptions& options() const { return options_; }
  const BackendProfile& profile() const { return profile_; }
  Shape4 output_shape() const { return input_shape_; }

  // The points each path uses: the QAT graph's fake-quant points as its forward derives them,
  // and what convert() derived for the int8 graph.
  PathResult derive_fake_quant_points() const;
  PathResult derive_int8_points() const;

  // Runs one path on given grids (the diagnosis swaps grids between paths): the QAT graph with
  // its fake-quant points pinned to the grids, or the converted graph re-quantized onto them.
  PathRun run_fake_quant(const PathGrids& grids) const;
  PathRun run_int8(const PathGrids& grids) const;

  ElementTrace trace_fake_quant(const PathGrids& grids, const ElementIndex& index) const;
  ElementTrace trace_int8(const PathGrids& grids, const ElementIndex& index) const;

  // What element traces need of the weights on given grids, made once for many traces (the
  // diagnosis classifies every open element).
  struct TraceWeights {
    PathGrids grids;
    std::vector<FakeQuantTrace> fake_quant;  // every weight's fake quantization (QAT path)
    std::vector<float> fake_quantized;
    std::vector<int8_t> quantized;  // convert()'s int8 weights
  };
  TraceWeights trace_weights(const PathGrids& grids) const;
  ElementTrace trace_fake_quant(const TraceWeights& weights, const ElementIndex& index) const;
  ElementTrace trace_int8(const TraceWeights& weights, const ElementIndex& index) const;

  // Both paths with their own qparams, every element computed, block by block, counting
  // mismatching elements without keeping the outputs (what a fix verification needs). The
  // counts equal compare_paths' on run_experiment's outputs.
  MismatchCounts count_path_mismatches() const;

 private:
  // The seed model on the engine, for one block of input rows: the conv is pointwise, so a block
  // of input rows gives exactly the same rows of the output, and the working set stays small.
  struct BlockGraphs {
    model::Graph block;  // kRowsPerBlock rows (all rows when fewer)
    model::Graph tail;   // the last, shorter block (empty when there is none)
  };
  // The output bins of the block of input rows starting at `row`, as a [C, rows, W] block,
  // computed in `workspace`'s tensors (one workspace per loop over blocks: no allocation per block).
  std::vector<uint8_t> block_bins(const BlockGraphs& graphs, int64_t row, run::RunWorkspace& workspace) const;
  BlockGraphs qat_graphs(const PathGrids& grids) const;
  BlockGraphs int8_graphs(const PathGrids& grids) const;
  std::vector<int8_t> quantize_weight(const PathGrids& grids) const;
  float input_at(const ElementIndex& index) const;

  SeedOptions options_;
  BackendProfile profile_;
  Shape4 input_shape_;
  Shape4 weight_shape_;
  std::vector<float> weight_;
  std::vector<float> bias_;
  // The QAT model after prepare_qat and the seed's hand-setting, and its convert(): the points
  // and modules qparity's engine runs (fake-quant points 0, 1, 2: input, weight, output).
  BlockGraphs qat_;
  BlockGraphs int8_;
};

struct SeedResult {
  SeedOptions options;
  BackendProfile profile;
  Shape4 output_shape;
  PathResult fake_quant;
  PathResult int8;
  Comparison compare;
};

// How a run may use the machine.
enum class PathConcurrency {
  kTwoThreads,  // the fake-quant path on a second thread (one experiment at a time)
  kOneThread,   // both paths on the caller's thread (when the caller runs experiments in parallel)
};

// Runs both paths of an experiment and compares them.
SeedResult run_experiment(const SeedExperiment& experiment,
                          PathConcurrency concurrency = PathConcurrency::kTwoThreads);

// Validates options, builds the experiment and runs it.
SeedResult run_seed(const SeedOptions& options, const CpuFeatures& cpu,
                    PathConcurrency concurrency = PathConcurrency::kTwoThreads);

}  // namespace qparity
