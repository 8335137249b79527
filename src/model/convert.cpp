#include "qparity/model/convert.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

#include "qparity/numerics/qparam_rules.h"
#include "qparity/numerics/quantize.h"

namespace qparity::model {
namespace {

[[noreturn]] void refuse(const std::string& layer, const std::string& why) {
  throw std::invalid_argument("cannot convert layer '" + layer + "': " + why);
}

const FakeQuantPoint* point_named(const Graph& g, const std::string& module) {
  for (const auto& p : g.fake_quants) {
    if (p.module == module) return &p;
  }
  return nullptr;
}

const ConvertSource* source_named(const Graph& g, const std::string& module) {
  for (const auto& s : g.convert_sources) {
    if (s.module == module) return &s;
  }
  return nullptr;
}

// calculate_qparams() of a fake-quant's observer: the Python rule on its running range (eq. 1.2),
// per channel where the observer is per channel. FixedQParams observers return their buffers.
std::vector<UsedQParams> observer_qparams(const FakeQuantPoint& p) {
  std::vector<UsedQParams> out;
  for (size_t c = 0; c < p.min_val.size(); ++c) {
    if (p.kind == FakeQuantModuleKind::kFixedQParamsFakeQuantize) {
      out.push_back({.grid = {p.scale.at(c), p.zero_point.at(c), {p.spec.quant_min, p.spec.quant_max}},
                     .provenance = "convert(): FixedQParamsObserver's fixed scale / zero point"});
      continue;
    }
    out.push_back(observer_calculate_qparams(p.min_val[c], p.max_val[c], p.spec));
  }
  return out;
}

QParamsOrigin origin_of(const std::vector<UsedQParams>& used) {
  QParamsOrigin o;
  for (const UsedQParams& u : used) {
    if (u.derivation) o.derivations.push_back(*u.derivation);
  }
  if (!used.empty()) o.provenance = used.front().provenance;
  return o;
}

OutputGrid grid_of(const FakeQuantPoint& p) {
  const std::vector<UsedQParams> used = observer_qparams(p);
  const QuantGrid& g = used.at(0).grid;
  return {.scale = static_cast<double>(g.scale), .zero_point = g.zero_point, .origin = origin_of(used)};
}

OutputGrid output_grid(const Graph& qat, const std::string& layer) {
  const FakeQuantPoint* p = point_named(qat, layer + ".activation_post_process");
  if (p == nullptr) refuse(layer, "it has no activation fake-quant to take its output grid from");
  return grid_of(*p);
}

// eq. O8.1: fuse_conv_bn_weights, one float rounding per torch op.
void fold_batch_norm(const BatchNormState& bn, double eps, ConstantTensor& weight, std::vector<float>& bias) {
  const auto channels = static_cast<size_t>(weight.dims.at(0));
  const size_t per_channel = weight.data.size() / channels;
  if (bias.empty()) bias.assign(channels, 0.0f);
  for (size_t c = 0; c < channels; ++c) {
    const float rsqrt = 1.0f / std::sqrt(bn.running_var.data[c] + static_cast<float>(eps));
    const float factor = bn.weight.data[c] * rsqrt;
    for (size_t k = 0; k < per_channel; ++k) weight.data[c * per_channel + k] *= factor;
    bias[c] = (bias[c] - bn.running_mean.data[c]) * rsqrt * bn.weight.data[c] + bn.bias.data[c];
  }
}

// eq. O8.2: the weight fake-quant runs once more on the (folded) weight, moving its observer when
// enabled; calculate_qparams; quantize_per_tensor / quantize_per_channel along axis 0.
QuantizedWeight convert_weight(const ConstantTensor& w, FakeQuantPoint point, std::vector<float> bias) {
  const size_t channels = point.per_channel ? static_cast<size_t>(w.dims.at(0)) : 1;
  if (point.min_val.size() != channels) {
    throw std::invalid_argument("weight fake-quant '" + point.module + "' has " + std::to_string(point.min_val.size()) +
                                " channels of state for " + std::to_string(channels));
  }
  const size_t inner = w.data.size() / channels;
  if (point.observer_enabled) {
    for (size_t c = 0; c < channels; ++c) {
      const auto [lo, hi] = std::minmax_element(w.data.begin() + static_cast<std::ptrdiff_t>(c * inner),
                                                w.data.begin() + static_cast<std::ptrdiff_t>((c + 1) * inner));
      point.min_val[c] = moving_average_update(point.min_val[c], *lo, point.averaging_constant);
      point.max_val[c] = moving_average_update(point.max_val[c], *hi, point.averaging_constant);
    }
  }
  const std::vector<UsedQParams> used = observer_qparams(point);
  std::vector<QuantGrid> grids;
  for (const UsedQParams& u : used) grids.push_back(u.grid);
  QuantizedWeight q = quantize_weight(w, point.per_channel, grids, std::move(bias));
  q.origin = origin_of(used);
  return q;
}

ConvertFloat folded(const ConvertSource& source, double eps) {
  ConvertFloat f{source.weight, source.bias ? source.bias->data : std::vector<float>()};
  if (source.bn) fold_batch_norm(*source.bn, eps, f.weight, f.bias);
  return f;
}

// The BN eps of a layer's batch-norm node (1e-5 when it has none).
double batch_norm_eps(const Graph& g, const std::string& layer) {
  for (const Node& n : g.nodes) {
    if (n.layer == layer && n.op == OpKind::kBatchNorm) return std::get<BatchNormParams>(n.params).eps;
  }
  return 1e-5;
}

}  // namespace

std::optional<ConvertFloat> convert_float(const Graph& qat, const std::string& layer) {
  const ConvertSource* source = source_named(qat, layer);
  if (source == nullptr) return std::nullopt;
  return folded(*source, batch_norm_eps(qat, layer));
}

QuantizedWeight quantize_weight(const ConstantTensor& w, bool per_channel, std::span<const QuantGrid> grids,
                                std::vector<float> bias) {
  const size_t channels = per_channel ? static_cast<size_t>(w.dims.at(0)) : 1;
  if (grids.size() != channels) throw std::invalid_argument("quantize_weight: one grid per channel is needed");
  const size_t inner = w.data.size() / channels;
  QuantizedWeight q;
  q.dims = w.dims;
  q.per_channel = per_channel;
  q.bias = std::move(bias);
  q.data.resize(w.data.size());
  for (size_t c = 0; c < channels; ++c) {
    q.scales.push_back(static_cast<double>(grids[c].scale));
    q.zero_points.push_back(grids[c].zero_point);
    for (size_t k = 0; k < inner; ++k) {
      q.data[c * inner + k] = static_cast<int8_t>(quantize_value(w.data[c * inner + k], grids[c]));
    }
  }
  return q;
}

namespace {

class Converter {
 public:
  Converter(const Graph& qat, const BackendProfile& profile) : qat_(qat), profile_(profile) {}

