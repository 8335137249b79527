// Sweeps: the seed-family experiment over ranges of k and sets of engines, observers and
// quantization knobs, with the outcome of every point and contiguous k ranges grouped by outcome.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "qparity/scenario/seed.h"

namespace qparity {

// k values: COUNT points from START to STOP inclusive, linear or log-spaced.
struct KRange {
  double start = 1e-3;
  double stop = 1e3;
  int64_t count = 61;
  bool log = true;
};

// Every k of the range, each rounded to the nearest float32 (boundaries are then searched
// between adjacent float32 values). Throws std::invalid_argument for unusable ranges.
std::vector<double> k_values(const KRange& range);

struct SweepSpec {
  KRange k;
  SeedOptions base;  // everything but k and the swept sets below
  std::vector<std::string> backends;      // empty = {base.backend}
  std::vector<ObserverKind> observers;    // empty = {base.observer}
  std::vector<QScheme> weight_qschemes;   // empty = {base.weight_qscheme}
  std::vector<bool> reduce_ranges;        // empty = {base.activation_reduce_range}
  std::vector<WeightPattern> weight_patterns;  // empty = {base.weight_pattern}
  bool diagnose = true;  // classify every diverging point
};

// What one point came to.
struct PointOutcome {
  int64_t bin_mismatch_count = 0;
  int64_t fp32_mismatch_count = 0;
  int64_t max_abs_delta_q = 0;
  float error_max = 0.0f;
  double error_mean = 0.0;
  std::optional<FirstMismatch> first_mismatch;
  // "agree", "float_only@output", "grid_mismatch@weight", ... ("diverge" without diagnosis);
  // several findings are joined with '+'.
  std::string outcome;
  std::optional<std::string> error;  // the engine refused the configuration
};

struct SweepPoint {
  SeedOptions options;  // the full configuration of the point
  PointOutcome result;
};

// One combination of the non-k parameters: its label and its points in k order.
struct SweepSeries {
  std::string label;  // e.g. "backend=qnnpack observer=fused"
  std::vector<size_t> points;  // indices into SweepResult::points
};

// A maximal run of consecutive k values with the same outcome in one series.
struct OutcomeRange {
  std::string series;
  std::string outcome;
  double k_first = 0.0, k_last = 0.0;
  int64_t points = 0;
};

// Where the outcome changes between two k values of a series; refined boundaries have k_low
// and k_high adjacent float32 values.
struct Boundary {
  std::string series;
  double k_low = 0.0, k_high = 0.0;
  std::string outcome_low, outcome_high;
  bool refined = false;
  int64_t refinement_runs = 0;
};

struct SweepResult {
  std::vector<SweepPoint> points;
  std::vector<SweepSeries> series;
  std::vector<OutcomeRange> ranges;
  std::vector<Boundary> boundaries;
};

// Called after each finished point / refinement run with (done, total) for progress display.
using SweepProgress = std::function<void(int64_t done, int64_t total)>;

// Runs every point on `threads` threads (results do not depend on the thread count).
// Throws std::invalid_argument for an unusable spec.
SweepResult run_sweep(const SweepSpec& spec, const CpuFeatures& cpu, int threads,
                      const SweepProgress& progress = {});

// Bisects every boundary of `result` down to adjacent float32 values of k. A sampled interval
// may hold several outcome changes (A -> B -> C); each is found in turn, so one sampled
// boundary can become several refined ones, in k order.
void refine_boundaries(SweepResult& result, const SweepSpec& spec, const CpuFeatures& cpu,
                       int threads, const SweepProgress& progress = {});

// The outcome of one configuration (the unit a sweep and its refinement run).
PointOutcome evaluate_point(const SeedOptions& options, const CpuFeatures& cpu, bool diagnose);

}  // namespace qparity
