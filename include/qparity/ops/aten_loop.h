// How ATen's cpu_kernel_vec splits an elementwise op between its two lambdas (docs/numerics.md
// eq. 6.9): the elements, in memory order, are cut into one chunk per thread, and each chunk
// runs its vector lambda on whole blocks of two vectors and its scalar lambda on the rest. The
// two lambdas round differently (an FMA dequantize, Sleef's expf), so which element lands where
// is part of the numerics.
#pragma once

#include <algorithm>
#include <cstdint>

namespace qparity {

struct AtenLoop {
  int64_t block = 64;  // elements per vector iteration: 2 x Vectorized<T>::size() (quint8: 64, float: 16)
  int threads = 1;     // the framework's intra-op threads (at::get_num_threads())
};

// ATen's internal::GRAIN_SIZE: an op below it runs on one thread.
constexpr int64_t kAtenGrainSize = 32768;

constexpr AtenLoop kAtenQuint8Loop{64, 1};
constexpr AtenLoop kAtenFloatLoop{16, 1};

// Calls range(begin, end, vectorized) over [0, n) in ATen's split: at::parallel_for's chunks
// (min(threads, ceil(n / grain)) of ceil(n / chunks) elements), each with its vector blocks
// first and its scalar tail last.
template <typename Range>
void for_each_aten_range(int64_t n, const AtenLoop& loop, Range&& range) {
  int64_t chunks = 1;
  if (loop.threads > 1 && n >= kAtenGrainSize) {
    chunks = std::min<int64_t>(loop.threads, (n + kAtenGrainSize - 1) / kAtenGrainSize);
  }
  const int64_t chunk = chunks == 0 ? n : (n + chunks - 1) / chunks;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t end = std::min(n, begin + chunk);
    const int64_t vector_end = begin + (end - begin) / loop.block * loop.block;
    if (vector_end > begin) range(begin, vector_end, true);
    if (end > vector_end) range(vector_end, end, false);
  }
}

}  // namespace qparity
