#include "qparity/run/executor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "qparity/numerics/fake_quant.h"
#include "qparity/numerics/span_kernels.h"
#include "qparity/ops/activation.h"
#include "qparity/ops/batch_norm.h"
#include "qparity/ops/conv2d.h"
#include "qparity/ops/elementwise.h"
#include "qparity/ops/linear.h"
#include "qparity/ops/pool2d.h"
#include "qparity/ops/quantized_add.h"
#include "qparity/ops/quantized_cat.h"
#include "qparity/ops/quantized_mul.h"
#include "qparity/run/qconv_args.h"

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

// Calls visit(nchw_index, nhwc_index) for every element of a 4-d tensor, in NHWC order.
template <typename Visit>
void for_each_nhwc(const Shape4& s, Visit visit) {
  size_t i = 0;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t h = 0; h < s.h; ++h)
      for (int64_t w = 0; w < s.w; ++w)
        for (int64_t c = 0; c < s.c; ++c) visit(static_cast<size_t>(((n * s.c + c) * s.h + h) * s.w + w), i++);
}

// Logical NCHW order <-> NHWC memory order of a 4-d tensor's elements.
template <typename T>
std::vector<T> nchw_to_nhwc(const std::vector<T>& x, const Shape4& s) {
  std::vector<T> r(x.size());
  for_each_nhwc(s, [&](size_t nchw, size_t nhwc) { r[nhwc] = x[nchw]; });
  return r;
}

template <typename T>
std::vector<T> nhwc_to_nchw(const std::vector<T>& x, const Shape4& s) {
  std::vector<T> r(x.size());
  for_each_nhwc(s, [&](size_t nchw, size_t nhwc) { r[nchw] = x[nhwc]; });
  return r;
}

// A tensor of x's shape, type and grid, its elements allocated but not copied.
Tensor like(const Tensor& x) {
  Tensor r;
  r.dims = x.dims;
  r.type = x.type;
  r.scale = x.scale;
  r.zero_point = x.zero_point;
  (x.quantized() ? r.bins.resize(x.bins.size()) : r.values.resize(x.values.size()));
  return r;
}

class Executor {
 public:
  Executor(const model::Graph& graph, const RunOptions& options)
      : graph_(graph), options_(options), result_() {
    if (options_.profile == nullptr) throw std::invalid_argument("run_graph: a profile is required");
    result_.values.resize(graph.values.size());
    result_.final_points = graph.fake_quants;
    constants_.resize(graph.values.size());
  }

  // Computes into the tensors a previous run left in `workspace` (recycled(), below).
  Executor(const model::Graph& graph, const RunOptions& options, RunWorkspace& workspace)
      : Executor(graph, options) {
    result_.values = std::move(workspace.result.values);
    result_.values.resize(graph.values.size());
    // Only the slots this graph's nodes write keep their storage; the others (constants, values
    // no node computes) must read as a fresh run leaves them: empty.
    std::vector<bool> computed(graph.values.size(), false);
    for (const Node& node : graph.nodes) computed[static_cast<size_t>(node.output)] = true;
    for (size_t i = 0; i < computed.size(); ++i) {
      if (!computed[i]) result_.values[i] = Tensor{};
    }
    accumulators_ = &workspace.accumulators;
  }

  RunResult run(Tensor input) {
    result_.values[static_cast<size_t>(graph_.input)] = std::move(input);
    for (size_t i = 0; i < graph_.nodes.size(); ++i) run_checked(i);
    return std::move(result_);
  }

  // Runs only `nodes`, reading every value they do not compute from `base`.
  RunResult run_on(const RunResult& base, const std::vector<size_t>& nodes) {
    base_ = &base;
    local_.assign(graph_.values.size(), false);
    for (const size_t i : nodes) {
      run_checked(i);
      local_[static_cast<size_t>(graph_.nodes[i].output)] = true;
    }
    return std::move(result_);
  }

 private:
  void run_checked(size_t i) {
    const Node& node = graph_.nodes[i];
    try {
      run_node(i, node);
    } catch (const std::invalid_argument& e) {
      throw OpRefused(node, e.what());
    }
  }

  const Tensor& in(const Node& node, size_t k) const {
    const auto id = static_cast<size_t>(node.inputs.at(k));
    if (graph_.values[id].constant) return constant(id);
    if (base_ != nullptr && !local_[id]) return base_->values.at(id);
    return result_.values[id];
  }
  Tensor& out(const Node& node) { return result_.values[static_cast<size_t>(node.output)]; }

  // like(x) built in the storage of node's output slot: the previous run's tensor there when the
  // executor runs in a workspace (same size: no allocation, no zero fill), else nothing. Only
  // for ops that write every element; the vector x does not use is emptied, so that no stale
  // bins or values survive.
  Tensor recycled_like(const Tensor& x, const Node& node) {
    Tensor r = std::move(out(node));
    r.dims = x.dims;
    r.type = x.type;
    r.scale = x.scale;
    r.zero_point = x.zero_point;
    if (x.quantized()) {
      r.bins.resize(x.bins.size());
      r.values.clear();
    } else {
      r.values.resize(x.values.size());
      r.bins.clear();
    }
    return r;
  }

