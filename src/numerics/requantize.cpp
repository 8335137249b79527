#include "qparity/numerics/requantize.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "common/format.h"
#include "qparity/numerics/quantize.h"

namespace qparity {
namespace {

RequantChannel prepare_qnnpack(const RequantInputs& in) {
  RequantChannel r;
  // eq. 6.2a: the bias is quantized to qint32 on the grid double(w_s)*double(x_s),
  // with quantize_val's float reciprocal and RNE.
  const double bias_scale =
      static_cast<double>(in.weight_scale) * static_cast<double>(in.input_scale);
  if (in.has_bias) {
    const QuantGrid grid{to_f32(bias_scale), 0, storage_range(QDType::kQInt32)};
    r.int_bias = static_cast<int32_t>(quantize_value(in.bias, grid));
  }
  // eq. 6.2b: M = f(f(w_s * x_s) * f(1 / out_s)), all float.
  const float inverse_output_scale = 1.0f / in.output_scale;
  r.accumulator_scale = in.weight_scale * in.input_scale;
  r.multiplier = r.accumulator_scale * inverse_output_scale;
  if (!(r.multiplier > 0.0f && std::isnormal(r.multiplier))) {
    throw std::invalid_argument("qnnpack: failed to create op with requantization scale: " +
                                detail::g9(static_cast<double>(r.multiplier)) +
                                ": requantization scale must be finite and positive");
  }
  r.lower_clamp = in.relu ? static_cast<int32_t>(in.output_zero_point) : 0;
  return r;
}

RequantChannel prepare_onednn(const RequantInputs& in) {
  RequantChannel r;
  // eq. 6.3a: oneDNN scales are reciprocals. Per-tensor weight reciprocal in double,
  // per-channel in float; input and output reciprocals in double, stored as float.
  const float src = to_f32(1.0 / static_cast<double>(in.input_scale));
  const float w_inv = in.weight_per_channel ? 1.0f / in.weight_scale
                                            : to_f32(1.0 / static_cast<double>(in.weight_scale));
  const float dst = to_f32(1.0 / static_cast<double>(in.output_scale));
  const float bs = src * w_inv;
  r.accumulator_scale = 1.0f / bs;
  // eq. 6.3b-c
  r.multiplier = dst / bs;
  r.float_bias = in.has_bias ? in.bias * bs : 0.0f;
  r.relu = in.relu;
  return r;
}

RequantChannel prepare_fbgemm(const RequantInputs& in) {
  RequantChannel r;
  // eq. 6.4a-b: atws = f(x_s * w_s), C = f(atws / out_s); the per-tensor AVX2 path
  // multiplies the bias by f(1.0 / double(atws)), the per-channel one divides.
  const float atws = in.input_scale * in.weight_scale;
  r.accumulator_scale = atws;
  r.multiplier = atws / in.output_scale;
  if (in.has_bias && in.weight_per_channel) {
    r.float_bias = in.bias / atws;
  } else if (in.has_bias) {
    r.bias = in.bias;
    r.bias_reciprocal = to_f32(1.0 / static_cast<double>(atws));
    r.float_bias = in.bias * r.bias_reciprocal;
    // eq. 6.4a': the compiled kernel fuses this product into the add (vfmadd231ps).
    r.fused_bias = in.per_tensor_bias_add == BiasAddRounding::kFusedMultiplyAdd;
  }
  r.lower_clamp = in.relu ? static_cast<int32_t>(in.output_zero_point) : 0;
  return r;
}

}  // namespace

RequantChannel prepare_requant(RequantScheme scheme, const RequantInputs& in) {
  RequantChannel r;
  switch (scheme) {
    case RequantScheme::kQnnpackFp32:
      r = prepare_qnnpack(in);
      break;
    case RequantScheme::kOnednnReciprocalFp32:
      r = prepare_onednn(in);
      break;
    case RequantScheme::kFbgemmFp32:
      r = prepare_fbgemm(in);
      break;
  }
  r.scheme = scheme;
  r.output_zero_point = static_cast<int32_t>(in.output_zero_point);
  r.relu = in.relu;
  return r;
}

}  // namespace qparity
