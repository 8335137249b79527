#include "qparity/diff/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace qparity {
namespace {

bool rows_match_first(const Shape4& shape, std::span<const uint8_t> bins) {
  const auto width = static_cast<size_t>(shape.w);
  const auto rows = static_cast<size_t>(shape.n * shape.c * shape.h);
  for (size_t r = 1; r < rows; ++r) {
    if (!std::equal(bins.begin(), bins.begin() + static_cast<std::ptrdiff_t>(width),
                    bins.begin() + static_cast<std::ptrdiff_t>(r * width))) {
      return false;
    }
  }
  return true;
}

}  // namespace

ElementIndex unravel(const Shape4& s, int64_t flat) {
  ElementIndex i;
  i.w = flat % s.w;
  flat /= s.w;
  i.h = flat % s.h;
  flat /= s.h;
  i.c = flat % s.c;
  i.n = flat / s.c;
  return i;
}

Comparison compare_paths(const Shape4& shape, PathOutputs expected, PathOutputs actual) {
  const auto count = static_cast<size_t>(shape.numel());
  if (expected.bins.size() != count || actual.bins.size() != count ||
      expected.value_of_bin == nullptr || actual.value_of_bin == nullptr) {
    throw std::invalid_argument("compare_paths: outputs do not match the shape");
  }
  const std::array<float, 256>& expected_value = *expected.value_of_bin;
  const std::array<float, 256>& actual_value = *actual.value_of_bin;
  Comparison c;
  c.element_count = shape.numel();
  double error_sum = 0.0;
  for (size_t i = 0; i < count; ++i) {
    const float error = std::fabs(expected_value[expected.bins[i]] - actual_value[actual.bins[i]]);
    const int64_t dq = static_cast<int64_t>(expected.bins[i]) - actual.bins[i];
    error_sum += static_cast<double>(error);
    c.error_max = std::max(c.error_max, error);
    if (error != 0.0f) ++c.fp32_mismatch_count;
    if (dq != 0) ++c.bin_mismatch_count;
    c.max_abs_delta_q = std::max(c.max_abs_delta_q, std::abs(dq));
    if (!c.first_mismatch && (error != 0.0f || dq != 0)) {
      c.first_mismatch =
          FirstMismatch{unravel(shape, static_cast<int64_t>(i)), error, expected.bins[i], actual.bins[i]};
    }
  }
  c.error_mean = count == 0 ? 0.0 : error_sum / static_cast<double>(count);
  c.rows_identical = rows_match_first(shape, expected.bins) && rows_match_first(shape, actual.bins);
  return c;
}

}  // namespace qparity
