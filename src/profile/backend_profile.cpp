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

std::string_view to_string(AddScheme scheme) {
  switch (scheme) {
    case AddScheme::kQnnpackFixedPoint:
      return "qnnpack fixed point (integer multipliers, round half away from zero)";
    case AddScheme::kAtenGeneric:
      return "ATen generic (dequantize, float add, RNE requantize)";
  }
  return "?";
}

std::string_view to_string(AccumulationModel model) {
  switch (model) {
    case AccumulationModel::kExactInt32:
      return "exact int32";
    case AccumulationModel::kInt16PairSaturation:
      return "int16-saturating u8*s8 pairs (vpmaddubsw, no VNNI)";
    case AccumulationModel::kInt16GemmPairSaturation:
      return "int16-saturating u8*s8 pairs along (kh, kw, in-channel) (gemm_s8u8s32, no VNNI)";
    case AccumulationModel::kFbgemmInt16GemmPairs:
      return "int16-saturating u8*s8 pairs along (kh, kw, in-channel), padding = x_zp "
             "(FBGEMM GEMM, no VNNI)";
    case AccumulationModel::kFbgemmInt16ChannelPairs:
      return "int16-saturating u8*s8 pairs of input channels per tap, padding = x_zp "
             "(FBGEMM groupwise, no VNNI)";
    case AccumulationModel::kFbgemmInt16TapPairs:
      return "int16-saturating u8*s8 pairs of kernel taps, padding = x_zp (FBGEMM depthwise)";
  }
  return "?";
}

std::string_view to_string(OnednnIsa isa) {
  switch (isa) {
    case OnednnIsa::kVnni:
      return "vnni";
    case OnednnIsa::kAvx512Core:
      return "avx512_core";
    case OnednnIsa::kAvx2:
      return "avx2";
  }
  return "?";
}

std::string_view to_string(FbgemmIsa isa) {
  switch (isa) {
    case FbgemmIsa::kAvx512Vnni:
      return "avx512_vnni";
    case FbgemmIsa::kAvx512:
      return "avx512";
    case FbgemmIsa::kAvx2:
      return "avx2";
  }
  return "?";
}

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  // Which register states the OS saves (XCR0, readable when leaf 1 ECX bit 27 OSXSAVE is set):
  // bits 1-2 for YMM (AVX, AVX2, AVX-VNNI), and 5-7 too for ZMM (AVX-512). Like oneDNN's
  // detection (Xbyak), a feature whose registers the OS does not save counts as absent.
  unsigned a = 0, b = 0, c = 0, d = 0;
  bool os_ymm = false, os_zmm = false;
  if (__get_cpuid(1, &a, &b, &c, &d) && ((c >> 27) & 1u)) {
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    os_ymm = (xcr0_lo & 0x6u) == 0x6u;
    os_zmm = os_ymm && (xcr0_lo & 0xe0u) == 0xe0u;
  }
  // Leaf 7 subleaf 0: EBX bit 5 AVX2, 16 AVX512F, 17 AVX512DQ, 30 AVX512BW, 31 AVX512VL;
  // ECX bit 11 AVX512_VNNI. Subleaf 1: EAX bit 4 AVX_VNNI.
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = os_ymm && ((b >> 5) & 1u);
    f.avx512f = os_zmm && ((b >> 16) & 1u);
    f.avx512dq = os_zmm && ((b >> 17) & 1u);
    f.avx512bw = os_zmm && ((b >> 30) & 1u);
    f.avx512vl = os_zmm && ((b >> 31) & 1u);
    f.avx512_vnni = os_zmm && ((c >> 11) & 1u);
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = os_ymm && ((a >> 4) & 1u);
#endif
  return f;
}

OnednnIsa onednn_isa_of(const CpuFeatures& cpu) {
  if (cpu.has_vnni()) return OnednnIsa::kVnni;
  if (cpu.has_avx512_core()) return OnednnIsa::kAvx512Core;
  return OnednnIsa::kAvx2;
}

std::optional<CpuFeatures> cpu_features_of_class(std::string_view name) {
  const bool vnni = name == "avx512_vnni" || name == "vnni";
  const bool avx512 = vnni || name == "avx512" || name == "avx512_core";
  if (!avx512 && name != "avx2") return std::nullopt;
  CpuFeatures cpu;
  cpu.avx2 = true;
  cpu.avx512f = cpu.avx512bw = cpu.avx512vl = cpu.avx512dq = avx512;
  cpu.avx512_vnni = vnni;
  return cpu;
}

FbgemmIsa fbgemm_isa_of(const CpuFeatures& cpu) {
  // fbgemmHasAvx512VnniSupport() asks cpuinfo for AVX512-VNNI alone, fbgemmHasAvx512Support()
  // for F, BW, DQ and VL (src/Utils.cc:357-369).
  if (cpu.avx512_vnni) return FbgemmIsa::kAvx512Vnni;
  if (cpu.has_avx512_core()) return FbgemmIsa::kAvx512;
  return FbgemmIsa::kAvx2;
}

