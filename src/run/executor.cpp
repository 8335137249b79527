#include "qparity/run/executor.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "qparity/numerics/fake_quant.h"
#include "qparity/numerics/span_kernels.h"
#include "qparity/ops/batch_norm.h"
#include "qparity/ops/conv2d.h"
#include "qparity/ops/elementwise.h"
#include "qparity/ops/linear.h"
#include "qparity/ops/pool2d.h"
#include "qparity/ops/quantized_add.h"

namespace qparity::run {

Tensor float_tensor(model::Dims dims, std::vector<float> values) {
  Tensor t;
  t.dims = std::move(dims);
  t.values = std::move(values);
  return t;
}

Tensor quantized_tensor(model::Dims dims, std::vector<uint8_t> bins, double scale,
                        int64_t zero_point) {
  Tensor t;
  t.dims = std::move(dims);
  t.type = model::ValueType::kQUInt8;
  t.bins = std::move(bins);
  t.scale = scale;
  t.zero_point = zero_point;
  return t;
}

namespace {

using model::Node;
using model::OpKind;

Shape4 shape4(const model::Dims& d) {
  if (d.size() != 4) throw std::runtime_error("expected a 4-d NCHW tensor, got " + model::to_string(d));
  return {d[0], d[1], d[2], d[3]};
}

model::Dims dims_of(const Shape4& s) { return {s.n, s.c, s.h, s.w}; }

// ATen's vectorized quint8 loops work in blocks of two vectors; qparity models AVX2 and
// AVX-512 builds of ATen alike (eq. 6.7d).
constexpr int64_t kAtenQuint8Block = 64;

class Executor {
 public:
  Executor(const model::Graph& graph, const RunOptions& options)
      : graph_(graph), options_(options), result_() {
    if (options_.profile == nullptr) throw std::invalid_argument("run_graph: a profile is required");
    result_.values.resize(graph.values.size());
    result_.final_points = graph.fake_quants;
    for (size_t v = 0; v < graph.values.size(); ++v) {
      if (graph.values[v].constant) {
        constants_.push_back(float_tensor(graph.values[v].constant->dims, graph.values[v].constant->data));
      }
    }
    size_t next = 0;
    constant_of_.assign(graph.values.size(), -1);
    for (size_t v = 0; v < graph.values.size(); ++v) {
      if (graph.values[v].constant) constant_of_[v] = static_cast<int64_t>(next++);
    }
  }

  RunResult run(const Tensor& input) {
    result_.values[static_cast<size_t>(graph_.input)] = input;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      const Node& node = graph_.nodes[i];
      try {
        run_node(i, node);
      } catch (const std::invalid_argument& e) {
        throw std::runtime_error("layer '" + node.layer + "' (" + node.source_op + "): " + e.what());
      }
    }
    return std::move(result_);
  }

 private:
  const Tensor& in(const Node& node, size_t k) const {
    const auto id = static_cast<size_t>(node.inputs.at(k));
    if (constant_of_[id] >= 0) return constants_[static_cast<size_t>(constant_of_[id])];
    return result_.values[id];
  }
  Tensor& out(const Node& node) { return result_.values[static_cast<size_t>(node.output)]; }

  void run_node(size_t index, const Node& node) {
    switch (node.op) {
      case OpKind::kAdd: case OpKind::kSub: case OpKind::kMul: case OpKind::kDiv:
        return binary(node);
      case OpKind::kSqrt: {
        Tensor r = float_tensor(in(node, 0).dims, std::vector<float>(in(node, 0).values.size()));
        sqrt_span(in(node, 0).values, r.values);
        out(node) = std::move(r);
        return;
      }
      case OpKind::kZerosLike:
        out(node) = float_tensor(in(node, 0).dims, std::vector<float>(in(node, 0).values.size(), 0.0f));
        return;
      case OpKind::kConv2d: return conv2d(node);
      case OpKind::kLinear: return linear(node);
      case OpKind::kBatchNorm: return batch_norm(node);
      case OpKind::kFakeQuant: return fake_quant(index, node);
      case OpKind::kRelu: return relu(node);
      case OpKind::kHardtanh: return hardtanh(node);
      case OpKind::kMaxPool2d: return max_pool(node);
      case OpKind::kAvgPool2d: case OpKind::kAdaptiveAvgPool2d: return avg_pool(node);
      case OpKind::kReshape: case OpKind::kIdentity: {
        Tensor r = in(node, 0);
        if (node.op == OpKind::kReshape) r.dims = std::get<model::ReshapeParams>(node.params).dims;
        if (r.numel() != in(node, 0).numel()) throw std::invalid_argument("reshape changes the element count");
        out(node) = std::move(r);
        return;
      }
      case OpKind::kCat: return cat(node);
      case OpKind::kQuantize: return quantize(node);
      case OpKind::kDequantize: {
        const Tensor& x = in(node, 0);
        Tensor r = float_tensor(x.dims, std::vector<float>(x.bins.size()));
        dequantize_span(x.bins, static_cast<float>(x.scale), x.zero_point, r.values);
        out(node) = std::move(r);
        return;
      }
      case OpKind::kQConv2d: case OpKind::kQLinear: return quantized_conv(node);
      case OpKind::kQAdd: return quantized_add(node);
    }
    throw std::invalid_argument("op not supported by the executor");
  }

