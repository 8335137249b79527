// The float ops of the QAT path whose result depends on the kernel's summation order (conv,
// linear, batch norm, average pooling). qparity's own versions sum in a fixed, documented
// order; a frontend that has the framework loaded supplies the framework's kernels instead, so
// the QAT path is bin-exact however the framework orders its sums (docs/model.md).
#pragma once

#include <span>
#include <string_view>

#include "qparity/model/graph.h"
#include "qparity/run/tensor.h"

namespace qparity::run {

class FloatKernels {
 public:
  virtual ~FloatKernels() = default;
  // Who computes: "qparity reference" or "libtorch 1.13.1 (...)".
  virtual std::string_view name() const = 0;
  // Computes `node` (kConv2d, kLinear, kBatchNorm, kAvgPool2d, kAdaptiveAvgPool2d, kMean) into
  // `out` (dims already set); returns false for ops it leaves to qparity's reference.
  // `channels_last` says whether the first input is stored NHWC in the framework's run, which
  // changes a reduction's order.
  virtual bool run(const model::Node& node, std::span<const Tensor* const> inputs, bool channels_last,
                   Tensor& out) = 0;
};

// qparity's reference kernels only (run() always returns false).
class ReferenceFloatKernels final : public FloatKernels {
 public:
  std::string_view name() const override { return "qparity reference"; }
  bool run(const model::Node&, std::span<const Tensor* const>, bool, Tensor&) override { return false; }
};

}  // namespace qparity::run
