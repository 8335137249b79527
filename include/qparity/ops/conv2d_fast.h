// conv2d fast kernels: the same bits as the reference kernels of conv2d.h, computed by im2col
// blocks and a GEMM micro-kernel (int8), a direct depthwise kernel (int8), and row-vectorised
// float loops. conv2d_accumulators / conv2d_float call them unless force_reference is set;
// tests/unit/conv2d_fast_test.cpp proves every code path equal to the reference.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "qparity/ops/conv2d.h"

namespace qparity {

// The instruction sets a fast int8 kernel has a code path for. Every path computes the
// reference's bits; they differ in speed only.
enum class KernelIsa {
  kPortable,  // plain C++ loops, any CPU
  kAvx2,      // vpmaddubsw / vpmaddwd micro-kernels, the instructions the real kernels use
};

std::string_view to_string(KernelIsa isa);

// The paths this CPU can run, portable first (tests run them all).
std::vector<KernelIsa> runnable_kernel_isas();

// The path conv2d_accumulators takes on this CPU: the last of runnable_kernel_isas().
KernelIsa preferred_kernel_isa();

// The accumulators of conv2d_accumulators(args, model), bit for bit, by the fast kernels on
// path `isa` (which the CPU must run). Returns false, `out` unspecified, when the arguments are
// outside what the fast kernels take: a model that reads padding as the bin x_zp with an x_zp
// that is no u8 bin. Throws as the reference does for inconsistent shapes.
bool conv2d_accumulators_fast(const QuantizedConv2dArgs& args, AccumulationModel model,
                              KernelIsa isa, std::vector<int32_t>& out);

// conv2d_float(args), bit for bit: every output sums its products in float in (channel, kh,
// kw) order, padded taps skipped, then adds the bias and applies the ReLU; the loops run over
// a row of outputs at once, never reordering one output's sum.
void conv2d_float_fast(const FloatConv2dArgs& args, std::vector<float>& out);

}  // namespace qparity