  // A constant as a tensor, made on first use: a local re-run touches only its layer's.
  const Tensor& constant(size_t id) const {
    if (!constants_[id]) {
      const model::ConstantTensor& c = *graph_.values[id].constant;
      constants_[id] = std::make_unique<Tensor>(float_tensor(c.dims, c.data));
    }
    return *constants_[id];
  }

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
      case OpKind::kHardswish: return float_unary(node);
      case OpKind::kHardsigmoid: case OpKind::kSigmoid: case OpKind::kQHardswish: return quantized_unary(node);
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
      case OpKind::kPermute: return permute(node);
      case OpKind::kSlice: return slice(node);
      case OpKind::kMean: return mean(node);
      case OpKind::kQuantize: return quantize(node);
      case OpKind::kDequantize: {
        const Tensor& x = in(node, 0);
        Tensor r = std::move(out(node));  // recycled storage (see recycled_like); every value is written
        r.values.resize(x.bins.size());
        r = float_tensor(x.dims, std::move(r.values));
        dequantize_span(x.bins, static_cast<float>(x.scale), x.zero_point, r.values);
        out(node) = std::move(r);
        return;
      }
      case OpKind::kQConv2d: case OpKind::kQLinear: return quantized_conv(node);
      case OpKind::kQAdd: return quantized_add(node);
      case OpKind::kQMul: return quantized_mul(node);
      case OpKind::kQAddScalar: case OpKind::kQMulScalar: return quantized_scalar(node);
      case OpKind::kQCat: return quantized_cat(node, std::get<model::QCatParams>(node.params));
    }
    throw std::invalid_argument("op not supported by the executor");
  }

  bool by_kernels(const Node& node, Tensor& r) {
    if (options_.float_kernels == nullptr) return false;
    std::vector<const Tensor*> inputs;
    for (size_t k = 0; k < node.inputs.size(); ++k) inputs.push_back(&in(node, k));
    return options_.float_kernels->run(node, inputs, !node.inputs.empty() && stored_nhwc(node.inputs[0]), r);
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
    Tensor r = std::move(out(node));  // recycled storage (see recycled_like)
    r = float_tensor(dims_of(conv2d_output_shape(shape4(x.dims), shape4(w.dims), p.geometry)),
                     std::move(r.values));
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
    const bool observes = s.observer_enabled && s.kind != FakeQuantModuleKind::kFixedQParamsFakeQuantize;
    if (observes) observe(s, x, channels, channel_of, use);
    if (s.fake_quant_enabled) {
      use.channels = fake_quant_qparams(s, options_.profile->fused_fake_quant_rule);
      use.provenance = use.channels.front().provenance;
    } else {
      // Disabled, even the fused op leaves its buffers alone and passes the values through.
      for (size_t c = 0; c < s.scale.size(); ++c) {
        use.channels.push_back({.grid = {s.scale[c], s.zero_point[c], {s.spec.quant_min, s.spec.quant_max}}});
      }
      use.provenance = "fake quantization disabled: the values pass unchanged";
    }
    if (use.observer_moved) use.provenance += "; the observer moved min/max during this forward";
    Tensor r = s.fake_quant_enabled ? recycled_like(x, node) : x;
    if (s.fake_quant_enabled) apply_fake_quant(x, use, channel_of, r);
    result_.fake_quant_uses.push_back(std::move(use));
    out(node) = std::move(r);
  }

  // eq. 4.1 on every element, on its channel's grid; the bins too where the caller asked for them.
  template <typename ChannelOf>
  void apply_fake_quant(const Tensor& x, const FakeQuantUse& use, ChannelOf channel_of, Tensor& r) const {
    const QuantGrid& grid = use.channels.front().grid;
    if (use.channels.size() == 1 && span_kernels_support(grid)) {
      const bool bins = options_.fake_quant_bins && grid.range.min >= 0 && grid.range.max <= 255;
      if (bins) r.bins.resize(x.values.size());
      fake_quantize_span(x.values, grid, r.values, r.bins);
      return;
    }
    for (int64_t i = 0; i < x.numel(); ++i) {
      const auto at = static_cast<size_t>(i);
      r.values[at] = fake_quantize_value(x.values[at], use.channels[static_cast<size_t>(channel_of(i))].grid);
    }
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
    Tensor r = recycled_like(x, node);
    if (x.quantized()) {
      relu_bins(x.bins, x.zero_point, r.bins);
    } else {
      relu_span(x.values, r.values);
    }
    out(node) = std::move(r);
  }

  void hardtanh(const Node& node) {
    const Tensor& x = in(node, 0);
    const auto& p = std::get<model::ClampParams>(node.params);
    Tensor r = like(x);
    if (!x.quantized()) {
      hardtanh_span(x.values, static_cast<float>(p.min), static_cast<float>(p.max), r.values);
      return void(out(node) = std::move(r));
    }
    const bool nhwc = stored_nhwc(node.inputs[0]);
    if (options_.profile->qnnpack_operators && nhwc) {
      // eq. 6.13b: QNNPACK clamps the input's memory (NHWC) into an NCHW-allocated output.
      const std::vector<uint8_t> memory = nchw_to_nhwc(x.bins, shape4(x.dims));
      quantized_clamp(memory, static_cast<float>(x.scale), x.zero_point, static_cast<float>(p.min),
                      static_cast<float>(p.max), r.bins);
      return void(out(node) = std::move(r));
    }
    quantized_clamp(x.bins, static_cast<float>(x.scale), x.zero_point, static_cast<float>(p.min),
                    static_cast<float>(p.max), r.bins);
    out(node) = std::move(r);
  }

  // The framework's loop split for elementwise ops.
  AtenLoop aten_loop(int64_t block) const { return {block, options_.framework_threads}; }

  bool stored_nhwc(model::ValueId id) const {
    const model::ValueInfo& v = graph_.values[static_cast<size_t>(id)];
    return v.channels_last && v.dims.size() == 4;
  }

  // Runs `kernel(memory_in, memory_out)` on x's bins in x's memory order; the result keeps x's layout.
  template <typename Kernel>
  std::vector<uint8_t> in_memory_order(model::ValueId id, const Tensor& x, Kernel kernel) const {
    std::vector<uint8_t> result(x.bins.size());
    if (!stored_nhwc(id)) {
      kernel(std::span<const uint8_t>(x.bins), std::span<uint8_t>(result));
      return result;
    }
    const Shape4 s = shape4(x.dims);
    const std::vector<uint8_t> memory = nchw_to_nhwc(x.bins, s);
    kernel(std::span<const uint8_t>(memory), std::span<uint8_t>(result));
    return nhwc_to_nchw(result, s);
  }

  ActivationKernel activation_kernel() const {
    return options_.profile->qnnpack_operators ? ActivationKernel::kQnnpack : ActivationKernel::kAtenGeneric;
  }

  void float_unary(const Node& node) {
    const Tensor& x = in(node, 0);
    Tensor r = float_tensor(x.dims, std::vector<float>(x.values.size()));
    if (node.op == OpKind::kHardswish) {
      hardswish_float(x.values, r.values);
    } else if (node.op == OpKind::kHardsigmoid) {
      hardsigmoid_float(x.values, r.values);
    } else {
      const bool nhwc = stored_nhwc(node.inputs[0]);
      const std::vector<float> memory = nhwc ? nchw_to_nhwc(x.values, shape4(x.dims)) : x.values;
      std::vector<float> y(memory.size());
      sigmoid_float(memory, aten_loop(kAtenFloatLoop.block), y);
      r.values = nhwc ? nhwc_to_nchw(y, shape4(x.dims)) : std::move(y);
    }
    out(node) = std::move(r);
  }

  // hardswish (its own output grid), hardsigmoid and sigmoid (the fixed grid 1/256, 0) on bins.
  void quantized_unary(const Node& node) {
    const Tensor& x = in(node, 0);
    if (!x.quantized()) return float_unary(node);
    constexpr double kFixedScale = 1.0 / 256.0;
    QuantizedActivationArgs args{.scale = static_cast<float>(x.scale), .zero_point = x.zero_point,
                                 .output_scale = kFixedScale, .output_zero_point = 0,
                                 .loop = aten_loop(kAtenQuint8Loop.block)};
    if (node.op == OpKind::kQHardswish) {
      const auto& g = std::get<model::QuantizeParams>(node.params).output;
      args.output_scale = g.scale;
      args.output_zero_point = g.zero_point;
    }
    const ActivationKernel kernel = activation_kernel();
    std::vector<uint8_t> bins = in_memory_order(node.inputs[0], x, [&](std::span<const uint8_t> q, std::span<uint8_t> y) {
      QuantizedActivationArgs a = args;
      a.input = q;
      if (node.op == OpKind::kQHardswish) return quantized_hardswish(a, kernel, y);
      if (node.op == OpKind::kHardsigmoid) return quantized_hardsigmoid(a, kernel, y);
      quantized_sigmoid(a, kernel, y);
    });
    out(node) = quantized_tensor(x.dims, std::move(bins), args.output_scale, args.output_zero_point);
  }

  void max_pool(const Node& node) {
    const Tensor& x = in(node, 0);
    const Pool2dWindow& w = std::get<model::Pool2dParams>(node.params).window;
    const Shape4 o = pool2d_output_shape(shape4(x.dims), w);
    Tensor r = like(x);
    r.dims = dims_of(o);
    if (x.quantized()) {
      r.bins.resize(static_cast<size_t>(o.numel()));
      if (options_.profile->qnnpack_operators && !w.ceil_mode) {
        max_pool2d_bins_qnnpack(x.bins, shape4(x.dims), w, r.bins);  // eq. 6.18b
      } else {
        max_pool2d_bins(x.bins, shape4(x.dims), w, r.bins);  // eq. 6.18a
        r.bins = nhwc_kernel_into_nchw(node, x, o, std::move(r.bins));
      }
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
      r.dims = dims_of(pool2d_output_shape(s, p.window));
      r.values.resize(static_cast<size_t>(r.numel()));
      if (!by_kernels(node, r)) {
        avg_pool2d_float(x.values, s, p.window, p.count_include_pad, p.divisor_override.value_or(0), r.values);
      }
    }
    out(node) = std::move(r);
  }

  // B3 of docs/numerics.md §6.8: an NCHW input with one channel or a 1x1 image counts as
  // channels-last, so ATen runs its NHWC kernel, but allocates the output NCHW: the NHWC-ordered
  // result is read as NCHW.
  std::vector<uint8_t> nhwc_kernel_into_nchw(const Node& node, const Tensor& x, const Shape4& o,
                                             std::vector<uint8_t> bins) const {
    const Shape4 s = shape4(x.dims);
    const bool nhwc_kernel = aten_channels_last(s, stored_nhwc(node.inputs[0]));
    if (!nhwc_kernel || stored_nhwc(node.output) || stored_nhwc(node.inputs[0])) return bins;
    return nchw_to_nhwc(bins, o);
  }

  void quantized_avg_pool(const Node& node, const Tensor& x, const Shape4& s) {
    if (node.op == OpKind::kAvgPool2d) {
      const auto& p = std::get<model::Pool2dParams>(node.params);
      const bool nhwc = aten_channels_last(s, stored_nhwc(node.inputs[0]));
      const auto kernel = quantized_avg_pool_kernel(options_.profile->qnnpack_operators, p.window, nhwc);
      const Shape4 o = pool2d_output_shape(s, p.window, kernel != QuantizedAvgPoolKernel::kQnnpack);
      Tensor r = quantized_tensor(dims_of(o), std::vector<uint8_t>(static_cast<size_t>(o.numel())), x.scale,
                                  x.zero_point);
      quantized_avg_pool2d({.input = x.bins, .input_shape = s, .scale = static_cast<float>(x.scale),
                            .zero_point = x.zero_point, .window = p.window, .count_include_pad = p.count_include_pad,
                            .divisor_override = p.divisor_override.value_or(0)},
                           kernel, r.bins);
      if (kernel == QuantizedAvgPoolKernel::kAtenChannelsLast) r.bins = nhwc_kernel_into_nchw(node, x, o, std::move(r.bins));
      return void(out(node) = std::move(r));
    }
    const auto& p = std::get<model::AdaptivePoolParams>(node.params);
    const auto kernel = quantized_adaptive_pool_kernel(options_.profile->qnnpack_operators, s, p.out_h, p.out_w,
                                                       stored_nhwc(node.inputs[0]));
    Tensor r = quantized_tensor({s.n, s.c, p.out_h, p.out_w}, {}, x.scale, x.zero_point);
    r.bins.resize(static_cast<size_t>(r.numel()));
    quantized_adaptive_avg_pool2d({.input = x.bins, .input_shape = s, .scale = static_cast<float>(x.scale),
                                   .zero_point = x.zero_point, .out_h = p.out_h, .out_w = p.out_w},
                                  kernel, r.bins);
    if (kernel == QuantizedAvgPoolKernel::kAtenChannelsLast) {
      r.bins = nhwc_kernel_into_nchw(node, x, {s.n, s.c, p.out_h, p.out_w}, std::move(r.bins));
    }
    out(node) = std::move(r);
  }

  void cat(const Node& node) {
    const auto dim = static_cast<size_t>(std::get<model::CatParams>(node.params).dim);
    if (in(node, 0).quantized()) {
      // eq. 6.17d: torch.cat of quantized tensors is quantized::cat onto the first input's grid.
      const Tensor& first = in(node, 0);
      return quantized_cat(node, model::QCatParams{static_cast<int64_t>(dim), {first.scale, first.zero_point}, false});
    }
    std::vector<Tensor> parts;
    for (size_t k = 0; k < node.inputs.size(); ++k) parts.push_back(in(node, k));
    out(node) = concatenate(parts, dim);
  }

  // Row-major strides of dims.
  static model::Dims strides_of(const model::Dims& dims) {
    model::Dims strides(dims.size(), 1);
    for (size_t d = dims.size(); d-- > 1;) strides[d - 1] = strides[d] * dims[d];
    return strides;
  }

  // Copies the elements of x (values or bins) at the flat indices index(i) into a new tensor.
  template <typename Index>
  static Tensor gather(const Tensor& x, model::Dims dims, Index index) {
    Tensor r = like(x);
    r.dims = std::move(dims);
    const auto n = static_cast<size_t>(model::numel(r.dims));
    if (x.quantized()) {
      r.bins.resize(n);
      for (size_t i = 0; i < n; ++i) r.bins[i] = x.bins[index(i)];
    } else {
      r.values.resize(n);
      for (size_t i = 0; i < n; ++i) r.values[i] = x.values[index(i)];
    }
    return r;
  }

  void permute(const Node& node) {
    const Tensor& x = in(node, 0);
    const auto& perm = std::get<model::PermuteParams>(node.params).perm;
    model::Dims dims(perm.size());
    for (size_t d = 0; d < perm.size(); ++d) dims[d] = x.dims.at(static_cast<size_t>(perm[d]));
    const model::Dims in_strides = strides_of(x.dims);
    const model::Dims out_strides = strides_of(dims);
    out(node) = gather(x, dims, [&](size_t i) {
      size_t src = 0;
      auto rest = static_cast<int64_t>(i);
      for (size_t d = 0; d < dims.size(); ++d) {
        const int64_t coord = rest / out_strides[d];
        rest %= out_strides[d];
        src += static_cast<size_t>(coord * in_strides[static_cast<size_t>(perm[d])]);
      }
      return src;
    });
  }

  void slice(const Node& node) {
    const Tensor& x = in(node, 0);
    const auto& p = std::get<model::SliceParams>(node.params);
    const auto dim = static_cast<size_t>(p.dim);
    model::Dims dims = x.dims;
    dims.at(dim) = p.end - p.start;
    int64_t inner = 1;
    for (size_t d = dim + 1; d < dims.size(); ++d) inner *= dims[d];
    out(node) = gather(x, dims, [&](size_t i) {
      const auto k = static_cast<int64_t>(i);
      const int64_t outer = k / (dims[dim] * inner);
      const int64_t at = (k / inner) % dims[dim];
      return static_cast<size_t>((outer * x.dims[dim] + p.start + at) * inner + k % inner);
    });
  }

  static model::Dims reduced_dims(const model::Dims& dims, const model::MeanParams& p) {
    model::Dims r;
    for (size_t d = 0; d < dims.size(); ++d) {
      const bool reduced = std::find(p.dims.begin(), p.dims.end(), static_cast<int64_t>(d)) != p.dims.end();
      if (!reduced) r.push_back(dims[d]);
      if (reduced && p.keepdim) r.push_back(1);
    }
    return r;
  }

  // Reference float mean: each group's sum in index order, divided by its size.
  static std::vector<float> mean_reference(const Tensor& x, const model::MeanParams& p) {
    const model::Dims out_dims = reduced_dims(x.dims, p);
    const model::Dims strides = strides_of(x.dims);
    std::vector<float> out(static_cast<size_t>(model::numel(out_dims)), 0.0f);
    int64_t count = 1;
    for (const int64_t d : p.dims) count *= x.dims[static_cast<size_t>(d)];
    for (size_t i = 0; i < x.values.size(); ++i) {
      size_t o = 0;
      auto rest = static_cast<int64_t>(i);
      for (size_t d = 0; d < x.dims.size(); ++d) {
        const int64_t coord = rest / strides[d];
        rest %= strides[d];
        const bool reduced = std::find(p.dims.begin(), p.dims.end(), static_cast<int64_t>(d)) != p.dims.end();
        if (!reduced) o = o * static_cast<size_t>(x.dims[d]) + static_cast<size_t>(coord);
      }
      out[o] += x.values[i];
    }
    for (float& v : out) v /= static_cast<float>(count);
    return out;
  }

  void mean(const Node& node) {
    const Tensor& x = in(node, 0);
    const auto& p = std::get<model::MeanParams>(node.params);
    if (x.quantized()) return quantized_mean(node, x, p);
    Tensor r = float_tensor(reduced_dims(x.dims, p), {});
    r.values.resize(static_cast<size_t>(r.numel()));
    if (!by_kernels(node, r)) r.values = mean_reference(x, p);
    out(node) = std::move(r);
  }

  // eq. 6.20: quantized mean, by the kernel ATen picks.
  void quantized_mean(const Node& node, const Tensor& x, const model::MeanParams& p) {
    const model::Dims dims = reduced_dims(x.dims, p);
    // ReduceOps.cpp tests the dims as written: [3, 2] or [-2, -1] take the generic path.
    const bool spatial = x.dims.size() == 4 && p.written == model::Dims{2, 3};
    if (options_.profile->qnnpack_operators && spatial) {
      // eq. 6.20a: QNNPACK's global average pool, the q8avgpool arithmetic over the whole image.
      const Shape4 s = shape4(x.dims);
      std::vector<uint8_t> bins(static_cast<size_t>(s.n * s.c));
      quantized_adaptive_avg_pool2d({.input = x.bins, .input_shape = s, .scale = static_cast<float>(x.scale),
                                     .zero_point = x.zero_point, .out_h = 1, .out_w = 1},
                                    QuantizedAvgPoolKernel::kQnnpack, bins);
      return void(out(node) = quantized_tensor(dims, std::move(bins), x.scale, x.zero_point));
    }
    bool innermost = !p.dims.empty();
    for (size_t k = 0; k < p.dims.size(); ++k) {
      innermost = innermost && p.dims[p.dims.size() - 1 - k] == static_cast<int64_t>(x.dims.size() - 1 - k);
    }
    if (innermost && !stored_nhwc(node.inputs[0])) {
      // eq. 6.20b: raw bins averaged, RNE(f(Σq / N)); no zero point term.
      int64_t count = 1;
      for (const int64_t d : p.dims) count *= x.dims[static_cast<size_t>(d)];
      std::vector<uint8_t> bins(static_cast<size_t>(model::numel(dims)));
      for (size_t g = 0; g < bins.size(); ++g) {
        int64_t sum = 0;
        for (int64_t k = 0; k < count; ++k) sum += x.bins[g * static_cast<size_t>(count) + static_cast<size_t>(k)];
        bins[g] = static_cast<uint8_t>(convert_to_int32_x86(static_cast<float>(sum) / static_cast<float>(count)));
      }
      return void(out(node) = quantized_tensor(dims, std::move(bins), x.scale, x.zero_point));
    }
    // eq. 6.20c: dequantize (eq. 5.2), float mean, quantize_per_tensor (eq. 5.1) on the input's grid.
    Tensor f = float_tensor(x.dims, std::vector<float>(x.bins.size()));
    dequantize_span(x.bins, static_cast<float>(x.scale), x.zero_point, f.values);
    Tensor m = float_tensor(dims, std::vector<float>(static_cast<size_t>(model::numel(dims))));
    std::vector<const Tensor*> inputs{&f};
    const bool done = options_.float_kernels != nullptr &&
                      options_.float_kernels->run(node, inputs, stored_nhwc(node.inputs[0]), m);
    if (!done) m.values = mean_reference(f, p);
    Tensor r = quantized_tensor(dims, std::vector<uint8_t>(m.values.size()), x.scale, x.zero_point);
    quantize_span(m.values, {static_cast<float>(x.scale), x.zero_point, {0, 255}}, r.bins);
    out(node) = std::move(r);
  }

  static Tensor concatenate(const std::vector<Tensor>& parts, size_t dim) {
    Tensor r = float_tensor(parts.at(0).dims, {});
    int64_t outer = 1;
    for (size_t d = 0; d < dim; ++d) outer *= r.dims.at(d);
    r.dims.at(dim) = 0;
    for (const Tensor& t : parts) r.dims[dim] += t.dims.at(dim);
    for (int64_t o = 0; o < outer; ++o) {
      for (const Tensor& t : parts) {
        const int64_t chunk = t.numel() / outer;
        r.values.insert(r.values.end(), t.values.begin() + o * chunk, t.values.begin() + (o + 1) * chunk);
      }
    }
    return r;
  }

  void quantize(const Node& node) {
    const Tensor& x = in(node, 0);
    const auto& g = std::get<model::QuantizeParams>(node.params).output;
    Tensor r = std::move(out(node));  // recycled storage (see recycled_like); every bin is written
    r.bins.resize(x.values.size());
    r.values.clear();
    r = quantized_tensor(x.dims, std::move(r.bins), g.scale, g.zero_point);
    quantize_span(x.values, {static_cast<float>(g.scale), g.zero_point, {0, 255}}, r.bins);
    out(node) = std::move(r);
  }

  void quantized_conv(const Node& node) {
    const Tensor& x = in(node, 0);
    if (!x.quantized()) throw std::invalid_argument("quantized conv/linear on a float tensor");
    const auto& p = std::get<model::QConvParams>(node.params);
    // A what-if accumulation has no real kernel: it always runs on qparity's.
    if (std::string why; options_.quantized_kernels != nullptr && !options_.profile->accumulation_override &&
                         options_.quantized_kernels->run(node, x, out(node), why)) {
      return;
    }
    const bool linear = node.op == OpKind::kQLinear;
    const QuantizedConv2dArgs args = quantized_conv_args(p, linear, x);
    // Recycled storage (see recycled_like): conv2d_quantized resizes and writes every element.
    std::vector<uint8_t> bins = std::move(out(node).bins);
    std::vector<int32_t> own_acc;
    conv2d_quantized(*options_.profile, args, bins, accumulators_ != nullptr ? *accumulators_ : own_acc);
    model::Dims dims = x.dims;
    if (linear) {
      dims.back() = p.weight.dims.at(0);
    } else {
      dims = dims_of(conv2d_output_shape(args.input_shape, args.weight_shape, p.geometry));
    }
    out(node) = quantized_tensor(std::move(dims), std::move(bins), p.output.scale, p.output.zero_point);
  }

  void quantized_add(const Node& node) {
    const Tensor& a = in(node, 0);
    const Tensor& b = in(node, 1);
    if (a.dims != b.dims) throw std::invalid_argument("quantized add of different shapes is not supported yet");
    const auto& p = std::get<model::QBinaryParams>(node.params);
    QuantizedBinaryArgs args{.a = a.bins, .a_scale = static_cast<float>(a.scale), .a_zero_point = a.zero_point,
                          .b = b.bins, .b_scale = static_cast<float>(b.scale), .b_zero_point = b.zero_point,
                          .output_scale = static_cast<float>(p.output.scale),
                          .output_zero_point = p.output.zero_point, .relu = p.relu};
    Tensor r = quantized_tensor(a.dims, std::vector<uint8_t>(a.bins.size()), p.output.scale, p.output.zero_point);
    if (options_.profile->add == AddScheme::kQnnpackFixedPoint) {
      quantized_add_qnnpack(args, r.bins);
      return void(out(node) = std::move(r));
    }
    // eq. 6.9: ATen splits in memory order; operands of different layouts run all-scalar.
    const bool nhwc = stored_nhwc(node.inputs[0]);
    const bool mixed = nhwc != stored_nhwc(node.inputs[1]);
    const AtenLoop loop = aten_loop(mixed ? std::numeric_limits<int64_t>::max() : kAtenQuint8Loop.block);
    if (!nhwc) {
      quantized_add_generic(args, loop, r.bins);
      return void(out(node) = std::move(r));
    }
    const Shape4 s = shape4(a.dims);
    const std::vector<uint8_t> am = nchw_to_nhwc(a.bins, s);
    const std::vector<uint8_t> bm = nchw_to_nhwc(b.bins, s);
    args.a = am;
    args.b = bm;
    quantized_add_generic(args, loop, r.bins);
    r.bins = nhwc_to_nchw(r.bins, s);
    out(node) = std::move(r);
  }

  // Expands a broadcast operand's bins to `dims` (numpy rules).
  static std::vector<uint8_t> broadcast_bins(const Tensor& t, const model::Dims& dims) {
    if (t.dims == dims) return t.bins;
    const size_t rank = dims.size();
    model::Dims td(rank, 1);
    std::copy(t.dims.begin(), t.dims.end(), td.begin() + static_cast<std::ptrdiff_t>(rank - t.dims.size()));
    std::vector<uint8_t> r(static_cast<size_t>(model::numel(dims)));
    for (size_t i = 0; i < r.size(); ++i) {
      int64_t rest = static_cast<int64_t>(i);
      int64_t src = 0;
      int64_t stride = 1;
      for (size_t d = rank; d-- > 0;) {
        const int64_t coord = rest % dims[d];
        rest /= dims[d];
        src += (td[d] == 1 ? 0 : coord) * stride;
        stride *= td[d];
      }
      r[i] = t.bins[static_cast<size_t>(src)];
    }
    return r;
  }

  void quantized_mul(const Node& node) {
    const Tensor& a = in(node, 0);
    const Tensor& b = in(node, 1);
    const auto& p = std::get<model::QBinaryParams>(node.params);
    const model::Dims dims = broadcast_dims(a.dims, b.dims);
    const std::vector<uint8_t> ab = broadcast_bins(a, dims);
    const std::vector<uint8_t> bb = broadcast_bins(b, dims);
    Tensor r = quantized_tensor(dims, std::vector<uint8_t>(ab.size()), p.output.scale, p.output.zero_point);
    qparity::quantized_mul({.a = ab, .a_scale = static_cast<float>(a.scale), .a_zero_point = a.zero_point,
                            .b = bb, .b_scale = static_cast<float>(b.scale), .b_zero_point = b.zero_point,
                            .output_scale = static_cast<float>(p.output.scale),
                            .output_zero_point = p.output.zero_point, .relu = p.relu},
                           r.bins);
    out(node) = std::move(r);
  }

  void quantized_scalar(const Node& node) {
    const Tensor& x = in(node, 0);
    const auto& p = std::get<model::QScalarParams>(node.params);
    std::vector<uint8_t> bins(x.bins.size());
    const ScalarOpGrid g = node.op == OpKind::kQAddScalar
                               ? quantized_add_scalar(x.bins, x.scale, x.zero_point, p.scalar, p.relu, bins)
                               : quantized_mul_scalar(x.bins, x.scale, x.zero_point, p.scalar, p.relu, bins);
    out(node) = quantized_tensor(x.dims, std::move(bins), g.scale, g.zero_point);
  }

  void quantized_cat(const Node& node, const model::QCatParams& p) {
    bool fast = p.dim == 1;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const Tensor& t = in(node, k);
      fast = fast && t.dims.size() == 4 && aten_channels_last(shape4(t.dims), stored_nhwc(node.inputs[k]));
    }
    if (fast) return quantized_cat_channels_last(node, p);
    // eq. 6.17c: dequantize every input (eq. 5.2), cat in float, quantize_per_tensor (eq. 5.1).
    std::vector<Tensor> floats;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const Tensor& t = in(node, k);
      Tensor f = float_tensor(t.dims, std::vector<float>(t.bins.size()));
      dequantize_span(t.bins, static_cast<float>(t.scale), t.zero_point, f.values);
      floats.push_back(std::move(f));
    }
    Tensor joined = concatenate(floats, static_cast<size_t>(p.dim));
    Tensor r = quantized_tensor(joined.dims, std::vector<uint8_t>(joined.values.size()), p.output.scale,
                                p.output.zero_point);
    quantize_span(joined.values, {static_cast<float>(p.output.scale), p.output.zero_point, {0, 255}}, r.bins);
    if (p.relu) relu_bins(r.bins, p.output.zero_point, r.bins);
    out(node) = std::move(r);
  }

  void quantized_cat_channels_last(const Node& node, const model::QCatParams& p) {
    std::vector<std::vector<uint8_t>> memory;
    QuantizedCatArgs args{.output_scale = p.output.scale, .output_zero_point = p.output.zero_point, .relu = p.relu};
    model::Dims dims = in(node, 0).dims;
    dims[1] = 0;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const Tensor& t = in(node, k);
      memory.push_back(nchw_to_nhwc(t.bins, shape4(t.dims)));
      dims[1] += t.dims[1];
    }
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const Tensor& t = in(node, k);
      args.inputs.push_back({memory[k], t.dims[1], t.scale, t.zero_point});
    }
    const Shape4 o = shape4(dims);
    args.pixels = o.n * o.h * o.w;
    std::vector<uint8_t> bins(static_cast<size_t>(o.numel()));
    qparity::quantized_cat_channels_last(args, bins);
    out(node) = quantized_tensor(dims, nhwc_to_nchw(bins, o), p.output.scale, p.output.zero_point);
  }

  const model::Graph& graph_;
  RunOptions options_;
  RunResult result_;
  std::vector<int32_t>* accumulators_ = nullptr;  // a workspace's int8 conv scratch, if any
  mutable std::vector<std::unique_ptr<Tensor>> constants_;  // by ValueId
  const RunResult* base_ = nullptr;  // a local re-run's source of the values it does not compute
  std::vector<bool> local_;          // values the local re-run computed
};

}  // namespace