  Graph run() {
    out_.input = out_.add_value(qat_.values.at(static_cast<size_t>(qat_.input)).dims, ValueType::kFloat);
    map_[qat_.input] = out_.input;
    for (const Layer& layer : layers_of(qat_)) convert_layer(layer);
    const auto it = map_.find(qat_.output);
    if (it == map_.end()) throw std::invalid_argument("cannot convert: the model's output is not computed");
    out_.output = it->second;
    if (quantized(out_.output)) {
      // The model's DeQuantStub: a traced QAT model records none of its ops, only the call.
      Node n;
      n.layer = qat_.dequant_stubs.empty() ? std::string("dequant") : qat_.dequant_stubs.back();
      n.source_op = "dequantize";
      n.op = OpKind::kDequantize;
      n.inputs = {out_.output};
      n.output = out_.add_value(out_.values.at(static_cast<size_t>(out_.output)).dims, ValueType::kFloat);
      out_.output = n.output;
      out_.nodes.push_back(std::move(n));
    }
    infer_int8_layouts(out_, profile_);
    return std::move(out_);
  }

 private:
  ValueId mapped(const std::string& layer, ValueId qat_value) {
    const auto it = map_.find(qat_value);
    if (it != map_.end()) return it->second;
    const ValueInfo& v = qat_.values.at(static_cast<size_t>(qat_value));
    if (v.constant) refuse(layer, "an op reads a constant tensor, which the int8 model would hold quantized");
    refuse(layer, "its input comes from an op qparity could not convert");
  }

  bool quantized(ValueId int8_value) const {
    return out_.values.at(static_cast<size_t>(int8_value)).type == ValueType::kQUInt8;
  }

