#include "qparity/numerics/span_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "common/multiversion.h"
#include "qparity/numerics/fake_quant.h"

namespace qparity {
namespace {

constexpr float kTwoPow63 = 9223372036854775808.0f;
constexpr float kTwoPow31 = 2147483648.0f;
constexpr int64_t kExactLimit = int64_t{1} << 24;

// clamp(trunc64(q), lo, hi) for an integer-valued float q, in the float domain: a q outside
// int64 (or NaN) is the x86 indefinite integer INT64_MIN and clamps to lo (eq. 0.3).
inline float clamp_like_int64(float q, float lo, float hi) {
  const bool representable = (q >= -kTwoPow63) & (q < kTwoPow63);  // & keeps it branch-free
  const float clamped = std::min(std::max(q, lo), hi);
  return representable ? clamped : lo;
}

// cvtps2dq of an integer-valued float: INT32_MIN when out of range or NaN.
inline int32_t to_int32_like_x86(float rounded) {
  const bool representable = (rounded >= -kTwoPow31) & (rounded < kTwoPow31);
  const auto value = static_cast<int32_t>(representable ? rounded : 0.0f);
  return representable ? value : INT32_MIN;
}

inline int32_t clamp_int(int32_t v, int32_t lo, int32_t hi) { return std::min(std::max(v, lo), hi); }

void check_sizes(size_t a, size_t b) {
  if (a != b) throw std::invalid_argument("span kernels: input and output sizes differ");
}

void check_u8(const QuantGrid& g) {
  if (!span_kernels_support(g) || g.range.min < 0 || g.range.max > 255) {
    throw std::invalid_argument("span kernels: the grid's range must lie in [0, 255]");
  }
}

}  // namespace

bool span_kernels_support(const QuantGrid& g) {
  return std::abs(g.zero_point) <= kExactLimit && g.range.max - g.zero_point <= kExactLimit &&
         g.zero_point - g.range.min <= kExactLimit && std::abs(g.range.min) <= kExactLimit &&
         std::abs(g.range.max) <= kExactLimit;
}

QPARITY_MULTIVERSION
void fake_quantize_span(std::span<const float> x, const QuantGrid& g, std::span<float> values,
                        std::span<uint8_t> bins) {
  check_sizes(x.size(), values.size());
  if (!span_kernels_support(g)) {
    for (size_t i = 0; i < x.size(); ++i) values[i] = fake_quantize_value(x[i], g);
    if (!bins.empty()) throw std::invalid_argument("span kernels: bins need a [0, 255] range");
    return;
  }
  const float inverse = 1.0f / g.scale;
  const auto zp = static_cast<float>(g.zero_point);
  const auto lo = static_cast<float>(g.range.min);
  const auto hi = static_cast<float>(g.range.max);
  const float scale = g.scale;
  // (bin - zp) is an exact float, so the float product equals eq. 4.1's one rounding of the
  // exact double product.
  if (bins.empty()) {
    for (size_t i = 0; i < x.size(); ++i) {
      const float bin = clamp_like_int64(zp + round_half_even(x[i] * inverse), lo, hi);
      values[i] = (bin - zp) * scale;
    }
    return;
  }
  check_u8(g);
  check_sizes(x.size(), bins.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float bin = clamp_like_int64(zp + round_half_even(x[i] * inverse), lo, hi);
    values[i] = (bin - zp) * scale;
    bins[i] = static_cast<uint8_t>(static_cast<int32_t>(bin));
  }
}

// The bin eq. 4.1 lands on is eq. 5.1 on the fake-quant module's range: the same arithmetic.
void fake_quant_bins_span(std::span<const float> x, const QuantGrid& g, std::span<uint8_t> bins) {
  quantize_span(x, g, bins);
}

QPARITY_MULTIVERSION
void quantize_span(std::span<const float> x, const QuantGrid& g, std::span<uint8_t> q) {
  check_u8(g);
  check_sizes(x.size(), q.size());
  const float inverse = 1.0f / g.scale;
  const auto zp = static_cast<float>(g.zero_point);
  const auto lo = static_cast<float>(g.range.min);
  const auto hi = static_cast<float>(g.range.max);
  for (size_t i = 0; i < x.size(); ++i) {
    const float bin = clamp_like_int64(zp + round_half_even(x[i] * inverse), lo, hi);
    q[i] = static_cast<uint8_t>(static_cast<int32_t>(bin));
  }
}

QPARITY_MULTIVERSION
void dequantize_span(std::span<const uint8_t> q, float scale, int64_t zero_point,
                     std::span<float> out) {
  check_sizes(q.size(), out.size());
  const auto zp = static_cast<int32_t>(zero_point);
  for (size_t i = 0; i < q.size(); ++i) {
    out[i] = scale * static_cast<float>(static_cast<int32_t>(q[i]) - zp);
  }
}

QPARITY_MULTIVERSION
void requantize_span(std::span<const int32_t> acc, const RequantChannel& r, std::span<uint8_t> out) {
  check_sizes(acc.size(), out.size());
  const int32_t zp = r.output_zero_point;
  const float multiplier = r.multiplier;
  switch (r.scheme) {
    case RequantScheme::kQnnpackFp32: {
      const auto bias = static_cast<uint32_t>(r.int_bias);
      const int32_t lower = std::max(r.lower_clamp, 0);
      for (size_t i = 0; i < acc.size(); ++i) {
        const auto with_bias = static_cast<int32_t>(static_cast<uint32_t>(acc[i]) + bias);
        const int32_t rounded =
            to_int32_like_x86(round_half_even(static_cast<float>(with_bias) * multiplier));
        const int32_t with_zp = clamp_int(clamp_int(rounded, -32768, 32767) + zp, -32768, 32767);
        out[i] = static_cast<uint8_t>(clamp_int(with_zp, lower, 255));
      }
      return;
    }
    case RequantScheme::kOnednnReciprocalFp32: {
      const float bias = r.float_bias;
      const auto zp_f = static_cast<float>(zp);
      const float relu_floor = r.relu ? 0.0f : -std::numeric_limits<float>::infinity();
      for (size_t i = 0; i < acc.size(); ++i) {
        const float scaled = (static_cast<float>(acc[i]) + bias) * multiplier;
        const float shifted = std::max(scaled, relu_floor) + zp_f;
        const float clamped = std::min(std::max(shifted, 0.0f), 255.0f);
        out[i] = static_cast<uint8_t>(static_cast<int32_t>(round_half_even(clamped)));
      }
      return;
    }
    case RequantScheme::kFbgemmFp32: {
      // Two loops so that the common two-rounding one stays free of the fma call and vectorizes.
      const auto finish = [&](float biased) {
        const int32_t rounded = to_int32_like_x86(round_half_even(biased * multiplier));
        const int32_t with_zp = clamp_int(clamp_int(rounded, -32768, 32767) + zp, -32768, 32767);
        return static_cast<uint8_t>(std::max(clamp_int(with_zp, 0, 255), r.lower_clamp));
      };
      if (r.fused_bias) {
        for (size_t i = 0; i < acc.size(); ++i) {
          out[i] = finish(std::fma(r.bias, r.bias_reciprocal, static_cast<float>(acc[i])));
        }
        return;
      }
      const float bias = r.float_bias;
      for (size_t i = 0; i < acc.size(); ++i) out[i] = finish(static_cast<float>(acc[i]) + bias);
      return;
    }
  }
}

}  // namespace qparity
