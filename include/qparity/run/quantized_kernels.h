// An oracle for the int8 path's weighted ops: a frontend that has the framework loaded can run
// quantized conv / linear with the framework's own kernels, so that a re-run (the diagnosis's
// swaps) can be checked against the real thing. qparity's emulation never needs it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "qparity/model/graph.h"
#include "qparity/run/tensor.h"

namespace qparity::run {

class QuantizedKernels {
 public:
  virtual ~QuantizedKernels() = default;
  virtual std::string_view name() const = 0;
  // Computes kQConv2d / kQLinear `node` on quint8 `input` into `out` (dims, grid and bins);
  // returns false when it leaves the node to qparity (e.g. the engine's prepack refuses the
  // weight), with `why` saying so.
  virtual bool run(const model::Node& node, const Tensor& input, Tensor& out, std::string& why) = 0;

  // What it did so far: ops it ran, ops it declined, and the first reason it gave.
  struct Stats {
    int64_t ran = 0;
    int64_t declined = 0;
    std::string first_declined;
  };
  virtual Stats stats() const = 0;
};

}  // namespace qparity::run
