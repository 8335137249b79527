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
#include "qparity/ops/pool2d.h"

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
  // Set when code wrote the scale buffer by hand (the seed's set_qconfig_params): reported when a
  // forward overwrites it.
  std::optional<float> hand_set_scale;
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
  kHardtanh,     // clamp / relu6 (quint8: output on the input's grid)
  kHardsigmoid,  // quint8: output on the fixed grid 1/256, 0
  kSigmoid,      // quint8: output on the fixed grid 1/256, 0
  kHardswish,    // float only; the int8 op is kQHardswish
  kMaxPool2d,
  kAvgPool2d,
  kAdaptiveAvgPool2d,
  kReshape,  // reshape / view / flatten: the same elements in a new shape
  kPermute,  // transpose / permute: the same elements in a new order
  kSlice,    // one piece of chunk / split along a dim
  kMean,     // mean over dims (quint8: on the input's grid)
  kIdentity,  // dropout in eval, contiguous, clone
  kCat,
  // Quantized ops (the int8 path).
  kQuantize,    // quantize_per_tensor to quint8
  kDequantize,
  kQConv2d,     // quantized::conv2d / conv2d_relu
  kQLinear,     // quantized::linear / linear_relu
  kQAdd,        // quantized::add / add_relu
  kQMul,        // quantized::mul / mul_relu
  kQAddScalar,  // quantized::add_scalar / add_scalar_relu: picks its own output grid
  kQMulScalar,  // quantized::mul_scalar / mul_scalar_relu: picks its own output grid
  kQCat,        // quantized::cat / cat_relu
  kQHardswish,  // quantized::hardswish with its output grid
};

std::string_view to_string(OpKind op);

struct BinaryParams {
  std::optional<double> scalar;  // the second operand when it is a Python scalar
  double alpha = 1.0;            // add / sub: a ± alpha * b
};

struct ReshapeParams {
  Dims dims;  // the output dims (already resolved, no -1)
};

struct PermuteParams {
  Dims perm;  // output dim d is input dim perm[d]
};

struct SliceParams {
  int64_t dim = 0;
  int64_t start = 0, end = 0;  // [start, end) along dim
};

struct MeanParams {
  Dims dims;  // reduced dims, ascending, non-negative
  bool keepdim = false;
  // The dims as the model wrote them: qnnpack takes its global pool only for exactly [2, 3].
  Dims written;
};

struct ClampParams {
  double min = 0.0, max = 0.0;  // hardtanh bounds (relu6: 0, 6)
};

struct Pool2dParams {
  Pool2dWindow window;
  bool count_include_pad = true;  // avg pool only
  std::optional<int64_t> divisor_override;
};

struct AdaptivePoolParams {
  int64_t out_h = 1, out_w = 1;
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

// Where an int8 model's qparams came from: the rule convert() ran (one derivation per channel,
// or one), or nothing when they were read as a file stores them.
struct QParamsOrigin {
  std::vector<QParamDerivation> derivations;
  std::string provenance;  // one sentence; empty when read from a file
};

// The quint8 grid of an int8 op's output.
struct OutputGrid {
  double scale = 1.0;  // as the module holds it (a double that is a float32 value)
  int64_t zero_point = 0;
  QParamsOrigin origin;
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
  QParamsOrigin origin;             // of the scales and zero points
};

struct QConvParams {
  QuantizedWeight weight;
  Conv2dGeometry geometry;
  OutputGrid output;
  bool relu = false;
};

// quantized::add / mul / cat and their _relu forms: the output grid the module passes.
struct QBinaryParams {
  OutputGrid output;
  bool relu = false;
};

// quantized::add_scalar / mul_scalar: the scalar as the op receives it (a double).
struct QScalarParams {
  double scalar = 0.0;
  bool relu = false;
};

struct QCatParams {
  int64_t dim = 1;
  OutputGrid output;
  bool relu = false;
};

using OpParams = std::variant<std::monostate, BinaryParams, ReshapeParams, ClampParams,
                              Pool2dParams, AdaptivePoolParams, ConvParams, BatchNormParams,
                              CatParams, FakeQuantParams, QuantizeParams, QConvParams, QBinaryParams,
                              QScalarParams, QCatParams, PermuteParams, SliceParams, MeanParams>;

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
  // The value's memory layout in the framework's run: a 4-d tensor stored NHWC. ATen picks
  // pooling, cat and elementwise kernels by layout, and they round differently (docs/numerics.md
  // §6.8), and elementwise kernels split vector blocks and scalar tails in memory order.
  bool channels_last = false;
  std::optional<ConstantTensor> constant;  // set for weights, biases, statistics
};

// What eager convert() reads from a QAT conv / linear module besides its fake-quants: the
// module's own weight and bias, and for ConvBn modules the BN state it folds in (eq. O8.1 of
// docs/research/ops-numerics-1.13.1.md). Geometry and the BN eps come from the module's nodes.
struct BatchNormState {
  ConstantTensor weight, bias, running_mean, running_var;
};

struct ConvertSource {
  std::string module;  // "layer1.0.conv1"
  std::string type;    // the QAT module class: ConvBnReLU2d, ConvBn2d, ConvReLU2d, Conv2d, Linear, LinearReLU
  bool linear = false;
  bool relu = false;
  ConstantTensor weight;
  std::optional<ConstantTensor> bias;
  std::optional<BatchNormState> bn;
};

struct Graph {
  std::vector<ValueInfo> values;
  std::vector<Node> nodes;  // execution order
  std::vector<FakeQuantPoint> fake_quants;
  std::vector<ConvertSource> convert_sources;  // QAT graphs read by a frontend
  std::vector<std::string> dequant_stubs;      // DeQuantStub modules a QAT trace called, in order
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

// Gives QAT ops the int8 layer's name where the QAT model could not name them: a traced QAT
// model keeps no trace of a FloatFunctional whose op no fake-quant observes (add_scalar,
// mul_scalar), so its op was named after the calling scope ("add"). An int8 layer missing from
// the QAT graph adopts the QAT op of the same kind that consumes the same layer's output and
// whose name no int8 layer claims.
void adopt_layer_names(const Graph& int8, Graph& qat);

}  // namespace qparity::model
