#include "qparity/model/graph.h"

#include <unordered_map>

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
    case OpKind::kMaxPool2d: return "max_pool2d";
    case OpKind::kAvgPool2d: return "avg_pool2d";
    case OpKind::kAdaptiveAvgPool2d: return "adaptive_avg_pool2d";
    case OpKind::kReshape: return "reshape";
    case OpKind::kIdentity: return "identity";
    case OpKind::kCat: return "cat";
    case OpKind::kQuantize: return "quantize_per_tensor";
    case OpKind::kDequantize: return "dequantize";
    case OpKind::kQConv2d: return "quantized::conv2d";
    case OpKind::kQLinear: return "quantized::linear";
    case OpKind::kQAdd: return "quantized::add";
  }
  return "?";
}

ValueId Graph::add_value(Dims dims, ValueType type) {
  values.push_back({std::move(dims), type, std::nullopt});
  return static_cast<ValueId>(values.size() - 1);
}

ValueId Graph::add_constant(ConstantTensor tensor) {
  Dims dims = tensor.dims;
  values.push_back({std::move(dims), ValueType::kFloat, std::move(tensor)});
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

}  // namespace qparity::model
