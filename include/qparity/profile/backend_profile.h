// BackendProfile: the numerics of one framework engine, as named runtime data
// (docs/numerics.md §6-§7). One binary emulates every profile; nothing here is #if.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qparity/numerics/qparam_rules.h"

namespace qparity {

// How the int8 kernel turns an int32 accumulator into an output bin (eq. 6.2-6.4).
enum class RequantScheme {
  // qnnpack: bias rounded to int32 (eq. 6.2), M = f(f(w_s*x_s)*f(1/out_s)), RNE, + zp after.
  kQnnpackFp32,
  // onednn: reciprocal scales, float bias, ReLU and + zp in float before RNE (eq. 6.3).
  kOnednnReciprocalFp32,
  // fbgemm: float bias f(b/atws), C = f(atws/out_s), RNE, + zp after (eq. 6.4).
  kFbgemmFp32,
};

// How the int32 accumulator itself is formed (eq. 6.1 / 6.5).
enum class AccumulationModel {
  // Exact Σ (x - x_zp)(w - w_zp) in int32 (wrapping), as with VNNI or 16-bit operands.
  kExactInt32,
  // x86 without VNNI: u8*s8 products of adjacent input-channel pairs summed with
  // vpmaddubsw, which saturates to int16, before widening (eq. 6.5).
  kInt16PairSaturation,
};

std::string_view to_string(RequantScheme scheme);
std::string_view to_string(AccumulationModel model);

struct BackendProfile {
  std::string name;  // the engine name a user passes: qnnpack, onednn, fbgemm
  RequantScheme requant = RequantScheme::kQnnpackFp32;
  AccumulationModel accumulation = AccumulationModel::kExactInt32;
  // The rule torch.fused_moving_avg_obs_fake_quant calls in the build this profile
  // describes: ATen's in Debian's build (no FBGEMM), FBGEMM's in official x86 wheels.
  QParamRule fused_fake_quant_rule = QParamRule::kAtenChooseQuantizationParams;
  // The weight zero point must be 0 (onednn rejects others at prepack).
  bool requires_zero_weight_zero_point = false;
  // True when a parity test checks this profile against a real PyTorch kernel here.
  bool verified_against_real_kernel = false;
  // One sentence on where the semantics come from, printed in every report.
  std::string provenance;
};

// CPU facts that change what a real kernel does.
struct CpuFeatures {
  bool avx512_vnni = false;
  bool avx_vnni = false;
  bool has_vnni() const { return avx512_vnni || avx_vnni; }
};

// Reads /proc/cpuinfo-equivalent facts of this machine (cpuid on x86).
CpuFeatures detect_cpu_features();

// The engine names qparity knows, in the order help text lists them.
std::vector<std::string_view> backend_names();

// The profile for an engine as it runs on a machine with `cpu`; nullopt for unknown names.
std::optional<BackendProfile> make_backend_profile(std::string_view name, const CpuFeatures& cpu);

}  // namespace qparity
