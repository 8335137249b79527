#pragma once

#include <string_view>

namespace qparity {
// The library version (major.minor.patch).
std::string_view version();

// The clone of the multiversioned kernels this process runs: "avx2" or "default" (the baseline
// x86-64 code; the only one when built with QPARITY_FORCE_BASELINE=ON or for another CPU).
std::string_view kernel_clone();
}  // namespace qparity
