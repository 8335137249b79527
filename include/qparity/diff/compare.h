// Element-wise comparison of the fake-quant path and the int8 path.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "qparity/ops/conv2d.h"

namespace qparity {

struct ElementIndex {
  int64_t n = 0, c = 0, h = 0, w = 0;
  friend bool operator==(const ElementIndex&, const ElementIndex&) = default;
};

ElementIndex unravel(const Shape4& shape, int64_t flat);

struct FirstMismatch {
  ElementIndex index;
  float error_fp32 = 0.0f;  // |expected - actual| there
  int64_t expected_q = 0;   // fake-quant bin
  int64_t actual_q = 0;     // int8 bin
};

struct Comparison {
  // Mean of |expected - actual|: float32 errors summed in double, in eight interleaved lanes
  // (a fixed order, so results are reproducible; PyTorch's float32 mean differs by ~1e-7).
  double error_mean = 0.0;
  float error_max = 0.0f;
  int64_t element_count = 0;
  int64_t fp32_mismatch_count = 0;  // elements with nonzero float error
  int64_t bin_mismatch_count = 0;   // elements whose bins differ
  int64_t max_abs_delta_q = 0;      // max |expected_q - actual_q|
  // First element in NCHW order whose float error is nonzero or whose bins differ.
  std::optional<FirstMismatch> first_mismatch;
  // Every row of every channel equals row 0 of channel 0, in both paths.
  bool rows_identical = true;
};

// One path's output: quint8 bins, and the float each bin stands for in that path (the
// fake-quant output value / the dequantized int8 value).
struct PathOutputs {
  std::span<const uint8_t> bins;
  const std::array<float, 256>* value_of_bin = nullptr;
};

Comparison compare_paths(const Shape4& shape, PathOutputs expected, PathOutputs actual);

// Only the two counts of compare_paths (what a fix verification needs), computed faster.
struct MismatchCounts {
  int64_t bins = 0;    // elements whose bins differ
  int64_t floats = 0;  // elements whose float outputs differ
};
MismatchCounts count_mismatches(PathOutputs expected, PathOutputs actual);

}  // namespace qparity