  Node& emit(const std::string& layer, const Node& from, OpKind op, std::vector<ValueId> inputs, OpParams params,
             ValueType type = ValueType::kQUInt8) {
    Node n;
    n.layer = layer;
    n.source_op = std::string(to_string(op));
    n.op = op;
    n.inputs = std::move(inputs);
    n.params = std::move(params);
    n.output = out_.add_value(qat_.values.at(static_cast<size_t>(from.output)).dims, type);
    map_[from.output] = n.output;
    out_.nodes.push_back(std::move(n));
    return out_.nodes.back();
  }

  void convert_layer(const Layer& layer) {
    if (const ConvertSource* source = source_named(qat_, layer.name)) return convert_weighted(layer, *source);
    for (size_t i = 0; i < layer.nodes.size(); ++i) convert_node(layer, qat_.nodes[layer.nodes[i]]);
  }

  // Conv / linear modules (with folded BN and fused ReLU): one quantized::conv2d / linear.
  void convert_weighted(const Layer& layer, const ConvertSource& source) {
    const Node* op = nullptr;
    double eps = 1e-5;
    for (const size_t i : layer.nodes) {
      const Node& n = qat_.nodes[i];
      if ((n.op == OpKind::kConv2d || n.op == OpKind::kLinear) && op == nullptr) op = &n;
      if (n.op == OpKind::kBatchNorm) eps = std::get<BatchNormParams>(n.params).eps;
    }
    if (op == nullptr) refuse(layer.name, "its module (" + source.type + ") ran no conv or linear op");
    auto [weight, bias] = folded(source, eps);
    const FakeQuantPoint* wfq = point_named(qat_, layer.name + ".weight_fake_quant");
    if (wfq == nullptr) refuse(layer.name, "it has no weight fake-quant");
    QConvParams p;
    p.weight = convert_weight(weight, *wfq, std::move(bias));
    if (!source.linear) p.geometry = std::get<ConvParams>(op->params).geometry;
    p.output = output_grid(qat_, layer.name);
    p.relu = source.relu;
    const ValueId x = mapped(layer.name, op->inputs.at(0));
    if (!quantized(x)) refuse(layer.name, "its input is not quantized in the int8 model (no QuantStub before it?)");
    Node last = qat_.nodes[layer.nodes.back()];
    emit(layer.name, last, source.linear ? OpKind::kQLinear : OpKind::kQConv2d, {x}, p);
  }

  void convert_node(const Layer& layer, const Node& n) {
    const std::string& name = layer.name;
    auto input = [&](size_t k) { return mapped(name, n.inputs.at(k)); };
    switch (n.op) {
      case OpKind::kFakeQuant: return convert_fake_quant(layer, n);
      case OpKind::kAdd: case OpKind::kMul: {
        const auto& b = std::get<BinaryParams>(n.params);
        const bool add = n.op == OpKind::kAdd;
        if (b.scalar) {
          emit(name, n, add ? OpKind::kQAddScalar : OpKind::kQMulScalar, {input(0)}, QScalarParams{*b.scalar, false});
          return;
        }
        if (b.alpha != 1.0) refuse(name, "add with alpha");
        // The output grid comes with the functional's fake-quant, later in this layer.
        emit(name, n, add ? OpKind::kQAdd : OpKind::kQMul, {input(0), input(1)}, QBinaryParams{});
        pending_grid_ = out_.nodes.size() - 1;
        return;
      }
      case OpKind::kCat: {
        std::vector<ValueId> inputs;
        for (size_t k = 0; k < n.inputs.size(); ++k) inputs.push_back(input(k));
        emit(name, n, OpKind::kQCat, inputs, QCatParams{std::get<CatParams>(n.params).dim, {}, false});
        pending_grid_ = out_.nodes.size() - 1;
        return;
      }
      case OpKind::kHardswish:
        emit(name, n, OpKind::kQHardswish, {input(0)}, QuantizeParams{});
        pending_grid_ = out_.nodes.size() - 1;
        return;
      case OpKind::kRelu:
        if (pending_grid_ && out_.nodes[*pending_grid_].output == input(0) &&
            out_.nodes[*pending_grid_].op == OpKind::kQAdd) {
          std::get<QBinaryParams>(out_.nodes[*pending_grid_].params).relu = true;  // add_relu
          map_[n.output] = out_.nodes[*pending_grid_].output;
          return;
        }
        emit(name, n, OpKind::kRelu, {input(0)}, {});
        return;
      case OpKind::kIdentity:  // dropout in eval, contiguous
        emit(name, n, OpKind::kIdentity, {input(0)}, {}, out_.values.at(static_cast<size_t>(input(0))).type)
            .source_op = n.source_op;
        return;
      case OpKind::kHardtanh: case OpKind::kSigmoid: case OpKind::kHardsigmoid: case OpKind::kMaxPool2d:
      case OpKind::kAvgPool2d: case OpKind::kAdaptiveAvgPool2d: case OpKind::kReshape: case OpKind::kPermute:
      case OpKind::kSlice: case OpKind::kMean:
        emit(name, n, n.op, {input(0)}, n.params);
        return;
      default:
        refuse(name, "its op " + n.source_op + " has no int8 counterpart in qparity's convert");
    }
  }

