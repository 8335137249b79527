// Fast whole-span versions of the scalar kernels (quantize, fake quantize, requantize,
// dequantize), written so the compiler can vectorize them: float-domain clamps and selects
// instead of int64 casts and branches. Each is proven bit-identical to its scalar reference
// (the normative definition) on random and edge inputs by tests/unit/span_kernels_test.cpp.
#pragma once

#include <cstdint>
#include <span>

#include "qparity/numerics/quantize.h"
#include "qparity/numerics/requantize.h"

namespace qparity {

// True when the span kernels below apply to `g`: bins and zero point within 2^24, so that
// every bin and bin - zp is exact in float.
bool span_kernels_support(const QuantGrid& g);

// eq. 4.1 on every element: fake-quantized values, and the bins when `bins` is not empty
// (then the range must lie in [0, 255]).
void fake_quantize_span(std::span<const float> x, const QuantGrid& g, std::span<float> values,
                        std::span<uint8_t> bins);

// The bins of eq. 4.1 alone (the range must lie in [0, 255]).
void fake_quant_bins_span(std::span<const float> x, const QuantGrid& g, std::span<uint8_t> bins);

// eq. 5.1 on every element into quint8 (the grid's range must lie in [0, 255]).
void quantize_span(std::span<const float> x, const QuantGrid& g, std::span<uint8_t> q);

// eq. 5.2 on every element.
void dequantize_span(std::span<const uint8_t> q, float scale, int64_t zero_point,
                     std::span<float> out);

// eq. 6.2c / 6.3d / 6.4c on every accumulator of one output channel.
void requantize_span(std::span<const int32_t> acc, const RequantChannel& r, std::span<uint8_t> out);

}  // namespace qparity