OpRefused::OpRefused(const model::Node& node, const std::string& reason)
    : std::runtime_error("layer '" + node.layer + "' (" + node.source_op + "): " + reason), reason_(reason) {}

std::vector<UsedQParams> fake_quant_qparams(model::FakeQuantPoint& point, QParamRule fused_rule) {
  std::vector<UsedQParams> out;
  for (size_t c = 0; c < point.scale.size(); ++c) {
    FakeQuantModule m;
    m.kind = point.kind;
    m.spec = point.spec;
    m.min_val = c < point.min_val.size() ? point.min_val[c] : 0.0f;
    m.max_val = c < point.max_val.size() ? point.max_val[c] : 0.0f;
    m.scale_buffer = point.scale[c];
    m.zero_point_buffer = point.zero_point.at(c);
    m.observer_enabled = false;  // the observer step, when enabled, has already run
    m.hand_set_scale = point.hand_set_scale;
    out.push_back(fake_quant_forward(m, fused_rule));
    point.scale[c] = m.scale_buffer;
    point.zero_point[c] = m.zero_point_buffer;
  }
  return out;
}

Tensor rerun_nodes(const model::Graph& graph, const RunResult& base, const std::vector<size_t>& nodes,
                   const RunOptions& options) {
  if (nodes.empty()) throw std::invalid_argument("rerun_nodes: no nodes");
  RunResult r = Executor(graph, options).run_on(base, nodes);
  return std::move(r.values.at(static_cast<size_t>(graph.nodes.at(nodes.back()).output)));
}

namespace {

void check_input(const model::Graph& graph, const Tensor& input) {
  if (graph.input == model::kNoValue || graph.output == model::kNoValue) {
    throw std::invalid_argument("run_graph: the graph has no input or output");
  }
  if (input.dims != graph.values[static_cast<size_t>(graph.input)].dims) {
    throw std::invalid_argument("the input has shape " + model::to_string(input.dims) + ", the model expects " +
                                model::to_string(graph.values[static_cast<size_t>(graph.input)].dims));
  }
}

}  // namespace

RunResult run_graph(const model::Graph& graph, Tensor input, const RunOptions& options) {
  check_input(graph, input);
  return Executor(graph, options).run(std::move(input));
}

const RunResult& run_graph(const model::Graph& graph, Tensor input, const RunOptions& options,
                           RunWorkspace& workspace) {
  check_input(graph, input);
  workspace.result = Executor(graph, options, workspace).run(std::move(input));
  return workspace.result;
}

}  // namespace qparity::run