  // An activation fake-quant: the QuantStub's becomes quantize_per_tensor; a functional's or
  // hardswish's gives the pending op its output grid; others (ReLU6's, whose int8 module keeps its
  // input's grid; sigmoid's fixed one, which the int8 op reproduces) pass the value through.
  void convert_fake_quant(const Layer& layer, const Node& n) {
    const FakeQuantPoint& p = qat_.fake_quants.at(static_cast<size_t>(std::get<FakeQuantParams>(n.params).point));
    if (p.module.ends_with(".weight_fake_quant")) {
      refuse(layer.name, "a weight fake-quant outside a conv / linear module");
    }
    const ValueId x = mapped(layer.name, n.inputs.at(0));
    const OutputGrid grid = grid_of(p);
    if (!quantized(x)) {
      emit(layer.name, n, OpKind::kQuantize, {x}, QuantizeParams{grid});
      return;
    }
    if (pending_grid_) {
      Node& op = out_.nodes[*pending_grid_];
      if (auto* b = std::get_if<QBinaryParams>(&op.params)) b->output = grid;
      if (auto* c = std::get_if<QCatParams>(&op.params)) c->output = grid;
      if (auto* q = std::get_if<QuantizeParams>(&op.params)) q->output = grid;
      pending_grid_.reset();
    }
    map_[n.output] = x;
  }