  bool by_kernels(const Node& node, Tensor& r) {
    if (options_.float_kernels == nullptr) return false;
    std::vector<const Tensor*> inputs;
    for (size_t k = 0; k < node.inputs.size(); ++k) inputs.push_back(&in(node, k));
    return options_.float_kernels->run(node, inputs, r);
  }

  void binary(const Node& node) {
    const auto& p = std::get<model::BinaryParams>(node.params);
    static constexpr BinaryOp kOps[] = {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv};
    const Tensor& a = in(node, 0);
    BroadcastBinaryArgs args{.op = kOps[static_cast<int>(node.op) - static_cast<int>(OpKind::kAdd)],
                             .a = a.values, .a_dims = a.dims,
                             .alpha = static_cast<float>(p.alpha)};
    model::Dims dims = a.dims;
    if (p.scalar) {
      args.scalar = static_cast<float>(*p.scalar);
    } else {
      const Tensor& b = in(node, 1);
      args.b = b.values;
      args.b_dims = b.dims;
      dims = broadcast_dims(a.dims, b.dims);
    }
    Tensor r;
    r.dims = dims;
    broadcast_binary(args, r.values);
    out(node) = std::move(r);
  }

  void conv2d(const Node& node) {
    const Tensor& x = in(node, 0);
    const Tensor& w = in(node, 1);
    const auto& p = std::get<model::ConvParams>(node.params);
    Tensor r;
    r.dims = dims_of(conv2d_output_shape(shape4(x.dims), shape4(w.dims), p.geometry));
    r.values.resize(static_cast<size_t>(r.numel()));
    if (by_kernels(node, r)) return void(out(node) = std::move(r));
    const std::span<const float> bias = node.inputs.size() > 2 ? std::span<const float>(in(node, 2).values)
                                                              : std::span<const float>();
    conv2d_float({.input = x.values, .input_shape = shape4(x.dims), .weight = w.values,
                  .weight_shape = shape4(w.dims), .bias = bias, .geometry = p.geometry},
                 r.values);
    out(node) = std::move(r);
  }

  void linear(const Node& node) {
    const Tensor& x = in(node, 0);
    const Tensor& w = in(node, 1);
    if (w.dims.size() != 2 || x.dims.empty() || x.dims.back() != w.dims[1]) {
      throw std::invalid_argument("linear: input " + model::to_string(x.dims) + " does not fit weight " +
                                  model::to_string(w.dims));
    }
    Tensor r;
    r.dims = x.dims;
    r.dims.back() = w.dims[0];
    r.values.resize(static_cast<size_t>(r.numel()));
    if (by_kernels(node, r)) return void(out(node) = std::move(r));
    linear_float({.input = x.values, .rows = x.numel() / w.dims[1], .in_features = w.dims[1],
                  .weight = w.values, .out_features = w.dims[0],
                  .bias = node.inputs.size() > 2 ? std::span<const float>(in(node, 2).values)
                                                 : std::span<const float>()},
                 r.values);
    out(node) = std::move(r);
  }

  void batch_norm(const Node& node) {
    const Tensor& x = in(node, 0);
    const auto& p = std::get<model::BatchNormParams>(node.params);
    if (p.training) throw std::invalid_argument("batch_norm in training mode (trace the QAT model after eval())");
    Tensor r;
    r.dims = x.dims;
    r.values.resize(x.values.size());
    if (by_kernels(node, r)) return void(out(node) = std::move(r));
    const int64_t c = x.dims.at(1);
    batch_norm_inference_float({.input = x.values, .n = x.dims[0], .c = c, .inner = x.numel() / (x.dims[0] * c),
                                .weight = in(node, 1).values, .bias = in(node, 2).values,
                                .running_mean = in(node, 3).values, .running_var = in(node, 4).values,
                                .eps = p.eps},
                               r.values);
    out(node) = std::move(r);
  }

