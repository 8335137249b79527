// Requantization: int32 accumulator -> quint8 output bin, per backend profile
// (docs/numerics.md §6, eq. 6.1-6.4).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "qparity/numerics/float32.h"
#include "qparity/profile/backend_profile.h"

namespace qparity {

// The scalars of one output channel's requantization, all as the real kernel holds them.
struct RequantInputs {
  float input_scale = 1.0f;
  float weight_scale = 1.0f;
  bool weight_per_channel = false;  // onednn rounds the reciprocal differently per channel
  float output_scale = 1.0f;
  int64_t output_zero_point = 0;
  float bias = 0.0f;
  bool has_bias = false;
  bool relu = false;
  // fbgemm: how a per-tensor bias meets the accumulator (BackendProfile::per_tensor_bias_add).
  BiasAddRounding per_tensor_bias_add = BiasAddRounding::kTwoRoundings;
};

// Constants a kernel precomputes once per output channel.
struct RequantChannel {
  RequantScheme scheme = RequantScheme::kQnnpackFp32;
  float multiplier = 0.0f;  // qnnpack M (eq. 6.2b), onednn OS (eq. 6.3c), fbgemm C (eq. 6.4b)
  int32_t int_bias = 0;     // qnnpack: bias on the accumulator grid (eq. 6.2a)
  float float_bias = 0.0f;  // onednn b' (eq. 6.3b), fbgemm b/atws or f(b*rcp) (eq. 6.4a)
  // fbgemm per tensor with BiasAddRounding::kFusedMultiplyAdd: f(acc) + bias * bias_reciprocal
  // in one rounding (eq. 6.4a'); float_bias above then only shows the product's size.
  bool fused_bias = false;
  float bias = 0.0f;
  float bias_reciprocal = 0.0f;  // f(1 / double(atws))
  int32_t output_zero_point = 0;
  int32_t lower_clamp = 0;  // out_zp with fused ReLU on qnnpack / fbgemm, else 0
  bool relu = false;
  // Intermediate scales kept for traces and diagnosis.
  float accumulator_scale = 0.0f;  // the scale one accumulator step stands for
};

// Precomputes the channel constants; throws std::invalid_argument with the kernel's own
// complaint when the real op would refuse them (e.g. a non-normal qnnpack multiplier).
RequantChannel prepare_requant(RequantScheme scheme, const RequantInputs& in);

// Every stage of one accumulator's requantization, for element traces.
struct RequantTrace {
  int32_t accumulator = 0;
  int32_t accumulator_with_bias = 0;  // qnnpack only
  float accumulator_float = 0.0f;     // f(acc) (+ bias for onednn / fbgemm)
  float scaled = 0.0f;                // times the multiplier (onednn: and ReLU), before any zp
  float pre_rounding = 0.0f;          // the value that is rounded (onednn: + zp, clamped)
  int32_t rounded = 0;
  int32_t unclamped = 0;              // after the zero point, before the final clamp
  int32_t output = 0;
};

// Saturating int16 add, as _mm_adds_epi16 after _mm_packs_epi32.
inline int32_t saturate_int16(int64_t v) {
  return static_cast<int32_t>(std::clamp<int64_t>(v, -32768, 32767));
}

// eq. 6.4a/6.4a': f(acc) plus the float bias, in two roundings or in the kernel's one FMA.
inline float fbgemm_biased_accumulator(int32_t acc, const RequantChannel& r) {
  const auto acc_f = static_cast<float>(acc);
  return r.fused_bias ? std::fma(r.bias, r.bias_reciprocal, acc_f) : acc_f + r.float_bias;
}

// The output bin. Every path here is a transcription of the kernel's scalar/vector
// tail; equation numbers refer to docs/numerics.md.
inline uint8_t requantize(int32_t acc, const RequantChannel& r, RequantTrace* trace = nullptr) {
  int32_t rounded = 0;
  int32_t unclamped = 0;
  int32_t out = 0;
  float acc_f = 0.0f;
  float scaled = 0.0f;
  float pre_rounding = 0.0f;
  int32_t acc_b = acc;
  switch (r.scheme) {
    case RequantScheme::kQnnpackFp32: {
      // eq. 6.2c: y = RNE(f(f(acc + qb) * M)); packs->int16, adds zp, packus, clamp.
      acc_b = static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(r.int_bias));
      acc_f = static_cast<float>(acc_b);
      scaled = acc_f * r.multiplier;
      pre_rounding = scaled;
      rounded = convert_to_int32_x86(scaled);
      unclamped = saturate_int16(saturate_int16(rounded) + r.output_zero_point);
      out = std::clamp(unclamped, std::max(r.lower_clamp, 0), 255);
      break;
    }
    case RequantScheme::kOnednnReciprocalFp32: {
      // eq. 6.3d: d = f(f(f(acc) + b') * OS); ReLU in float; + zp in float; clamp; RNE.
      acc_f = static_cast<float>(acc) + r.float_bias;
      scaled = acc_f * r.multiplier;
      if (r.relu) scaled = std::max(scaled, 0.0f);
      const float shifted = scaled + static_cast<float>(r.output_zero_point);
      pre_rounding = std::min(std::max(shifted, 0.0f), 255.0f);
      rounded = convert_to_int32_x86(pre_rounding);
      unclamped = convert_to_int32_x86(shifted);
      out = rounded;
      break;
    }
    case RequantScheme::kFbgemmFp32: {
      // eq. 6.4c: y = RNE(f((f(acc) + b_f) * C)); packs, adds zp, packus, max(relu ? zp : 0).
      acc_f = fbgemm_biased_accumulator(acc, r);
      scaled = acc_f * r.multiplier;
      pre_rounding = scaled;
      rounded = convert_to_int32_x86(scaled);
      unclamped = saturate_int16(saturate_int16(rounded) + r.output_zero_point);
      out = std::max(std::clamp(unclamped, 0, 255), r.lower_clamp);
      break;
    }
  }
  if (trace != nullptr) {
    *trace = {acc, acc_b, acc_f, scaled, pre_rounding, rounded, unclamped, out};
  }
  return static_cast<uint8_t>(out);
}

}  // namespace qparity
