// The arguments of quantized::conv2d / linear as the executor passes them to the kernels, from an
// int8 node's params and its quint8 input: one place, so that a re-run or an element trace calls
// the kernels exactly as the run did.
#pragma once

#include "qparity/model/graph.h"
#include "qparity/ops/conv2d.h"
#include "qparity/run/tensor.h"

namespace qparity::run {

// A linear layer is a 1x1 conv over rows: input [.., K] as [rows, K, 1, 1], weight [M, K] as
// [M, K, 1, 1]. The spans point into `p` and `x`, which must outlive the result.
QuantizedConv2dArgs quantized_conv_args(const model::QConvParams& p, bool linear, const Tensor& x);

}  // namespace qparity::run
