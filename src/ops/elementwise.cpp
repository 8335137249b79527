#include "qparity/ops/elementwise.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace qparity {

std::vector<int64_t> broadcast_dims(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      throw std::invalid_argument("shapes cannot broadcast: dimension " + std::to_string(i) +
                                  " is " + std::to_string(da) + " and " + std::to_string(db));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

float apply(BinaryOp op, float a, float b, float alpha) {
  switch (op) {
    case BinaryOp::kAdd:
      return alpha == 1.0f ? a + b : a + alpha * b;
    case BinaryOp::kSub:
      return alpha == 1.0f ? a - b : a - alpha * b;
    case BinaryOp::kMul:
      return a * b;
    case BinaryOp::kDiv:
      return a / b;
  }
  return 0.0f;
}

// Element strides of `dims` seen in a broadcast result of rank `rank` (0 where broadcast).
std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& dims, size_t rank) {
  std::vector<int64_t> strides(rank, 0);
  int64_t stride = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    const size_t r = i + (rank - dims.size());
    strides[r] = dims[i] == 1 ? 0 : stride;
    stride *= dims[i];
  }
  return strides;
}

}  // namespace

void broadcast_binary(const BroadcastBinaryArgs& args, std::vector<float>& out) {
  if (args.b.empty()) {
    out.resize(args.a.size());
    for (size_t i = 0; i < args.a.size(); ++i) {
      out[i] = apply(args.op, args.a[i], args.scalar, args.alpha);
    }
    return;
  }
  const std::vector<int64_t> dims = broadcast_dims(args.a_dims, args.b_dims);
  int64_t total = 1;
  for (const int64_t d : dims) total *= d;
  out.resize(static_cast<size_t>(total));
  const auto sa = broadcast_strides(args.a_dims, dims.size());
  const auto sb = broadcast_strides(args.b_dims, dims.size());
  std::vector<int64_t> index(dims.size(), 0);
  int64_t ia = 0;
  int64_t ib = 0;
  for (int64_t i = 0; i < total; ++i) {
    out[static_cast<size_t>(i)] = apply(args.op, args.a[static_cast<size_t>(ia)],
                                        args.b[static_cast<size_t>(ib)], args.alpha);
    // Odometer increment of the multi-index, moving both operand offsets along.
    for (size_t d = dims.size(); d-- > 0;) {
      ++index[d];
      ia += sa[d];
      ib += sb[d];
      if (index[d] < dims[d]) break;
      ia -= sa[d] * dims[d];
      ib -= sb[d] * dims[d];
      index[d] = 0;
    }
  }
}

void sqrt_span(std::span<const float> x, std::span<float> out) {
  for (size_t i = 0; i < x.size(); ++i) out[i] = std::sqrt(x[i]);
}

void relu_span(std::span<const float> x, std::span<float> out) {
  for (size_t i = 0; i < x.size(); ++i) out[i] = std::isnan(x[i]) ? x[i] : std::max(x[i], 0.0f);
}

void relu_bins(std::span<const uint8_t> q, int64_t zero_point, std::span<uint8_t> out) {
  const auto zp = static_cast<uint8_t>(std::clamp<int64_t>(zero_point, 0, 255));
  for (size_t i = 0; i < q.size(); ++i) out[i] = std::max(q[i], zp);
}

void hardtanh_span(std::span<const float> x, float min, float max, std::span<float> out) {
  for (size_t i = 0; i < x.size(); ++i) {
    out[i] = std::isnan(x[i]) ? x[i] : std::min(std::max(x[i], min), max);
  }
}

}  // namespace qparity