bool onednn_jit_takes_conv(int64_t groups, int64_t in_channels_per_group,
                           int64_t out_channels_per_group) {
  if (groups == 1) return true;
  if (in_channels_per_group == 1 && out_channels_per_group == 1) return true;  // depthwise
  return in_channels_per_group % 4 == 0 && out_channels_per_group % 4 == 0;
}

AccumulationModel conv_accumulation(const BackendProfile& profile, int64_t groups,
                                    int64_t in_channels_per_group,
                                    int64_t out_channels_per_group) {
  if (!profile.onednn_isa || *profile.onednn_isa == OnednnIsa::kVnni) return profile.accumulation;
  // Depthwise kernels widen u8*s8 to 16 bits and add in int32: exact (docs/numerics.md §6.5).
  if (groups > 1 && in_channels_per_group == 1 && out_channels_per_group == 1) {
    return AccumulationModel::kExactInt32;
  }
  if (onednn_jit_takes_conv(groups, in_channels_per_group, out_channels_per_group)) {
    return profile.accumulation;
  }
  switch (*profile.onednn_isa) {
    case OnednnIsa::kAvx512Core:
      return AccumulationModel::kInt16GemmPairSaturation;  // gemm_s8u8s32 (eq. 6.6)
    case OnednnIsa::kAvx2:
    case OnednnIsa::kVnni:
      break;
  }
  return AccumulationModel::kExactInt32;  // ref_int8 (eq. 6.1)
}

std::vector<std::string_view> backend_names() { return {"fbgemm", "qnnpack", "onednn"}; }

std::optional<BackendProfile> make_backend_profile(std::string_view name, const CpuFeatures& cpu) {
  BackendProfile p;
  p.name = std::string(name);
  if (name == "qnnpack") {
    p.requant = RequantScheme::kQnnpackFp32;
    p.checks_padded_unit_weight_scale = true;
    p.add = AddScheme::kQnnpackFixedPoint;
    p.qnnpack_operators = true;
    p.accumulation = AccumulationModel::kExactInt32;
    p.fused_fake_quant_rule = QParamRule::kAtenChooseQuantizationParams;
    p.verified_against_real_kernel = true;
    p.provenance =
        "PyTorch 1.13.1 qnnpack engine (Debian build, no FBGEMM), checked bit-exact against the real "
        "kernels by qparity's parity tests";
    return p;
  }
  if (name == "onednn") {
    const OnednnIsa isa = onednn_isa_of(cpu);
    p.requant = RequantScheme::kOnednnReciprocalFp32;
    p.accumulation = isa == OnednnIsa::kVnni ? AccumulationModel::kExactInt32
                                             : AccumulationModel::kInt16PairSaturation;
    p.onednn_isa = isa;
    p.fused_fake_quant_rule = QParamRule::kAtenChooseQuantizationParams;
    p.requires_zero_weight_zero_point = true;
    p.verified_against_real_kernel = true;
    std::string cpu_text;
    switch (isa) {
      case OnednnIsa::kVnni:
        cpu_text = "has VNNI: exact int32 accumulation";
        break;
      case OnednnIsa::kAvx512Core:
        cpu_text = "lacks VNNI (oneDNN ISA avx512_core): u8*s8 pair sums saturate to int16, "
                   "per tap in the jit kernels and along (kh, kw, in-channel) in the gemm that "
                   "runs the grouped convs they refuse (see onednn_jit_takes_conv)";
        break;
      case OnednnIsa::kAvx2:
        cpu_text = "lacks VNNI (oneDNN ISA avx2): u8*s8 pair sums saturate to int16 in the jit "
                   "kernels; the grouped convs they refuse (see onednn_jit_takes_conv) run on "
                   "ref_int8, exact";
        break;
    }
    p.provenance = "PyTorch 1.13.1 onednn engine (Debian build, oneDNN 2.6.3), checked bit-exact "
                   "against the real kernels; this CPU " +
                   cpu_text;
    return p;
  }
  if (name == "fbgemm") {
    const FbgemmIsa isa = fbgemm_isa_of(cpu);
    p.requant = RequantScheme::kFbgemmFp32;
    p.per_tensor_bias_add = BiasAddRounding::kFusedMultiplyAdd;
    // The GEMM kernels' model (pointwise and im2col convs, linear); depthwise and groupwise convs
    // take their own (conv2d_accumulation).
    p.accumulation = isa == FbgemmIsa::kAvx512Vnni ? AccumulationModel::kExactInt32
                                                   : AccumulationModel::kFbgemmInt16GemmPairs;
    p.fbgemm_isa = isa;
    p.fused_fake_quant_rule = QParamRule::kFbgemmChooseQuantizationParams;
    // The kernels are checked against a real FBGEMM 0d98c26 (tests/fbgemm), but not through a
    // real PyTorch, and the report wording belongs to issue 12 item 4: the seed's reports keep
    // their text until then.
    p.verified_against_real_kernel = false;
    p.provenance =
        "EMULATED from FBGEMM v0.3.0 / PyTorch 1.13.1 source semantics (official x86 wheels); "
        "Debian's PyTorch has no fbgemm, so no real-kernel check was possible here";
    return p;
  }
  return std::nullopt;
}

}  // namespace qparity
