#include "qparity/profile/backend_profile.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace qparity {

std::string_view to_string(RequantScheme scheme) {
  switch (scheme) {
    case RequantScheme::kQnnpackFp32:
      return "qnnpack fp32 (int32 bias, M = f(f(w_s*x_s)*f(1/out_s)), RNE, +zp)";
    case RequantScheme::kOnednnReciprocalFp32:
      return "onednn fp32 (reciprocal scales, float bias, +zp in float, RNE)";
    case RequantScheme::kFbgemmFp32:
      return "fbgemm fp32 (float bias b/atws, C = f(atws/out_s), RNE, +zp)";
  }
  return "?";
}

std::string_view to_string(AccumulationModel model) {
  switch (model) {
    case AccumulationModel::kExactInt32:
      return "exact int32";
    case AccumulationModel::kInt16PairSaturation:
      return "int16-saturating u8*s8 pairs (vpmaddubsw, no VNNI)";
  }
  return "?";
}

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  // Leaf 7 subleaf 0: ECX bit 11 = AVX512_VNNI; subleaf 1: EAX bit 4 = AVX_VNNI.
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) f.avx512_vnni = (c >> 11) & 1u;
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = (a >> 4) & 1u;
#endif
  return f;
}

std::vector<std::string_view> backend_names() { return {"fbgemm", "qnnpack", "onednn"}; }

std::optional<BackendProfile> make_backend_profile(std::string_view name, const CpuFeatures& cpu) {
  BackendProfile p;
  p.name = std::string(name);
  if (name == "qnnpack") {
    p.requant = RequantScheme::kQnnpackFp32;
    p.accumulation = AccumulationModel::kExactInt32;
    p.fused_fake_quant_rule = QParamRule::kAtenChooseQuantizationParams;
    p.verified_against_real_kernel = true;
    p.provenance =
        "PyTorch 1.13.1 qnnpack engine (Debian build, no FBGEMM), checked bit-exact against the real "
        "kernels by qparity's parity tests";
    return p;
  }
  if (name == "onednn") {
    p.requant = RequantScheme::kOnednnReciprocalFp32;
    p.accumulation = cpu.has_vnni() ? AccumulationModel::kExactInt32
                                    : AccumulationModel::kInt16PairSaturation;
    p.fused_fake_quant_rule = QParamRule::kAtenChooseQuantizationParams;
    p.requires_zero_weight_zero_point = true;
    p.verified_against_real_kernel = true;
    p.provenance = std::string("PyTorch 1.13.1 onednn engine (Debian build, oneDNN 2.6.3), checked "
                               "bit-exact against the real kernels; this CPU ") +
                   (cpu.has_vnni() ? "has VNNI: exact int32 accumulation"
                                   : "lacks VNNI: u8*s8 pair sums saturate to int16");
    return p;
  }
  if (name == "fbgemm") {
    p.requant = RequantScheme::kFbgemmFp32;
    // The seed experiment's products never approach int16 limits; pair saturation of
    // fbgemm's packed layout is not modelled (see docs/numerics.md §9).
    p.accumulation = AccumulationModel::kExactInt32;
    p.fused_fake_quant_rule = QParamRule::kFbgemmChooseQuantizationParams;
    p.verified_against_real_kernel = false;
    p.provenance =
        "EMULATED from FBGEMM v0.3.0 / PyTorch 1.13.1 source semantics (official x86 wheels); "
        "Debian's PyTorch has no fbgemm, so no real-kernel check was possible here";
    return p;
  }
  return std::nullopt;
}

}  // namespace qparity
