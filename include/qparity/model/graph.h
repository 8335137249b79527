// The model IR: one dataflow graph per path (the QAT model's float ops with its fake-quant
// points, the int8 model's quantized ops), in execution order. A frontend builds it from what
// the framework really ran (frontends/torch), code builds it for built-in models. Every node
// names the layer it belongs to, which is how the two paths' graphs line up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "qparity/numerics/fake_quant_module.h"
#include "qparity/numerics/qparam_rules.h"
#include "qparity/ops/conv2d.h"

namespace qparity::model {

using ValueId = int32_t;
constexpr ValueId kNoValue = -1;

using Dims = std::vector<int64_t>;
int64_t numel(const Dims& dims);
std::string to_string(const Dims& dims);

// A float32 tensor known before the run: weights, biases, BN statistics.
struct ConstantTensor {
  Dims dims;
  std::vector<float> data;
};

// The state of one fake-quant module (FusedMovingAvgObsFakeQuantize) as the run starts: its
// configuration, the observer's running range and the scale / zero point buffers, per channel
// when `per_channel` (entry c = channel c along `axis`).
struct FakeQuantPoint {
  std::string module;  // qualified name, e.g. "layer1.0.conv1.weight_fake_quant"
  FakeQuantModuleKind kind = FakeQuantModuleKind::kFusedMovingAvgObsFakeQuantize;
  QuantSpec spec;
  bool per_channel = false;
  int64_t axis = 0;
  float averaging_constant = 0.01f;
  std::vector<float> min_val, max_val;
  std::vector<float> scale;
  std::vector<int64_t> zero_point;
  bool observer_enabled = false;
  bool fake_quant_enabled = true;
};

enum class OpKind {
  // Float ops (the QAT path), and shape ops either path runs.
  kAdd,        // a + alpha * b, broadcasting; b may be a scalar
  kSub,        // a - alpha * b
  kMul,        // a * b
  kDiv,        // a / b
  kSqrt,
  kZerosLike,
  kConv2d,     // inputs: x, weight, [bias]
  kLinear,     // inputs: x, weight, [bias]
  kBatchNorm,  // inputs: x, [weight], [bias], running_mean, running_var
  kFakeQuant,  // a FakeQuantPoint applied to the input
  // Either path: float values, or quint8 values with their grid.
  kRelu,
  kHardtanh,
  kMaxPool2d,
  kAvgPool2d,
  kAdaptiveAvgPool2d,
  kReshape,  // reshape / view / flatten: the same elements in a new shape
  kIdentity,  // dropout in eval, contiguous, clone
  kCat,
  // Quantized ops (the int8 path).
  kQuantize,    // quantize_per_tensor to quint8
  kDequantize,
  kQConv2d,     // quantized::conv2d / conv2d_relu
  kQLinear,     // quantized::linear / linear_relu
  kQAdd,        // quantized::add / add_relu
};

std::string_view to_string(OpKind op);

struct BinaryParams {
  std::optional<double> scalar;  // the second operand when it is a Python scalar
  double alpha = 1.0;            // add / sub: a ± alpha * b
};

struct ReshapeParams {
  Dims dims;  // the output dims (already resolved, no -1)
};

struct ClampParams {
  double min = 0.0, max = 0.0;  // hardtanh bounds (relu6: 0, 6)
};

struct Pool2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  bool ceil_mode = false;
  bool count_include_pad = true;
  std::optional<int64_t> divisor_override;
};

struct AdaptivePoolParams {
  int64_t out_h = 1, out_w = 1;
  // The input's memory layout in the real run: ATen picks its quantized kernel by it.
  bool channels_last_input = false;
};

struct ConvParams {
  Conv2dGeometry geometry;
};

struct BatchNormParams {
  double eps = 1e-5;
  bool training = false;
};

struct CatParams {
  int64_t dim = 1;
};

struct FakeQuantParams {
  int32_t point = 0;  // index into Graph::fake_quants
};

// The quint8 grid of an int8 op's output.
struct OutputGrid {
  double scale = 1.0;  // as the module holds it (a double that is a float32 value)
  int64_t zero_point = 0;
};

struct QuantizeParams {
  OutputGrid output;
};

// A qint8 weight as the packed params hold it, with its float bias.
struct QuantizedWeight {
  Dims dims;  // [M, C/groups, KH, KW] or [M, K]
  std::vector<int8_t> data;
  bool per_channel = false;
  std::vector<double> scales;       // 1 or M, as the quantized tensor stores them (double)
  std::vector<int64_t> zero_points; // same size
  std::vector<float> bias;          // empty = none
};

struct QConvParams {
  QuantizedWeight weight;
  Conv2dGeometry geometry;
  OutputGrid output;
  bool relu = false;
};

struct QAddParams {
  OutputGrid output;
  bool relu = false;
};

using OpParams = std::variant<std::monostate, BinaryParams, ReshapeParams, ClampParams,
                              Pool2dParams, AdaptivePoolParams, ConvParams, BatchNormParams,
                              CatParams, FakeQuantParams, QuantizeParams, QConvParams, QAddParams>;

struct Node {
  std::string layer;      // the layer it belongs to, e.g. "layer1.0.conv1"
  std::string source_op;  // the framework op it was read from, e.g. "aten::_convolution"
  OpKind op = OpKind::kIdentity;
  std::vector<ValueId> inputs;
  ValueId output = kNoValue;
  OpParams params;
};

enum class ValueType { kFloat, kQUInt8 };

struct ValueInfo {
  Dims dims;
  ValueType type = ValueType::kFloat;
  std::optional<ConstantTensor> constant;  // set for weights, biases, statistics
};

struct Graph {
  std::vector<ValueInfo> values;
  std::vector<Node> nodes;  // execution order
  std::vector<FakeQuantPoint> fake_quants;
  ValueId input = kNoValue;
  ValueId output = kNoValue;

  ValueId add_value(Dims dims, ValueType type);
  ValueId add_constant(ConstantTensor tensor);
};

// The layers of a graph in execution order: each layer name once, with the value its last
// node produces.
struct Layer {
  std::string name;
  ValueId output = kNoValue;
  std::vector<size_t> nodes;  // indices into Graph::nodes
};
std::vector<Layer> layers_of(const Graph& graph);

}  // namespace qparity::model
