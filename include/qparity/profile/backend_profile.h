// BackendProfile: the numerics of one framework engine, as named runtime data
// (docs/numerics.md §6-§7). One binary emulates every profile; nothing here is #if.
#pragma once

#include <cstdint>
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
  // fbgemm: float bias b/atws (per channel) or fused b*f(1/atws) (per tensor), C = f(atws/out_s),
  // RNE, + zp after (eq. 6.4).
  kFbgemmFp32,
};

// How the int32 accumulator itself is formed (eq. 6.1 / 6.5 / 6.6).
enum class AccumulationModel {
  // Exact Σ (x - x_zp)(w - w_zp) in int32 (wrapping), as with VNNI or 16-bit operands.
  kExactInt32,
  // x86 without VNNI, oneDNN's jit conv kernels: u8*s8 products of adjacent input-channel
  // pairs at one kernel tap summed with vpmaddubsw, which saturates to int16, before
  // widening (eq. 6.5).
  kInt16PairSaturation,
  // x86 without VNNI, oneDNN's gemm_s8u8s32: u8*s8 products of consecutive pairs along the
  // flattened (kh, kw, in-channel) reduction, in-channel fastest, saturated to int16; a pair
  // spans two taps when a group has an odd number of input channels (eq. 6.6).
  kInt16GemmPairSaturation,
  // FBGEMM's GEMM kernels without VNNI (pointwise and im2col convs, linear): the pairs of eq. 6.6,
  // but a padded tap reads the bin x_zp, as FBGEMM's im2col fills it, and takes part (eq. 6.6b).
  kFbgemmInt16GemmPairs,
  // FBGEMM's groupwise kernel without VNNI: the pairs of eq. 6.5 (channels 2j, 2j+1 at one tap),
  // a padded tap reading the bin x_zp (eq. 6.5b).
  kFbgemmInt16ChannelPairs,
  // FBGEMM's depthwise kernel on every CPU: products of taps (2p, 2p+1) in (kh, kw) order summed
  // with vpmaddubsw, a padded tap reading the bin x_zp (eq. 6.6c).
  kFbgemmInt16TapPairs,
};

// The x86 instruction-set class oneDNN 2.6.3 dispatches its int8 conv kernels on. It decides
// which kernel runs a conv, and so how that conv accumulates (conv_accumulation below).
enum class OnednnIsa {
  // AVX512-VNNI or AVX-VNNI: every int8 kernel multiplies with vpdpbusd, exactly (eq. 6.1).
  kVnni,
  // AVX-512 (F, BW, VL, DQ) without VNNI: jit kernels (eq. 6.5), gemm_s8u8s32 (eq. 6.6).
  kAvx512Core,
  // AVX2 without VNNI: jit kernels (eq. 6.5), ref_int8 (eq. 6.1). Older CPUs are modelled as
  // this class too, untested.
  kAvx2,
};

// The x86 instruction-set class FBGEMM 0d98c26 dispatches its int8 kernels on
// (fbgemmInstructionSet, src/Utils.cc:295-337). FBGEMM knows AVX512-VNNI only, not AVX-VNNI.
enum class FbgemmIsa {
  kAvx512Vnni,  // vpdpbusd in the GEMM and groupwise kernels: exact (eq. 6.1)
  kAvx512,      // AVX-512 F, BW, DQ, VL without VNNI: vpmaddubsw pairs (eq. 6.5b, 6.6b)
  kAvx2,        // AVX2: vpmaddubsw pairs (eq. 6.5b, 6.6b). Older CPUs have no FBGEMM at all.
};

// How the per-tensor float bias meets the accumulator in FBGEMM's requantization (eq. 6.4a).
enum class BiasAddRounding {
  // f(f(acc) + f(b * rcp)): two roundings.
  kTwoRoundings,
  // f(f(acc) + b * rcp) in one rounding: the compiled AVX2 / AVX-512 kernels contract the
  // product and the sum into vfmadd231ps (GCC's default -ffp-contract=fast), measured on the
  // real library.
  kFusedMultiplyAdd,
};

// How quantized::add / add_relu computes (eq. 6.7).
enum class AddScheme {
  kQnnpackFixedPoint,  // qnnpack's q8vadd: integer multipliers, round half away from zero
  kAtenGeneric,        // ATen's qadd_kernel: dequantize (FMA in vector blocks), add, requantize
};

std::string_view to_string(RequantScheme scheme);
std::string_view to_string(AddScheme scheme);
std::string_view to_string(AccumulationModel model);
std::string_view to_string(OnednnIsa isa);
std::string_view to_string(FbgemmIsa isa);

