// expf as the two paths of ATen's kernels compute it: Sleef 3.5.1's Sleef_expf8_u10 as built
// for AVX2 + FMA (Vectorized<float>::exp), and glibc's expf (std::exp on a float, QNNPACK).
// docs/numerics.md eq. 6.12c.
#pragma once

namespace qparity {

float sleef_expf_avx2(float d);

}  // namespace qparity
