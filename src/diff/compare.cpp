#include "qparity/diff/compare.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "common/multiversion.h"

namespace qparity {
namespace {

bool rows_match_first(const Shape4& shape, std::span<const uint8_t> bins) {
  const auto width = static_cast<size_t>(shape.w);
  const auto rows = static_cast<size_t>(shape.n * shape.c * shape.h);
  for (size_t r = 1; r < rows; ++r) {
    if (std::memcmp(bins.data(), bins.data() + r * width, width) != 0) return false;
  }
  return true;
}

// Per-chunk statistics, gathered in loops the compiler vectorizes.
struct ChunkStats {
  int64_t bin_mismatches = 0;
  int64_t fp32_mismatches = 0;
  int64_t max_abs_delta_q = 0;
  uint32_t max_error_bits = 0;  // errors are >= 0 (or NaN): their bits order like the floats
  std::array<double, 8> partial_sums{};  // eight lanes, summed in a fixed order at the end
};

constexpr size_t kChunk = 2048;

QPARITY_MULTIVERSION
void accumulate_chunk(const uint8_t* a, const uint8_t* b, size_t n,
                      const std::array<float, 256>& value_a, const std::array<float, 256>& value_b,
                      float* errors, ChunkStats& s) {
  for (size_t i = 0; i < n; ++i) {
    errors[i] = std::fabs(value_a[a[i]] - value_b[b[i]]);
  }
  int64_t bins = 0, floats = 0;
  int32_t max_dq = 0;
  uint32_t max_bits = s.max_error_bits;
  for (size_t i = 0; i < n; ++i) {
    const int32_t dq = static_cast<int32_t>(a[i]) - static_cast<int32_t>(b[i]);
    bins += dq != 0;
    max_dq = std::max(max_dq, dq < 0 ? -dq : dq);
    const uint32_t bits = std::bit_cast<uint32_t>(errors[i]);
    floats += bits != 0;
    max_bits = std::max(max_bits, bits);
  }
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t lane = 0; lane < 8; ++lane) {
      s.partial_sums[lane] += static_cast<double>(errors[i + lane]);
    }
  }
  for (; i < n; ++i) s.partial_sums[i % 8] += static_cast<double>(errors[i]);
  s.bin_mismatches += bins;
  s.fp32_mismatches += floats;
  s.max_abs_delta_q = std::max<int64_t>(s.max_abs_delta_q, max_dq);
  s.max_error_bits = max_bits;
}

QPARITY_MULTIVERSION
int64_t count_different_bytes(const uint8_t* a, const uint8_t* b, size_t n) {
  int64_t count = 0;
  for (size_t i = 0; i < n; ++i) count += a[i] != b[i];
  return count;
}

QPARITY_MULTIVERSION
int64_t count_different_values(const uint8_t* a, const uint8_t* b, size_t n,
                               const std::array<float, 256>& value_a,
                               const std::array<float, 256>& value_b) {
  int64_t count = 0;
  for (size_t i = 0; i < n; ++i) count += value_a[a[i]] != value_b[b[i]];
  return count;
}

}  // namespace

MismatchCounts count_mismatches(PathOutputs expected, PathOutputs actual) {
  if (expected.bins.size() != actual.bins.size() || expected.value_of_bin == nullptr ||
      actual.value_of_bin == nullptr) {
    throw std::invalid_argument("count_mismatches: outputs do not match");
  }
  const size_t n = expected.bins.size();
  MismatchCounts c;
  c.bins = count_different_bytes(expected.bins.data(), actual.bins.data(), n);
  // With one value table whose values are all distinct, floats differ exactly where bins do.
  std::array<float, 256> sorted = *expected.value_of_bin;
  std::sort(sorted.begin(), sorted.end());
  const bool follows_bins = *expected.value_of_bin == *actual.value_of_bin &&
                            std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
  c.floats = follows_bins ? c.bins
                          : count_different_values(expected.bins.data(), actual.bins.data(), n,
                                                   *expected.value_of_bin, *actual.value_of_bin);
  return c;
}

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
  const std::array<float, 256>& value_a = *expected.value_of_bin;
  const std::array<float, 256>& value_b = *actual.value_of_bin;
  Comparison c;
  c.element_count = shape.numel();
  ChunkStats stats;
  std::array<float, kChunk> errors;
  for (size_t start = 0; start < count; start += kChunk) {
    const size_t n = std::min(kChunk, count - start);
    const int64_t mismatches_before = stats.bin_mismatches + stats.fp32_mismatches;
    accumulate_chunk(expected.bins.data() + start, actual.bins.data() + start, n, value_a,
                     value_b, errors.data(), stats);
    // Scan a chunk element by element only when it holds the first mismatch.
    if (!c.first_mismatch && stats.bin_mismatches + stats.fp32_mismatches > mismatches_before) {
      for (size_t i = 0; i < n; ++i) {
        const uint8_t qa = expected.bins[start + i];
        const uint8_t qb = actual.bins[start + i];
        if (errors[i] != 0.0f || qa != qb || std::isnan(errors[i])) {
          c.first_mismatch = FirstMismatch{unravel(shape, static_cast<int64_t>(start + i)),
                                           errors[i], qa, qb};
          break;
        }
      }
    }
  }
  double sum = 0.0;
  for (const double lane : stats.partial_sums) sum += lane;
  c.error_mean = count == 0 ? 0.0 : sum / static_cast<double>(count);
  c.error_max = std::bit_cast<float>(stats.max_error_bits);
  c.fp32_mismatch_count = stats.fp32_mismatches;
  c.bin_mismatch_count = stats.bin_mismatches;
  c.max_abs_delta_q = stats.max_abs_delta_q;
  c.rows_identical = rows_match_first(shape, expected.bins) && rows_match_first(shape, actual.bins);
  return c;
}

}  // namespace qparity
