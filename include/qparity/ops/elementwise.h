// Elementwise float ops of the QAT path (add, sub, mul, div with broadcasting, sqrt, relu,
// hardtanh) and their quantized twins that act on bins. Each float op rounds once per element,
// as ATen's kernels do (IEEE add / mul / div / sqrt are correctly rounded, so vector width and
// order cannot change a result).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qparity {

enum class BinaryOp { kAdd, kSub, kMul, kDiv };

struct BroadcastBinaryArgs {
  BinaryOp op = BinaryOp::kAdd;
  std::span<const float> a;
  std::vector<int64_t> a_dims;
  std::span<const float> b;  // empty: use `scalar`
  std::vector<int64_t> b_dims;
  float scalar = 0.0f;  // the second operand as ATen holds a Python scalar: cast to float
  float alpha = 1.0f;   // add / sub: a ± alpha * b (alpha 1 is exact, as ATen's fmadd with 1)
};

// Output dims of broadcasting a and b (numpy rules); throws std::invalid_argument.
std::vector<int64_t> broadcast_dims(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

// a op b, broadcasting; `out` is resized to the broadcast shape.
void broadcast_binary(const BroadcastBinaryArgs& args, std::vector<float>& out);

void sqrt_span(std::span<const float> x, std::span<float> out);

// relu on floats (NaN passes through as ATen's clamp_min keeps it).
void relu_span(std::span<const float> x, std::span<float> out);
// relu on quint8 bins: max(q, zp) (the bin of real 0).
void relu_bins(std::span<const uint8_t> q, int64_t zero_point, std::span<uint8_t> out);

void hardtanh_span(std::span<const float> x, float min, float max, std::span<float> out);

}  // namespace qparity