  void fake_quant(size_t index, const Node& node) {
    const auto point = std::get<model::FakeQuantParams>(node.params).point;
    model::FakeQuantPoint& s = result_.final_points.at(static_cast<size_t>(point));
    const Tensor& x = in(node, 0);
    const int64_t channels = s.per_channel ? x.dims.at(static_cast<size_t>(s.axis)) : 1;
    if (static_cast<int64_t>(s.min_val.size()) != channels) {
      throw std::invalid_argument("fake-quant '" + s.module + "' has " + std::to_string(s.min_val.size()) +
                                  " channels of state for " + std::to_string(channels) + " channels");
    }
    int64_t inner = 1;
    if (s.per_channel) {
      for (size_t d = static_cast<size_t>(s.axis) + 1; d < x.dims.size(); ++d) inner *= x.dims[d];
    } else {
      inner = x.numel();
    }
    auto channel_of = [&](int64_t i) { return s.per_channel ? (i / inner) % channels : 0; };
    FakeQuantUse use{.node = index, .point = point, .fake_quant_enabled = s.fake_quant_enabled};
    if (s.observer_enabled) observe(s, x, channels, channel_of, use);
    Tensor r = float_tensor(x.dims, x.values);
    const QRange range{s.spec.quant_min, s.spec.quant_max};
    if (s.fake_quant_enabled) {
      // eq. 3.2: the fused op recomputes scale / zero point from the running range every forward.
      for (int64_t c = 0; c < channels; ++c) {
        const auto cc = static_cast<size_t>(c);
        QParamDerivation d = derive_qparams(options_.profile->fused_fake_quant_rule, s.min_val[cc],
                                            s.max_val[cc], s.spec);
        s.scale[cc] = d.scale;
        s.zero_point[cc] = d.zero_point;
        use.grids.push_back({d.scale, d.zero_point, range});
        use.derivations.push_back(std::move(d));
      }
      for (int64_t i = 0; i < x.numel(); ++i) {
        const auto at = static_cast<size_t>(i);
        r.values[at] = fake_quantize_value(x.values[at], use.grids[static_cast<size_t>(channel_of(i))]);
      }
      use.provenance = "recomputed this forward by " +
                       std::string(to_string(options_.profile->fused_fake_quant_rule)) +
                       " from the observer's running min/max";
    } else {
      for (int64_t c = 0; c < channels; ++c) {
        use.grids.push_back({s.scale[static_cast<size_t>(c)], s.zero_point[static_cast<size_t>(c)], range});
      }
      use.provenance = "fake quantization disabled: the values pass unchanged";
    }
    if (use.observer_moved) use.provenance += "; the observer moved min/max during this forward";
    result_.fake_quant_uses.push_back(std::move(use));
    out(node) = std::move(r);
  }

  template <typename ChannelOf>
  static void observe(model::FakeQuantPoint& s, const Tensor& x, int64_t channels, ChannelOf channel_of,
                      FakeQuantUse& use) {
    std::vector<float> lo(static_cast<size_t>(channels), INFINITY);
    std::vector<float> hi(static_cast<size_t>(channels), -INFINITY);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const auto c = static_cast<size_t>(channel_of(i));
      lo[c] = std::min(lo[c], x.values[static_cast<size_t>(i)]);
      hi[c] = std::max(hi[c], x.values[static_cast<size_t>(i)]);
    }
    for (size_t c = 0; c < lo.size(); ++c) {
      // eq. 1.3, the fused op's moving average.
      const float new_min = moving_average_update(s.min_val[c], lo[c], s.averaging_constant);
      const float new_max = moving_average_update(s.max_val[c], hi[c], s.averaging_constant);
      use.observer_moved = use.observer_moved || new_min != s.min_val[c] || new_max != s.max_val[c];
      s.min_val[c] = new_min;
      s.max_val[c] = new_max;
    }
  }

