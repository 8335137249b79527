#include "qparity/run/qconv_args.h"

#include <stdexcept>

namespace qparity::run {

QuantizedConv2dArgs quantized_conv_args(const model::QConvParams& p, bool linear, const Tensor& x) {
  const model::Dims& wd = p.weight.dims;
  Shape4 in_shape;
  Shape4 w_shape;
  if (linear) {
    in_shape = {x.numel() / x.dims.back(), x.dims.back(), 1, 1};
    w_shape = {wd.at(0), wd.at(1), 1, 1};
  } else {
    if (x.dims.size() != 4 || wd.size() != 4)
      throw std::invalid_argument("quantized conv: expected 4-d input and weight");
    in_shape = {x.dims[0], x.dims[1], x.dims[2], x.dims[3]};
    w_shape = {wd[0], wd[1], wd[2], wd[3]};
  }
  QuantizedConv2dArgs args{.input = x.bins,
                           .input_shape = in_shape,
                           .input_scale = static_cast<float>(x.scale),
                           .input_zero_point = x.zero_point,
                           .weight = p.weight.data,
                           .weight_shape = w_shape,
                           .weight_per_channel = p.weight.per_channel,
                           .bias = p.weight.bias,
                           .output_scale = static_cast<float>(p.output.scale),
                           .output_zero_point = p.output.zero_point,
                           .relu = p.relu,
                           .geometry = linear ? Conv2dGeometry{} : p.geometry};
  for (const double s : p.weight.scales) args.weight_scales.push_back(static_cast<float>(s));
  args.weight_zero_points = p.weight.zero_points;
  return args;
}

}  // namespace qparity::run
