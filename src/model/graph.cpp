#include "qparity/model/graph.h"

#include <unordered_map>
#include <unordered_set>

namespace qparity::model {

int64_t numel(const Dims& dims) {
  int64_t n = 1;
  for (const int64_t d : dims) n *= d;
  return n;
}

std::string to_string(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

std::string_view to_string(OpKind op) {
  switch (op) {
    case OpKind::kAdd: return "add";
    case OpKind::kSub: return "sub";
    case OpKind::kMul: return "mul";
    case OpKind::kDiv: return "div";
    case OpKind::kSqrt: return "sqrt";
    case OpKind::kZerosLike: return "zeros_like";
    case OpKind::kConv2d: return "conv2d";
    case OpKind::kLinear: return "linear";
    case OpKind::kBatchNorm: return "batch_norm";
    case OpKind::kFakeQuant: return "fake_quant";
    case OpKind::kRelu: return "relu";
    case OpKind::kHardtanh: return "hardtanh";
    case OpKind::kHardsigmoid: return "hardsigmoid";
    case OpKind::kSigmoid: return "sigmoid";
    case OpKind::kHardswish: return "hardswish";
    case OpKind::kMaxPool2d: return "max_pool2d";
    case OpKind::kAvgPool2d: return "avg_pool2d";
    case OpKind::kAdaptiveAvgPool2d: return "adaptive_avg_pool2d";
    case OpKind::kReshape: return "reshape";
    case OpKind::kPermute: return "permute";
    case OpKind::kSlice: return "slice";
    case OpKind::kMean: return "mean";
    case OpKind::kIdentity: return "identity";
    case OpKind::kCat: return "cat";
    case OpKind::kQuantize: return "quantize_per_tensor";
    case OpKind::kDequantize: return "dequantize";
    case OpKind::kQConv2d: return "quantized::conv2d";
    case OpKind::kQLinear: return "quantized::linear";
    case OpKind::kQAdd: return "quantized::add";
    case OpKind::kQMul: return "quantized::mul";
    case OpKind::kQAddScalar: return "quantized::add_scalar";
    case OpKind::kQMulScalar: return "quantized::mul_scalar";
    case OpKind::kQCat: return "quantized::cat";
    case OpKind::kQHardswish: return "quantized::hardswish";
  }
  return "?";
}

ValueId Graph::add_value(Dims dims, ValueType type) {
  values.push_back({std::move(dims), type, false, std::nullopt});
  return static_cast<ValueId>(values.size() - 1);
}

ValueId Graph::add_constant(ConstantTensor tensor) {
  Dims dims = tensor.dims;
  values.push_back({std::move(dims), ValueType::kFloat, false, std::move(tensor)});
  return static_cast<ValueId>(values.size() - 1);
}

std::vector<Layer> layers_of(const Graph& graph) {
  std::vector<Layer> layers;
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    auto [it, fresh] = index.try_emplace(node.layer, layers.size());
    if (fresh) layers.push_back({node.layer, kNoValue, {}});
    Layer& layer = layers[it->second];
    layer.nodes.push_back(i);
    layer.output = node.output;
  }
  return layers;
}

namespace {

// The float op an int8 op stands for.
OpKind float_counterpart(OpKind op) {
  switch (op) {
    case OpKind::kQAdd: case OpKind::kQAddScalar: return OpKind::kAdd;
    case OpKind::kQMul: case OpKind::kQMulScalar: return OpKind::kMul;
    case OpKind::kQCat: return OpKind::kCat;
    case OpKind::kQuantize: return OpKind::kFakeQuant;
    case OpKind::kQHardswish: return OpKind::kHardswish;
    case OpKind::kQConv2d: return OpKind::kConv2d;
    case OpKind::kQLinear: return OpKind::kLinear;
    default: return op;
  }
}

// The layer whose node produced `value` ("" for the graph input and constants).
std::string producer_layer(const Graph& graph, const std::unordered_map<ValueId, size_t>& producer, ValueId value) {
  const auto it = producer.find(value);
  return it == producer.end() ? std::string() : graph.nodes[it->second].layer;
}

std::unordered_map<ValueId, size_t> producers(const Graph& graph) {
  std::unordered_map<ValueId, size_t> producer;
  for (size_t i = 0; i < graph.nodes.size(); ++i) producer[graph.nodes[i].output] = i;
  return producer;
}

}  // namespace

void adopt_layer_names(const Graph& int8, Graph& qat) {
  std::unordered_set<std::string> int8_names;
  for (const Node& n : int8.nodes) int8_names.insert(n.layer);
  std::unordered_set<std::string> qat_names;
  for (const Node& n : qat.nodes) qat_names.insert(n.layer);
  const auto int8_producer = producers(int8);
  // Which node produces a value never changes; producer_layer reads the name as adopted so far.
  const auto qat_producer = producers(qat);
  for (const Node& n : int8.nodes) {
    if (qat_names.count(n.layer) != 0 || n.inputs.empty()) continue;
    const std::string source = producer_layer(int8, int8_producer, n.inputs[0]);
    for (Node& m : qat.nodes) {
      const bool unclaimed = int8_names.count(m.layer) == 0;
      if (!unclaimed || m.inputs.empty() || m.op != float_counterpart(n.op)) continue;
      if (producer_layer(qat, qat_producer, m.inputs[0]) != source) continue;
      const std::string old = m.layer;
      for (Node& k : qat.nodes) {
        if (k.layer == old) k.layer = n.layer;
      }
      // add_relu: QAT's separate relu of the sum (FX's torch.relu) belongs to the same layer.
      const auto* fused = std::get_if<QBinaryParams>(&n.params);
      if (fused != nullptr && fused->relu) {
        for (Node& r : qat.nodes) {
          if (r.op != OpKind::kRelu || r.inputs.empty() || r.inputs[0] != m.output || int8_names.count(r.layer) != 0) continue;
          const std::string relu_layer = r.layer;
          for (Node& k : qat.nodes) {
            if (k.layer == relu_layer) k.layer = n.layer;
          }
        }
      }
      qat_names.insert(n.layer);
      break;
    }
  }
}

}  // namespace qparity::model