  const Graph& qat_;
  const BackendProfile& profile_;
  Graph out_;
  std::unordered_map<ValueId, ValueId> map_;
  std::optional<size_t> pending_grid_;
};

bool nhwc_of(const Graph& g, ValueId id) { return g.values.at(static_cast<size_t>(id)).channels_last; }

// A 4-d output allocated channels-last counts as stored NHWC unless its two layouts coincide.
bool stored_nhwc(const Dims& dims, bool allocated_channels_last) {
  return allocated_channels_last && dims.size() == 4 && dims[1] > 1 && dims[2] * dims[3] > 1;
}

}  // namespace

Graph convert_eager(const Graph& qat, const BackendProfile& profile) { return Converter(qat, profile).run(); }

void infer_int8_layouts(Graph& g, const BackendProfile& profile) {
  const bool qnnpack = profile.qnnpack_operators;
  for (const Node& n : g.nodes) {
    ValueInfo& v = g.values.at(static_cast<size_t>(n.output));
    const bool in_nhwc = !n.inputs.empty() && nhwc_of(g, n.inputs[0]);
    bool nhwc = in_nhwc;
    switch (n.op) {
      case OpKind::kQuantize: case OpKind::kQLinear: case OpKind::kReshape: case OpKind::kPermute:
      case OpKind::kSlice: case OpKind::kMean:
        nhwc = false;
        break;
      case OpKind::kQConv2d:
        nhwc = true;
        break;
      case OpKind::kIdentity:
        nhwc = in_nhwc && n.source_op != "aten::contiguous";  // contiguous() copies to NCHW
        break;
      case OpKind::kHardtanh:
        nhwc = in_nhwc && !qnnpack;  // eq. 6.13b: qnnpack's clamp allocates NCHW
        break;
      case OpKind::kQCat: {
        nhwc = true;
        for (const ValueId id : n.inputs) nhwc = nhwc && nhwc_of(g, id);
        break;
      }
      case OpKind::kQMul: case OpKind::kQAdd:
        for (const ValueId id : n.inputs) {
          if (g.values.at(static_cast<size_t>(id)).dims == v.dims) {
            nhwc = nhwc_of(g, id);
            break;
          }
        }
        break;
      default:  // elementwise ops and pools keep their input's layout (QNNPACK's pools copy back to it)
        break;
    }
    v.channels_last = stored_nhwc(v.dims, nhwc);
  }
}

namespace {

std::string bits_text(float f) { return std::to_string(std::bit_cast<uint32_t>(f)); }

void compare_weights(const std::string& layer, const QuantizedWeight& a, const QuantizedWeight& b,
                     std::vector<std::string>& out) {
  if (a.dims != b.dims || a.per_channel != b.per_channel) {
    out.push_back(layer + ": weight shape or scheme differs");
    return;
  }
  size_t differing = 0;
  for (size_t i = 0; i < a.data.size(); ++i) differing += a.data[i] != b.data[i] ? 1U : 0U;
  if (differing != 0) {
    out.push_back(layer + ": " + std::to_string(differing) + " of " + std::to_string(a.data.size()) +
                  " int8 weights differ");
  }
  for (size_t c = 0; c < a.scales.size() && c < b.scales.size(); ++c) {
    if (a.scales[c] != b.scales[c] || a.zero_points[c] != b.zero_points[c]) {
      out.push_back(layer + ": weight scale / zero point of channel " + std::to_string(c) + " differs (" +
                    std::to_string(a.scales[c]) + ", " + std::to_string(a.zero_points[c]) + " vs " +
                    std::to_string(b.scales[c]) + ", " + std::to_string(b.zero_points[c]) + ")");
      break;
    }
  }
  if (a.bias.size() != b.bias.size()) {
    out.push_back(layer + ": bias presence differs");
    return;
  }
  for (size_t c = 0; c < a.bias.size(); ++c) {
    if (std::bit_cast<uint32_t>(a.bias[c]) != std::bit_cast<uint32_t>(b.bias[c])) {
      out.push_back(layer + ": float bias of channel " + std::to_string(c) + " differs (bits " + bits_text(a.bias[c]) +
                    " vs " + bits_text(b.bias[c]) + ")");
      break;
    }
  }
}

const OutputGrid* grid_of(const Node& n) {
  if (const auto* p = std::get_if<QConvParams>(&n.params)) return &p->output;
  if (const auto* p = std::get_if<QBinaryParams>(&n.params)) return &p->output;
  if (const auto* p = std::get_if<QCatParams>(&n.params)) return &p->output;
  if (const auto* p = std::get_if<QuantizeParams>(&n.params)) return &p->output;
  return nullptr;
}

}  // namespace

std::vector<std::string> compare_converted(const Graph& derived, const Graph& real) {
  std::vector<std::string> out;
  std::unordered_map<std::string, std::vector<const Node*>> by_layer;
  for (const Node& n : derived.nodes) by_layer[n.layer].push_back(&n);
  for (const Layer& layer : layers_of(real)) {
    const auto it = by_layer.find(layer.name);
    if (it == by_layer.end()) {
      out.push_back(layer.name + ": missing from qparity's convert");
      continue;
    }
    const Node& r = real.nodes[layer.nodes.back()];
    const Node& d = *it->second.back();
    if (r.op != d.op) {
      out.push_back(layer.name + ": op " + std::string(to_string(d.op)) + " instead of " + std::string(to_string(r.op)));
      continue;
    }
    const auto* rw = std::get_if<QConvParams>(&r.params);
    const auto* dw = std::get_if<QConvParams>(&d.params);
    if (rw && dw) {
      compare_weights(layer.name, dw->weight, rw->weight, out);
      if (rw->relu != dw->relu) out.push_back(layer.name + ": fused ReLU differs");
    }
    const OutputGrid* rg = grid_of(r);
    const OutputGrid* dg = grid_of(d);
    if (rg && dg && (rg->scale != dg->scale || rg->zero_point != dg->zero_point)) {
      out.push_back(layer.name + ": output grid (" + std::to_string(dg->scale) + ", " + std::to_string(dg->zero_point) +
                    ") instead of (" + std::to_string(rg->scale) + ", " + std::to_string(rg->zero_point) + ")");
    }
    const bool rl = real.values.at(static_cast<size_t>(r.output)).channels_last;
    const bool dl = derived.values.at(static_cast<size_t>(d.output)).channels_last;
    if (rl != dl) {
      out.push_back(layer.name + ": output memory layout " + (dl ? "NHWC" : "NCHW") + " instead of " + (rl ? "NHWC" : "NCHW"));
    }
  }
  return out;
}

}  // namespace qparity::model
