// Values flowing through an executor: float32 tensors, or quint8 tensors with their grid.
#pragma once

#include <cstdint>
#include <vector>

#include "qparity/model/graph.h"

namespace qparity::run {

struct Tensor {
  model::Dims dims;
  model::ValueType type = model::ValueType::kFloat;
  std::vector<float> values;  // kFloat
  std::vector<uint8_t> bins;  // kQUInt8
  double scale = 1.0;         // kQUInt8 grid, as PyTorch's q_scale() holds it
  int64_t zero_point = 0;

  int64_t numel() const { return model::numel(dims); }
  bool quantized() const { return type == model::ValueType::kQUInt8; }
};

Tensor float_tensor(model::Dims dims, std::vector<float> values);
Tensor quantized_tensor(model::Dims dims, std::vector<uint8_t> bins, double scale,
                        int64_t zero_point);

}  // namespace qparity::run
