// Binary32 helpers shared by every emulated kernel.
//
// Notation of docs/numerics.md (eq. 0.1-0.3): f(x) rounds to float32 nearest-even,
// RNE(x) rounds to the nearest integer with ties to even.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace qparity {

// f(x), eq. 0.1: the one rounding a double->float store performs.
constexpr float to_f32(double x) { return static_cast<float>(x); }

// RNE(x), eq. 0.2: what std::nearbyint gives in the default rounding mode (PyTorch assumes it,
// qparity never changes it). Written with the 2^23 trick so it inlines and vectorizes: for
// |x| < 2^23, |x| + 2^23 has no fraction bits left and the addition itself rounds half to even;
// larger magnitudes, infinities and NaN are already "integers" and pass through. Proven equal to
// std::nearbyint on every float by tests/unit/numerics_test.cpp.
inline float round_half_even(float x) {
  constexpr float kTwoPow23 = 8388608.0f;
  const float magnitude = std::fabs(x);
  const float rounded = std::copysign((magnitude + kTwoPow23) - kTwoPow23, x);
  return magnitude < kTwoPow23 ? rounded : x;  // a select, not a branch: loops vectorize
}
inline double round_half_even(double x) { return std::nearbyint(x); }

// eq. 0.3: static_cast<int64_t>(float) as x86-64 executes it (cvttss2si): truncation
// toward zero, and the "integer indefinite" INT64_MIN for NaN and out-of-range values.
// PyTorch casts unchecked, so an infinite x/scale lands on INT64_MIN and then clamps to qmin.
inline int64_t truncate_to_int64_x86(float v) {
  constexpr float kTwoPow63 = 9223372036854775808.0f;
  if (std::isnan(v) || v >= kTwoPow63 || v < -kTwoPow63) {
    return std::numeric_limits<int64_t>::min();
  }
  return static_cast<int64_t>(v);
}

// Same for a double (cvttsd2si).
inline int64_t truncate_to_int64_x86(double v) {
  constexpr double kTwoPow63 = 9223372036854775808.0;
  if (std::isnan(v) || v >= kTwoPow63 || v < -kTwoPow63) {
    return std::numeric_limits<int64_t>::min();
  }
  return static_cast<int64_t>(v);
}

// 32-bit conversion as cvtps2dq does it (current rounding mode = RNE); NaN and
// out-of-range values give INT32_MIN.
inline int32_t convert_to_int32_x86(float v) {
  const float r = round_half_even(v);
  if (std::isnan(r) || r >= 2147483648.0f || r < -2147483648.0f) {
    return std::numeric_limits<int32_t>::min();
  }
  return static_cast<int32_t>(r);
}

// Signed distance in units in the last place between two finite floats (b - a).
inline int64_t ulp_distance(float a, float b) {
  auto ordered = [](float v) {
    const auto bits = static_cast<int64_t>(std::bit_cast<int32_t>(v));
    return bits < 0 ? std::numeric_limits<int32_t>::min() - bits : bits;
  };
  return ordered(b) - ordered(a);
}

}  // namespace qparity