  void relu(const Node& node) {
    const Tensor& x = in(node, 0);
    Tensor r = x;
    if (x.quantized()) {
      relu_bins(x.bins, x.zero_point, r.bins);
    } else {
      relu_span(x.values, r.values);
    }
    out(node) = std::move(r);
  }

  void hardtanh(const Node& node) {
    const Tensor& x = in(node, 0);
    if (x.quantized()) throw std::invalid_argument("hardtanh on quantized tensors is not supported yet");
    const auto& p = std::get<model::ClampParams>(node.params);
    Tensor r = x;
    hardtanh_span(x.values, static_cast<float>(p.min), static_cast<float>(p.max), r.values);
    out(node) = std::move(r);
  }

  static Pool2dWindow window_of(const model::Pool2dParams& p) {
    return {p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h, p.dilation_w,
            p.ceil_mode};
  }

  void max_pool(const Node& node) {
    const Tensor& x = in(node, 0);
    const Pool2dWindow w = window_of(std::get<model::Pool2dParams>(node.params));
    const Shape4 o = pool2d_output_shape(shape4(x.dims), w);
    Tensor r = x;
    r.dims = dims_of(o);
    if (x.quantized()) {
      r.bins.resize(static_cast<size_t>(o.numel()));
      max_pool2d_bins(x.bins, shape4(x.dims), w, r.bins);
    } else {
      r.values.resize(static_cast<size_t>(o.numel()));
      max_pool2d_float(x.values, shape4(x.dims), w, r.values);
    }
    out(node) = std::move(r);
  }

  void avg_pool(const Node& node) {
    const Tensor& x = in(node, 0);
    const Shape4 s = shape4(x.dims);
    if (x.quantized()) return quantized_avg_pool(node, x, s);
    Tensor r;
    if (node.op == OpKind::kAdaptiveAvgPool2d) {
      const auto& p = std::get<model::AdaptivePoolParams>(node.params);
      r.dims = {s.n, s.c, p.out_h, p.out_w};
      r.values.resize(static_cast<size_t>(r.numel()));
      if (!by_kernels(node, r)) adaptive_avg_pool2d_float(x.values, s, p.out_h, p.out_w, r.values);
    } else {
      const auto& p = std::get<model::Pool2dParams>(node.params);
      r.dims = dims_of(pool2d_output_shape(s, window_of(p)));
      r.values.resize(static_cast<size_t>(r.numel()));
      if (!by_kernels(node, r)) {
        avg_pool2d_float(x.values, s, window_of(p), p.count_include_pad, p.divisor_override.value_or(0), r.values);
      }
    }
    out(node) = std::move(r);
  }

  void quantized_avg_pool(const Node& node, const Tensor& x, const Shape4& s) {
    if (node.op != OpKind::kAdaptiveAvgPool2d) {
      throw std::invalid_argument("avg_pool2d of quantized tensors is not supported yet");
    }
    const auto& p = std::get<model::AdaptivePoolParams>(node.params);
    const auto kernel = quantized_adaptive_pool_kernel(options_.profile->qnnpack_average_pooling, s, p.out_h,
                                                       p.out_w, p.channels_last_input);
    Tensor r = quantized_tensor({s.n, s.c, p.out_h, p.out_w}, {}, x.scale, x.zero_point);
    r.bins.resize(static_cast<size_t>(r.numel()));
    quantized_adaptive_avg_pool2d({.input = x.bins, .input_shape = s, .scale = static_cast<float>(x.scale),
                                   .zero_point = x.zero_point, .out_h = p.out_h, .out_w = p.out_w},
                                  kernel, r.bins);
    out(node) = std::move(r);
  }

  void cat(const Node& node) {
    const auto dim = static_cast<size_t>(std::get<model::CatParams>(node.params).dim);
    const Tensor& first = in(node, 0);
    Tensor r = first;
    int64_t outer = 1;
    for (size_t d = 0; d < dim; ++d) outer *= first.dims.at(d);
    r.dims.at(dim) = 0;
    for (size_t k = 0; k < node.inputs.size(); ++k) r.dims[dim] += in(node, k).dims.at(dim);
    if (first.quantized()) throw std::invalid_argument("cat of quantized tensors is not supported yet");
    r.values.clear();
    for (int64_t o = 0; o < outer; ++o) {
      for (size_t k = 0; k < node.inputs.size(); ++k) {
        const Tensor& t = in(node, k);
        const int64_t chunk = t.numel() / outer;
        r.values.insert(r.values.end(), t.values.begin() + o * chunk, t.values.begin() + (o + 1) * chunk);
      }
    }
    out(node) = std::move(r);
  }

