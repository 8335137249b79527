#include "qparity/numerics/sleef_expf.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "qparity/numerics/float32.h"

namespace qparity {

// Sleef 3.5.1 xexpf (src/libm/sleefsimdsp.c), vmla = fma, vrint = cvtps2dq: a Cody-Waite
// reduction by ln 2 in two parts, a degree-6 polynomial, and a scaling by 2^q in two exact
// power-of-two multiplies.
float sleef_expf_avx2(float d) {
  constexpr float kRLn2 = 1.442695040888963407359924681001892137426645954152985934135449406931f;
  constexpr float kL2U = 0.693145751953125f;
  constexpr float kL2L = 1.428606765330187045e-06f;
  const int32_t q = convert_to_int32_x86(d * kRLn2);
  const auto qf = static_cast<float>(q);
  float s = std::fma(qf, -kL2U, d);
  s = std::fma(qf, -kL2L, s);
  float u = 0.000198527617612853646278381f;
  u = std::fma(u, s, 0.00139304355252534151077271f);
  u = std::fma(u, s, 0.00833336077630519866943359f);
  u = std::fma(u, s, 0.0416664853692054748535156f);
  u = std::fma(u, s, 0.166666671633720397949219f);
  u = std::fma(u, s, 0.5f);
  u = 1.0f + std::fma(s * s, u, s);
  const int32_t q1 = q >> 1;
  const auto pow2 = [](int32_t e) { return std::bit_cast<float>(static_cast<uint32_t>(e + 0x7f) << 23); };
  u = (u * pow2(q1)) * pow2(q - q1);
  if (d < -104.0f) u = 0.0f;
  if (d > 100.0f) u = std::numeric_limits<float>::infinity();
  return u;
}

}  // namespace qparity