struct BackendProfile {
  std::string name;  // the engine name a user passes: qnnpack, onednn, fbgemm
  RequantScheme requant = RequantScheme::kQnnpackFp32;
  // The accumulation of the engine's main conv kernels, which run every ungrouped conv. A
  // conv's own model can differ by shape: ask conv_accumulation().
  AccumulationModel accumulation = AccumulationModel::kExactInt32;
  AddScheme add = AddScheme::kAtenGeneric;
  // The engine is qnnpack: quantized pooling and activations run QNNPACK's own operators where
  // ATen routes them there (q8avgpool, u8maxpool, clamp, the hardswish / hardsigmoid / sigmoid
  // tables; docs/numerics.md eq. 6.8a, 6.10-6.13, 6.18, 6.19), with their own rounding.
  bool qnnpack_operators = false;
  // onednn only: the ISA class its kernels are dispatched on (from the CpuFeatures).
  std::optional<OnednnIsa> onednn_isa;
  // fbgemm only: the ISA class its kernels are dispatched on (from the CpuFeatures). The conv
  // path, and so the accumulation, also depends on the conv's shape: see conv2d_accumulation.
  std::optional<FbgemmIsa> fbgemm_isa;
  // How a per-tensor float bias is added (eq. 6.4a); per-channel biases are divided first,
  // which no FMA can absorb, so they always take two roundings.
  BiasAddRounding per_tensor_bias_add = BiasAddRounding::kTwoRoundings;
  // The rule torch.fused_moving_avg_obs_fake_quant calls in the build this profile
  // describes: ATen's in Debian's build (no FBGEMM), FBGEMM's in official x86 wheels.
  QParamRule fused_fake_quant_rule = QParamRule::kAtenChooseQuantizationParams;
  // The weight zero point must be 0 (onednn rejects others at prepack).
  bool requires_zero_weight_zero_point = false;
  // qnnpack pads its per-channel weight scales with 8 entries of 1.0 and checks every
  // requantization scale, so f(f(1 * x_s) * f(1 / out_s)) must be normal too (eq. 6.2b).
  bool checks_padded_unit_weight_scale = false;
  // A what-if for the diagnosis: every conv and linear accumulates this way, whatever kernel the
  // engine would pick (e.g. exact int32 sums, to measure what pair saturation costs). Never set
  // by make_backend_profile.
  std::optional<AccumulationModel> accumulation_override;
  // True when a parity test checks this profile against a real PyTorch kernel here.
  bool verified_against_real_kernel = false;
  // One sentence on where the semantics come from, printed in every report.
  std::string provenance;
};

// CPU facts that change what a real kernel does. Each flag is set only when the OS also saves
// the registers it needs (XCR0), as oneDNN's own detection requires.
struct CpuFeatures {
  bool avx2 = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512_vnni = false;
  bool avx_vnni = false;
  bool has_vnni() const { return avx512_vnni || avx_vnni; }
  // oneDNN's "avx512_core": AVX512 F, BW, VL and DQ.
  bool has_avx512_core() const { return avx512f && avx512bw && avx512vl && avx512dq; }
};

// Reads /proc/cpuinfo-equivalent facts of this machine (cpuid and xgetbv on x86).
CpuFeatures detect_cpu_features();

// A CPU of a named ISA class as cpuid would describe it, to ask "what would an engine do on CPU
// X": "avx2"; "avx512" or "avx512_core" (AVX-512 F, BW, VL, DQ); "avx512_vnni" or "vnni" (those
// and AVX512-VNNI). The names of to_string(FbgemmIsa) and to_string(OnednnIsa); nullopt for others.
std::optional<CpuFeatures> cpu_features_of_class(std::string_view name);

// The ISA class oneDNN dispatches on for `cpu`: VNNI first, then AVX-512 core, else AVX2.
OnednnIsa onednn_isa_of(const CpuFeatures& cpu);

// The ISA class FBGEMM dispatches on for `cpu`: AVX512-VNNI first, then AVX-512 (F, BW, DQ, VL),
// else AVX2.
FbgemmIsa fbgemm_isa_of(const CpuFeatures& cpu);

// Whether oneDNN 2.6.3's jit int8 conv kernels take a conv with these channel counts: every
// ungrouped conv, depthwise (1 in and 1 out channel per group), and grouped convs whose
// per-group input and output channels are both multiples of 4. It sends the rest to a
// fallback: ref_int8 on AVX2, gemm_s8u8s32 on AVX-512 (seen with ONEDNN_VERBOSE).
bool onednn_jit_takes_conv(int64_t groups, int64_t in_channels_per_group,
                           int64_t out_channels_per_group);

// The accumulation model `profile` uses for one conv (eq. 6.1 / 6.5 / 6.6), by its groups and
// per-group channel counts. Equal to profile.accumulation except on onednn: depthwise convs
// widen to 16 bits (exact), and grouped convs the jit kernels refuse accumulate as their
// fallback does (exact with VNNI or on AVX2's ref_int8, eq. 6.6 on AVX-512's gemm).
AccumulationModel conv_accumulation(const BackendProfile& profile, int64_t groups,
                                    int64_t in_channels_per_group,
                                    int64_t out_channels_per_group);

// The engine names qparity knows, in the order help text lists them.
std::vector<std::string_view> backend_names();

// The profile for an engine as it runs on a machine with `cpu`; nullopt for unknown names.
std::optional<BackendProfile> make_backend_profile(std::string_view name, const CpuFeatures& cpu);

}  // namespace qparity