  void quantize(const Node& node) {
    const Tensor& x = in(node, 0);
    const auto& g = std::get<model::QuantizeParams>(node.params).output;
    Tensor r = quantized_tensor(x.dims, std::vector<uint8_t>(x.values.size()), g.scale, g.zero_point);
    quantize_span(x.values, {static_cast<float>(g.scale), g.zero_point, {0, 255}}, r.bins);
    out(node) = std::move(r);
  }

  void quantized_conv(const Node& node) {
    const Tensor& x = in(node, 0);
    if (!x.quantized()) throw std::invalid_argument("quantized conv/linear on a float tensor");
    const auto& p = std::get<model::QConvParams>(node.params);
    const bool linear = node.op == OpKind::kQLinear;
    const model::Dims& wd = p.weight.dims;
    Shape4 in_shape;
    Shape4 w_shape;
    if (linear) {
      // A linear layer is a 1x1 conv over rows: [rows, K] as [rows, K, 1, 1].
      in_shape = {x.numel() / x.dims.back(), x.dims.back(), 1, 1};
      w_shape = {wd.at(0), wd.at(1), 1, 1};
    } else {
      in_shape = shape4(x.dims);
      w_shape = shape4(wd);
    }
    QuantizedConv2dArgs args{.input = x.bins, .input_shape = in_shape, .input_scale = static_cast<float>(x.scale),
                             .input_zero_point = x.zero_point, .weight = p.weight.data, .weight_shape = w_shape,
                             .weight_per_channel = p.weight.per_channel, .bias = p.weight.bias,
                             .output_scale = static_cast<float>(p.output.scale),
                             .output_zero_point = p.output.zero_point, .relu = p.relu,
                             .geometry = linear ? Conv2dGeometry{} : p.geometry};
    for (const double s : p.weight.scales) args.weight_scales.push_back(static_cast<float>(s));
    args.weight_zero_points = p.weight.zero_points;
    std::vector<uint8_t> bins;
    std::vector<int32_t> acc;
    conv2d_quantized(*options_.profile, args, bins, acc);
    model::Dims dims = x.dims;
    if (linear) {
      dims.back() = wd[0];
    } else {
      dims = dims_of(conv2d_output_shape(in_shape, w_shape, p.geometry));
    }
    out(node) = quantized_tensor(std::move(dims), std::move(bins), p.output.scale, p.output.zero_point);
  }

  void quantized_add(const Node& node) {
    const Tensor& a = in(node, 0);
    const Tensor& b = in(node, 1);
    if (a.dims != b.dims) throw std::invalid_argument("quantized add of different shapes is not supported yet");
    const auto& p = std::get<model::QAddParams>(node.params);
    QuantizedAddArgs args{.a = a.bins, .a_scale = static_cast<float>(a.scale), .a_zero_point = a.zero_point,
                          .b = b.bins, .b_scale = static_cast<float>(b.scale), .b_zero_point = b.zero_point,
                          .output_scale = static_cast<float>(p.output.scale),
                          .output_zero_point = p.output.zero_point, .relu = p.relu};
    Tensor r = quantized_tensor(a.dims, std::vector<uint8_t>(a.bins.size()), p.output.scale, p.output.zero_point);
    if (options_.profile->add == AddScheme::kQnnpackFixedPoint) {
      quantized_add_qnnpack(args, r.bins);
    } else {
      quantized_add_generic(args, kAtenQuint8Block, r.bins);
    }
    out(node) = std::move(r);
  }

  const model::Graph& graph_;
  RunOptions options_;
  RunResult result_;
  std::vector<Tensor> constants_;
  std::vector<int64_t> constant_of_;
};

}  // namespace

RunResult run_graph(const model::Graph& graph, const Tensor& input, const RunOptions& options) {
  if (graph.input == model::kNoValue || graph.output == model::kNoValue) {
    throw std::invalid_argument("run_graph: the graph has no input or output");
  }
  if (input.dims != graph.values[static_cast<size_t>(graph.input)].dims) {
    throw std::invalid_argument("the input has shape " + model::to_string(input.dims) + ", the model expects " +
                                model::to_string(graph.values[static_cast<size_t>(graph.input)].dims));
  }
  return Executor(graph, options).run(input);
}

}  // namespace qparity::run
