// The walker interprets a module's forward graph node by node with libtorch doing the real
// work, so every control-flow decision (shape checks, padding-mode branches, `if
// self.use_res_connect`) is taken as the real run takes it, and records each tensor op that ran
// as an IR node. Fake-quant modules are opaque: their state is read, then they run for real.
#include "torchscript_frontend.h"

#include "load_crash_guard.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/native/quantized/PackedParams.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/script.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace qparity::torchfe {
namespace {

using torch::jit::Node;
using torch::jit::Value;
namespace prim = c10::prim;
namespace aten = c10::aten;

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

// libtorch's error as one line: the TorchScript interpreter wraps an op's error in a traceback
// whose last line is "RuntimeError: <what>" (or IndexError, ValueError...); other errors say it
// in their first line.
std::string torch_error_line(const std::string& what) {
  if (what.rfind("The following operation failed in the TorchScript interpreter", 0) != 0) {
    const size_t from = what.find_first_not_of("\n ");
    if (from == std::string::npos) return "libtorch gave no reason";
    return what.substr(from, what.find('\n', from) - from);
  }
  std::string last = what.substr(0, what.find_last_not_of("\n ") + 1);
  last = last.substr(last.find_last_of('\n') + 1);
  const size_t colon = last.find("Error: ");
  return colon == std::string::npos ? last : last.substr(colon + 7);
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

std::string type_name(const c10::intrusive_ptr<c10::ivalue::Object>& obj) {
  return obj->type()->name() ? obj->type()->name()->qualifiedName() : "?";
}

// Modules of PyTorch itself (torch.nn, torch.ao): a call into one makes a layer.
bool is_library_module(const std::string& type) {
  // Containers (Sequential, ModuleList) only group layers; they are not one.
  return type.rfind("__torch__.torch.", 0) == 0 && !contains(type, ".container.");
}

model::Dims dims_of(const at::Tensor& t) { return t.sizes().vec(); }

// Stored NHWC (and not also NCHW-contiguous, as tensors with one channel or a 1x1 image are).
bool stored_channels_last(const at::Tensor& t) {
  return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

run::Tensor to_run_tensor(const at::Tensor& t) {
  if (t.is_quantized()) {
    if (t.scalar_type() != at::kQUInt8 || t.qscheme() != at::kPerTensorAffine) {
      fail("only quint8 per-tensor activations are supported (got " + std::string(c10::toString(t.scalar_type())) + ")");
    }
    const at::Tensor q = t.int_repr().contiguous();
    const auto* p = q.data_ptr<uint8_t>();
    return run::quantized_tensor(dims_of(t), std::vector<uint8_t>(p, p + q.numel()), t.q_scale(),
                                 t.q_zero_point());
  }
  const at::Tensor f = t.to(at::kFloat).contiguous();
  const auto* p = f.data_ptr<float>();
  return run::float_tensor(dims_of(t), std::vector<float>(p, p + f.numel()));
}

std::vector<float> float_data(const at::Tensor& t) {
  const at::Tensor f = t.to(at::kFloat).contiguous();
  return {f.data_ptr<float>(), f.data_ptr<float>() + f.numel()};
}

std::vector<int64_t> int_list(const c10::IValue& v) { return v.toIntVector(); }

// What one graph value is during the walk: its real value, and the IR value when it is a tensor
// the IR tracks.
struct Slot {
  c10::IValue value;
  model::ValueId id = model::kNoValue;
  std::vector<model::ValueId> list_ids;  // a list of tracked tensors (for cat)
};

class Walker {
 public:
  Walker(bool qat, std::string file) : qat_(qat), file_(std::move(file)) {}

  LoadedPath walk(torch::jit::Module& module, const run::Tensor& input_tensor, const at::Tensor& input) {
    LoadedPath path;
    path.file = file_;
    graph_ = &path.graph;
    reference_ = &path.reference;
    graph_->input = new_value(dims_of(input), model::ValueType::kFloat, std::nullopt);
    (void)input_tensor;
    auto& fn = module.get_method("forward").function();
    const auto graph = torch::jit::toGraphFunction(fn).graph();
    fx_ = contains(type_name(module._ivalue()), ".fx.graph_module.");
    std::vector<Slot> args{{module._ivalue(), model::kNoValue, {}}, {input, graph_->input, {}}};
    std::vector<Slot> outs = run_graph(*graph, args, "", "");
    if (outs.size() != 1 || !outs[0].value.isTensor() || outs[0].id == model::kNoValue) {
      fail(file_ + ": the model's forward must return one tensor computed from its input");
    }
    graph_->output = outs[0].id;
    name_layers();
    return path;
  }

 private:
  using Env = std::unordered_map<const Value*, Slot>;

  model::ValueId new_value(model::Dims dims, model::ValueType type, std::optional<run::Tensor> reference) {
    const model::ValueId id = graph_->add_value(std::move(dims), type);
    reference_->push_back(std::move(reference));
    return id;
  }

  model::ValueId constant(const at::Tensor& t) {
    const model::ValueId id = graph_->add_constant({dims_of(t), float_data(t)});
    reference_->push_back(std::nullopt);
    return id;
  }

  std::vector<Slot> run_graph(const torch::jit::Graph& g, const std::vector<Slot>& args, const std::string& scope,
                              const std::string& layer) {
    Env env;
    for (size_t i = 0; i < g.inputs().size(); ++i) env[g.inputs()[i]] = args.at(i);
    if (!g.inputs().empty()) paths_[g.inputs()[0]] = scope;
    run_block(*g.block(), env, scope, layer);
    std::vector<Slot> outs;
    for (const Value* v : g.outputs()) outs.push_back(env.at(v));
    return outs;
  }

  void run_block(const torch::jit::Block& b, Env& env, const std::string& scope, const std::string& layer) {
    for (const Node* n : b.nodes()) run_node(n, env, scope, layer);
  }

  void run_node(const Node* n, Env& env, const std::string& scope, const std::string& layer) {
    const auto k = n->kind();
    if (k == prim::Constant) {
      if (n->output()->type()->kind() != c10::TypeKind::FunctionType) {
        env[n->output()] = {torch::jit::toIValue(n->output()).value(), model::kNoValue, {}};
      }
      return;
    }
    if (k == prim::GetAttr) {
      const Slot& owner = env.at(n->input());
      const std::string name = n->s(c10::attr::name);
      env[n->output()] = {owner.value.toObject()->getAttr(name), model::kNoValue, {}};
      const auto it = paths_.find(n->input());
      const std::string base = it == paths_.end() ? std::string() : it->second;
      paths_[n->output()] = base.empty() ? name : base + "." + name;
      return;
    }
    if (k == prim::CallMethod) return call_method(n, env, layer);
    if (k == prim::CallFunction) return call_function(n, env, scope, layer);
    if (k == prim::If) {
      const torch::jit::Block* taken = n->blocks()[env.at(n->input()).value.toBool() ? 0 : 1];
      run_block(*taken, env, scope, layer);
      for (size_t i = 0; i < n->outputs().size(); ++i) env[n->outputs()[i]] = env.at(taken->outputs()[i]);
      return;
    }
    if (k == prim::RaiseException) {
      fail(file_ + ": the model raised an exception in '" + (scope.empty() ? "forward" : scope) +
           "' (its own input check failed): " + env.at(n->input(0)).value.toStringRef());
    }
    if (k == prim::Loop) fail(file_ + ": loops in the model's forward are not supported (in '" + scope + "')");
    run_op(n, env, scope, layer);
  }

  void call_method(const Node* n, Env& env, const std::string& layer) {
    const Slot& self = env.at(n->input(0));
    const auto obj = self.value.toObject();
    const std::string method = n->s(c10::attr::name);
    const auto pit = paths_.find(n->input(0));
    const std::string path = pit == paths_.end() ? "?" : pit->second;
    const std::string type = type_name(obj);
    std::vector<Slot> args;
    for (const Value* v : n->inputs()) args.push_back(env.at(v));
    if (contains(type, "FakeQuantize")) {
      env[n->output()] = fake_quant(obj, path, type, args.at(1));
      return;
    }
    if (contains(type, "Observer")) fail(file_ + ": observer module '" + path + "' (" + type + ") is not supported; only fake-quant modules");
    if (qat_ && method == "forward") capture_convert_source(obj, path, type);
    if (qat_ && method == "forward" && class_name(type) == "DeQuantStub") {
      // A traced DeQuantStub records no op (not even its input); convert names its dequantize after it.
      graph_->dequant_stubs.push_back(path);
    }
    // The first library module on the way down names the layer of everything inside it.
    std::string inner = layer;
    if (inner.empty() && is_library_module(type)) inner = method == "forward" ? path : path;
    auto& fn = obj->type()->getMethod(method);
    const auto graph = torch::jit::toGraphFunction(fn).graph();
    std::vector<Slot> outs = run_graph(*graph, args, path, inner);
    // In FX models a library module that hands its input back (nnq.Dropout) still is a layer: the
    // QAT GraphModule observes its output. (Traced eager QAT models record no call for them.)
    const bool own_layer = fx_ && layer.empty() && !inner.empty();
    if (own_layer && outs.size() == 1 && outs[0].id != model::kNoValue && args.size() > 1 && outs[0].id == args[1].id) {
      outs[0] = identity_layer(path, outs[0]);
    }
    for (size_t i = 0; i < n->outputs().size(); ++i) env[n->outputs()[i]] = outs.at(i);
  }

  Slot identity_layer(const std::string& path, const Slot& x) {
    model::Node node;
    node.source_op = "identity module";
    node.op = model::OpKind::kIdentity;
    node.layer = path;
    node.inputs = {x.id};
    const at::Tensor t = x.value.toTensor();
    node.output = new_value(dims_of(t), t.is_quantized() ? model::ValueType::kQUInt8 : model::ValueType::kFloat,
                            to_run_tensor(t));
    graph_->values[static_cast<size_t>(node.output)].channels_last = stored_channels_last(t);
    node_scopes_.push_back(path);
    graph_->nodes.push_back(std::move(node));
    return {x.value, graph_->nodes.back().output, {}};
  }

  // The class name without module path and TorchScript's ___torch_mangle_N prefix.
  static std::string class_name(const std::string& type) {
    const auto dot = type.rfind('.');
    return dot == std::string::npos ? type : type.substr(dot + 1);
  }

  // The weight, bias and BN state eager convert() reads from QAT conv / linear modules.
  void capture_convert_source(const c10::intrusive_ptr<c10::ivalue::Object>& obj, const std::string& path,
                              const std::string& type) {
    static const std::unordered_set<std::string> kConvertible{"ConvBnReLU2d", "ConvBn2d", "ConvReLU2d", "Conv2d",
                                                             "Linear", "LinearReLU"};
    const std::string name = class_name(type);
    if (kConvertible.count(name) == 0 || !contains(type, ".qat.")) return;
    auto tensor_attr = [&](const c10::intrusive_ptr<c10::ivalue::Object>& o, const char* attr) {
      const at::Tensor t = o->getAttr(attr).toTensor();
      return model::ConstantTensor{dims_of(t), float_data(t)};
    };
    model::ConvertSource s;
    s.module = path;
    s.type = name;
    s.linear = name.rfind("Linear", 0) == 0;
    s.relu = contains(name, "ReLU");
    s.weight = tensor_attr(obj, "weight");
    if (obj->type()->hasAttribute("bias") && obj->getAttr("bias").isTensor()) s.bias = tensor_attr(obj, "bias");
    if (contains(name, "ConvBn")) {
      const auto bn = obj->getAttr("bn").toObject();
      s.bn = model::BatchNormState{tensor_attr(bn, "weight"), tensor_attr(bn, "bias"), tensor_attr(bn, "running_mean"),
                                   tensor_attr(bn, "running_var")};
    }
    graph_->convert_sources.push_back(std::move(s));
  }

  void call_function(const Node* n, Env& env, const std::string& scope, const std::string& layer) {
    auto* fn = n->input(0)->type()->expectRef<c10::FunctionType>().function();
    std::vector<Slot> args;
    for (size_t i = 1; i < n->inputs().size(); ++i) args.push_back(env.at(n->input(i)));
    const auto graph = torch::jit::toGraphFunction(*fn).graph();
    const std::string inner_layer = layer.empty() ? fx_node_name(n, scope) : layer;
    Env inner;
    for (size_t i = 0; i < graph->inputs().size(); ++i) inner[graph->inputs()[i]] = args.at(i);
    run_block(*graph->block(), inner, scope, inner_layer);
    for (size_t i = 0; i < n->outputs().size(); ++i) env[n->outputs()[i]] = inner.at(graph->outputs()[i]);
  }

  // Runs a non-call node with libtorch's own operator, then records it.
  void run_op(const Node* n, Env& env, const std::string& scope, const std::string& layer) {
    const auto k = n->kind();
    std::vector<c10::IValue> stack;
    for (const Value* v : n->inputs()) stack.push_back(env.at(v).value);
    std::vector<c10::IValue> outputs;
    if (k == prim::ListConstruct) {
      c10::impl::GenericList list(n->output()->type()->expectRef<c10::ListType>().getElementType());
      Slot slot;
      for (size_t i = 0; i < stack.size(); ++i) {
        list.push_back(stack[i]);
        slot.list_ids.push_back(env.at(n->input(i)).id);
      }
      slot.value = c10::IValue(list);
      env[n->output()] = std::move(slot);
      return;
    }
    if (k == prim::TupleConstruct) {
      outputs = {c10::IValue(c10::ivalue::Tuple::create(stack))};
    } else if (k == prim::TupleUnpack) {
      outputs = stack.at(0).toTupleRef().elements().vec();
    } else if (k == prim::ListUnpack) {
      outputs = stack.at(0).toListRef().vec();
      const Slot& list = env.at(n->input(0));
      for (size_t i = 0; i < n->outputs().size(); ++i) {
        const model::ValueId id = i < list.list_ids.size() ? list.list_ids[i] : model::kNoValue;
        env[n->outputs()[i]] = {outputs.at(i), id, {}};
      }
      return;
    } else if (k == prim::unchecked_cast) {
      outputs = {stack.at(0)};
    } else {
      auto op = n->getOperation();
      op(stack);
      outputs = std::move(stack);
    }
    for (size_t i = 0; i < n->outputs().size(); ++i) env[n->outputs()[i]] = {outputs.at(i), model::kNoValue, {}};
    if (is_chunk(n)) return record_chunks(n, env, scope, layer);
    if (n->outputs().size() == 1 && outputs.at(0).isTensor()) record(n, env, scope, layer);
    if (tracked(n, env) && has_untracked_tensor_output(n, env)) fail(unsupported(n, scope, layer));
  }

  // In a scripted FX GraphModule (a converted int8 model) the root forward's variables are the FX
  // graph's node names, the names FX users know their layers by: "add_relu", "mul_3". Traced
  // graphs (QAT) carry no such names; their layers adopt the int8 ones (model::adopt_layer_names).
  std::string fx_node_name(const Node* n, const std::string& scope) const {
    if (!fx_ || qat_ || !scope.empty() || n->outputs().size() != 1) return {};
    if (!n->output()->hasDebugName()) return assigned_name(n);
    std::string name = n->output()->debugName();
    const auto dot = name.rfind('.');
    if (dot != std::string::npos && name.find_first_not_of("0123456789", dot + 1) == std::string::npos) name.resize(dot);
    if (name.find_first_not_of("0123456789_") != std::string::npos) return name;
    return assigned_name(n);
  }

  // A value returned at once loses its debug name (`return torch.dequantize(fc20)`), but the FX
  // code the graph was scripted from still reads `dequantize_27 = fc2.dequantize(); ...`.
  static std::string assigned_name(const Node* n) {
    // A saved model's ranges point into its serialized code; the FX code is the range it came from.
    const auto original = n->sourceRange().findSourceRangeThatGenerated();
    const torch::jit::SourceRange range = original ? *original : n->sourceRange();
    const auto& source = range.source();
    if (!source) return {};
    std::string line = source->get_line(source->lineno_for_offset(range.start())).str();
    line.erase(0, line.find_first_not_of(" \t"));
    const auto eq = line.find(" = ");
    if (eq == std::string::npos || eq == 0) return {};
    line.resize(eq);
    const bool identifier = line.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                                std::string::npos &&
                            std::isdigit(static_cast<unsigned char>(line[0])) == 0;
    return identifier ? line : std::string();
  }

  // cat's tensor list as the node's inputs (untracked tensors as constants); returns its dim.
  int64_t list_inputs(const Node* n, const Env& env, const at::Tensor& result, model::Node& node) {
    const Slot& list = env.at(n->input(0));
    const auto tensors = list.value.toTensorVector();
    for (size_t i = 0; i < tensors.size(); ++i) {
      node.inputs.push_back(list.list_ids.at(i) != model::kNoValue ? list.list_ids[i] : constant(tensors[i]));
    }
    const int64_t dim = env.at(n->input(1)).value.toInt();
    return dim < 0 ? dim + result.dim() : dim;
  }

  static bool is_chunk(const Node* n) {
    const std::string op = n->kind().toQualString();
    return op == "aten::chunk" || op == "aten::split" || op == "aten::unsafe_chunk" || op == "prim::ConstantChunk";
  }

  // A tracked op must not produce a tensor the IR cannot follow (it would enter as a constant).
  static bool has_untracked_tensor_output(const Node* n, const Env& env) {
    for (const Value* v : n->outputs()) {
      const Slot& s = env.at(v);
      if (s.value.isTensor() && s.id == model::kNoValue) return true;
      if (s.value.isTensorList() && s.list_ids.empty()) return true;
    }
    return false;
  }

  // chunk / split: one kSlice node per piece, in order; a list output keeps their ids.
  void record_chunks(const Node* n, Env& env, const std::string& scope, const std::string& layer) {
    if (!tracked(n, env)) return;
    const at::Tensor x = env.at(n->input(0)).value.toTensor();
    int64_t dim = n->kind() == prim::ConstantChunk ? n->i(c10::attr::dim) : env.at(n->input(2)).value.toInt();
    if (dim < 0) dim += x.dim();
    std::vector<at::Tensor> pieces;
    const bool list = n->outputs().size() == 1 && env.at(n->output()).value.isTensorList();
    if (list) {
      pieces = env.at(n->output()).value.toTensorVector();
    } else {
      for (const Value* v : n->outputs()) pieces.push_back(env.at(v).value.toTensor());
    }
    std::vector<model::ValueId> ids;
    int64_t start = 0;
    const model::ValueId source = id_of(n->input(0), env);
    for (const at::Tensor& piece : pieces) {
      model::Node node;
      node.source_op = n->kind().toQualString();
      node.layer = layer;
      node.op = model::OpKind::kSlice;
      node.inputs = {source};
      node.params = model::SliceParams{dim, start, start + piece.size(dim)};
      start += piece.size(dim);
      node.output = new_value(dims_of(piece), piece.is_quantized() ? model::ValueType::kQUInt8 : model::ValueType::kFloat,
                              to_run_tensor(piece));
      graph_->values[static_cast<size_t>(node.output)].channels_last = stored_channels_last(piece);
      ids.push_back(node.output);
      node_scopes_.push_back(scope);
      graph_->nodes.push_back(std::move(node));
    }
    if (list) {
      env.at(n->output()).list_ids = ids;
    } else {
      for (size_t i = 0; i < ids.size(); ++i) env.at(n->outputs()[i]).id = ids[i];
    }
  }

  bool tracked(const Node* n, const Env& env) const {
    for (const Value* v : n->inputs()) {
      const Slot& s = env.at(v);
      if (s.id != model::kNoValue) return true;
      for (const auto id : s.list_ids) if (id != model::kNoValue) return true;
    }
    return false;
  }

  model::ValueId id_of(const Value* v, const Env& env) {
    const Slot& s = env.at(v);
    if (s.id != model::kNoValue) return s.id;
    return constant(s.value.toTensor());
  }

  void record(const Node* n, Env& env, const std::string& scope, const std::string& layer) {
    if (!tracked(n, env)) return;  // computed from parameters and constants only: libtorch's value stands
    model::Node node;
    node.source_op = n->kind().toQualString();
    node.layer = layer.empty() ? fx_node_name(n, scope) : layer;
    const auto in = [&](size_t i) { return env.at(n->input(i)).value; };
    const at::Tensor result = env.at(n->output()).value.toTensor();
    const std::string op = n->kind().toUnqualString();
    const std::string ns = n->kind().ns().toUnqualString();
    auto inputs = [&](std::initializer_list<size_t> which) {
      for (const size_t i : which) {
        if (n->inputs().size() > i && !in(i).isNone()) node.inputs.push_back(id_of(n->input(i), env));
      }
    };
    if (ns == "aten" && (op == "add" || op == "sub" || op == "mul" || op == "div" || op == "add_" || op == "mul_")) {
      const std::string base = op.substr(0, 3);
      node.op = base == "add" ? model::OpKind::kAdd : base == "sub" ? model::OpKind::kSub
                : base == "mul" ? model::OpKind::kMul : model::OpKind::kDiv;
      model::BinaryParams p;
      if (n->inputs().size() > 2 && in(2).isScalar()) p.alpha = in(2).toScalar().toDouble();
      const c10::IValue b = in(1);
      node.inputs.push_back(id_of(n->input(0), env));
      if (b.isScalar()) {
        p.scalar = b.toScalar().toDouble();
      } else if (env.at(n->input(1)).id == model::kNoValue && b.toTensor().dim() == 0) {
        p.scalar = b.toTensor().item<double>();  // a 0-dim constant acts as a scalar in ATen
      } else {
        node.inputs.push_back(id_of(n->input(1), env));
      }
      if (n->inputs().size() > 3 || (n->inputs().size() == 3 && !in(2).isScalar())) fail(unsupported(n, scope, layer));
      node.params = p;
    } else if (ns == "aten" && op == "sqrt") {
      node.op = model::OpKind::kSqrt;
      inputs({0});
    } else if (ns == "aten" && op == "zeros_like") {
      node.op = model::OpKind::kZerosLike;
      inputs({0});
    } else if (ns == "aten" && (op == "_convolution" || op == "conv2d")) {
      node.op = model::OpKind::kConv2d;
      if (op == "_convolution" && in(6).toBool()) fail(unsupported(n, scope, layer) + " (transposed)");
      const auto stride = int_list(in(3));
      const auto padding = int_list(in(4));
      const auto dilation = int_list(in(5));
      const int64_t groups = op == "conv2d" ? in(6).toInt() : in(8).toInt();
      if (stride.size() != 2 || padding.size() != 2 || dilation.size() != 2) fail(unsupported(n, scope, layer) + " (not 2-d)");
      node.params = model::ConvParams{{stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], groups}};
      inputs({0, 1, 2});
    } else if (ns == "aten" && op == "linear") {
      node.op = model::OpKind::kLinear;
      inputs({0, 1, 2});
    } else if (ns == "aten" && op == "batch_norm") {
      node.op = model::OpKind::kBatchNorm;
      if (in(1).isNone() || in(2).isNone() || in(3).isNone() || in(4).isNone()) fail(unsupported(n, scope, layer) + " (without affine or running stats)");
      node.params = model::BatchNormParams{in(7).toDouble(), in(5).toBool()};
      inputs({0, 1, 2, 3, 4});
    } else if (ns == "aten" && (op == "relu" || op == "relu_")) {
      node.op = model::OpKind::kRelu;
      inputs({0});
    } else if (ns == "aten" && (op == "hardtanh" || op == "hardtanh_")) {
      node.op = model::OpKind::kHardtanh;
      node.params = model::ClampParams{in(1).toScalar().toDouble(), in(2).toScalar().toDouble()};
      inputs({0});
    } else if ((ns == "aten" || ns == "quantized") && (op == "relu6" || op == "relu6_")) {
      node.op = model::OpKind::kHardtanh;
      node.params = model::ClampParams{0.0, 6.0};
      inputs({0});
    } else if (ns == "aten" && (op == "hardswish" || op == "hardswish_")) {
      node.op = model::OpKind::kHardswish;
      inputs({0});
    } else if (ns == "aten" && (op == "hardsigmoid" || op == "hardsigmoid_")) {
      node.op = model::OpKind::kHardsigmoid;
      inputs({0});
    } else if (ns == "aten" && (op == "sigmoid" || op == "sigmoid_")) {
      node.op = model::OpKind::kSigmoid;
      inputs({0});
    } else if (ns == "quantized" && op == "hardswish") {
      node.op = model::OpKind::kQHardswish;
      node.params = model::QuantizeParams{{result.q_scale(), result.q_zero_point()}};
      inputs({0});
    } else if (ns == "quantized" && (op == "mul" || op == "mul_relu") && in(1).isTensor()) {
      node.op = model::OpKind::kQMul;
      node.params = model::QBinaryParams{{result.q_scale(), result.q_zero_point()}, op == "mul_relu"};
      inputs({0, 1});
    } else if (ns == "quantized" && ((op == "add_scalar" || op == "add_scalar_relu" || op == "mul_scalar" ||
                                      op == "mul_scalar_relu") ||
                                     ((op == "add" || op == "add_relu" || op == "mul" || op == "mul_relu") &&
                                      in(1).isScalar()))) {
      // quantized::add(Tensor, Scalar) (FX) is add_scalar.
      node.op = op.rfind("add", 0) == 0 ? model::OpKind::kQAddScalar : model::OpKind::kQMulScalar;
      node.params = model::QScalarParams{in(1).toScalar().toDouble(), op.find("relu") != std::string::npos};
      inputs({0});
    } else if (ns == "quantized" && (op == "cat" || op == "cat_relu")) {
      node.op = model::OpKind::kQCat;
      const int64_t dim = list_inputs(n, env, result, node);
      node.params = model::QCatParams{dim, {result.q_scale(), result.q_zero_point()}, op == "cat_relu"};
    } else if (ns == "aten" && op == "max_pool2d") {
      node.op = model::OpKind::kMaxPool2d;
      node.params = pool_params(int_list(in(1)), int_list(in(2)), int_list(in(3)), int_list(in(4)), in(5).toBool());
      inputs({0});
    } else if (ns == "aten" && op == "avg_pool2d") {
      node.op = model::OpKind::kAvgPool2d;
      model::Pool2dParams p = pool_params(int_list(in(1)), int_list(in(2)), int_list(in(3)), {1, 1}, in(4).toBool());
      p.count_include_pad = in(5).toBool();
      if (!in(6).isNone()) p.divisor_override = in(6).toInt();
      node.params = p;
      inputs({0});
    } else if (ns == "aten" && op == "adaptive_avg_pool2d") {
      node.op = model::OpKind::kAdaptiveAvgPool2d;
      node.params = model::AdaptivePoolParams{result.size(-2), result.size(-1)};
      inputs({0});
    } else if (ns == "aten" && (op == "transpose" || op == "permute")) {
      node.op = model::OpKind::kPermute;
      model::Dims perm(static_cast<size_t>(result.dim()));
      for (size_t d = 0; d < perm.size(); ++d) perm[d] = static_cast<int64_t>(d);
      const auto wrap = [&](int64_t d) { return d < 0 ? d + result.dim() : d; };
      if (op == "transpose") {
        std::swap(perm.at(static_cast<size_t>(wrap(in(1).toInt()))), perm.at(static_cast<size_t>(wrap(in(2).toInt()))));
      } else {
        const auto given = int_list(in(1));
        for (size_t d = 0; d < given.size(); ++d) perm.at(d) = wrap(given[d]);
      }
      node.params = model::PermuteParams{perm};
      inputs({0});
    } else if (ns == "aten" && op == "mean") {
      node.op = model::OpKind::kMean;
      if (n->inputs().size() < 3 || in(1).isNone() || (n->inputs().size() > 3 && !in(3).isNone())) {
        fail(unsupported(n, scope, layer) + " (mean over all dims or with a dtype)");
      }
      model::MeanParams p;
      p.written = int_list(in(1));
      for (int64_t d : p.written) p.dims.push_back(d < 0 ? d + in(0).toTensor().dim() : d);
      std::sort(p.dims.begin(), p.dims.end());
      p.keepdim = in(2).toBool();
      node.params = p;
      inputs({0});
    } else if (ns == "aten" && (op == "flatten" || op == "reshape" || op == "view")) {
      node.op = model::OpKind::kReshape;
      node.params = model::ReshapeParams{dims_of(result)};
      inputs({0});
    } else if (ns == "aten" && (op == "dropout" || op == "dropout_" || op == "contiguous" || op == "clone")) {
      if ((op == "dropout" || op == "dropout_") && in(2).toBool()) fail(unsupported(n, scope, layer) + " (dropout in training mode)");
      node.op = model::OpKind::kIdentity;
      inputs({0});
    } else if (ns == "aten" && op == "cat") {
      node.op = model::OpKind::kCat;
      const int64_t dim = list_inputs(n, env, result, node);
      node.params = model::CatParams{dim};
    } else if (ns == "aten" && op == "quantize_per_tensor") {
      if (result.scalar_type() != at::kQUInt8) fail(unsupported(n, scope, layer) + " (only quint8 activations)");
      node.op = model::OpKind::kQuantize;
      node.params = model::QuantizeParams{{result.q_scale(), result.q_zero_point()}};
      inputs({0});
    } else if (ns == "aten" && op == "dequantize") {
      node.op = model::OpKind::kDequantize;
      inputs({0});
    } else if (ns == "quantized" && (op == "conv2d" || op == "conv2d_relu")) {
      node.op = model::OpKind::kQConv2d;
      node.params = conv_params(in(1), result, op == "conv2d_relu");
      inputs({0});
    } else if (ns == "quantized" && (op == "linear" || op == "linear_relu")) {
      node.op = model::OpKind::kQLinear;
      node.params = linear_params(in(1), result, op == "linear_relu");
      inputs({0});
    } else if (ns == "quantized" && (op == "add" || op == "add_relu")) {
      if (!in(1).isTensor()) fail(unsupported(n, scope, layer));
      node.op = model::OpKind::kQAdd;
      node.params = model::QBinaryParams{{result.q_scale(), result.q_zero_point()}, op == "add_relu"};
      inputs({0, 1});
    } else {
      fail(unsupported(n, scope, layer));
    }
    node.output = new_value(dims_of(result), result.is_quantized() ? model::ValueType::kQUInt8 : model::ValueType::kFloat,
                            to_run_tensor(result));
    graph_->values[static_cast<size_t>(node.output)].channels_last = stored_channels_last(result);
    env.at(n->output()).id = node.output;
    node_scopes_.push_back(scope);
    graph_->nodes.push_back(std::move(node));
  }

  std::string unsupported(const Node* n, const std::string& scope, const std::string& layer) const {
    return file_ + ": unsupported op " + std::string(n->kind().toQualString()) + " in '" +
           (layer.empty() ? (scope.empty() ? std::string("forward") : scope) : layer) + "'";
  }

  static model::Pool2dParams pool_params(const std::vector<int64_t>& kernel, std::vector<int64_t> stride,
                                         const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation,
                                         bool ceil_mode) {
    auto two = [](const std::vector<int64_t>& v, int64_t fallback) {
      if (v.empty()) return std::pair<int64_t, int64_t>{fallback, fallback};
      return v.size() == 1 ? std::pair<int64_t, int64_t>{v[0], v[0]} : std::pair<int64_t, int64_t>{v[0], v[1]};
    };
    const auto [kh, kw] = two(kernel, 1);
    if (stride.empty()) stride = kernel;  // ATen: an empty stride means the kernel size
    const auto [sh, sw] = two(stride, 1);
    const auto [ph, pw] = two(padding, 0);
    const auto [dh, dw] = two(dilation, 1);
    model::Pool2dParams p;
    p.window = {kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode};
    return p;
  }

  static model::QuantizedWeight quantized_weight(const at::Tensor& w, const c10::optional<at::Tensor>& bias) {
    model::QuantizedWeight q;
    q.dims = dims_of(w);
    if (w.scalar_type() != at::kQInt8) fail("only qint8 weights are supported");
    const at::Tensor r = w.int_repr().contiguous();
    q.data.assign(r.data_ptr<int8_t>(), r.data_ptr<int8_t>() + r.numel());
    if (w.qscheme() == at::kPerTensorAffine || w.qscheme() == at::kPerTensorSymmetric) {
      q.scales = {w.q_scale()};
      q.zero_points = {w.q_zero_point()};
    } else {
      if (w.q_per_channel_axis() != 0) fail("per-channel weights must be quantized along axis 0");
      q.per_channel = true;
      const at::Tensor s = w.q_per_channel_scales().to(at::kDouble).contiguous();
      const at::Tensor z = w.q_per_channel_zero_points().to(at::kLong).contiguous();
      q.scales.assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
      q.zero_points.assign(z.data_ptr<int64_t>(), z.data_ptr<int64_t>() + z.numel());
    }
    if (bias && bias->defined()) q.bias = float_data(*bias);
    return q;
  }

  static model::QConvParams conv_params(const c10::IValue& packed, const at::Tensor& result, bool relu) {
    const auto params = packed.toCustomClass<ConvPackedParamsBase<2>>();
    auto [w, bias] = params->unpack();
    const auto stride = params->stride().vec();
    const auto padding = params->padding().vec();
    const auto dilation = params->dilation().vec();
    if (params->transpose()) fail("transposed quantized convolutions are not supported");
    model::QConvParams p;
    p.weight = quantized_weight(w, bias);
    p.geometry = {stride.at(0), stride.at(1), padding.at(0), padding.at(1), dilation.at(0), dilation.at(1),
                  params->groups()};
    p.output = {.scale = result.q_scale(), .zero_point = result.q_zero_point()};
    p.relu = relu;
    return p;
  }

  static model::QConvParams linear_params(const c10::IValue& packed, const at::Tensor& result, bool relu) {
    const auto params = packed.toCustomClass<LinearPackedParamsBase>();
    auto [w, bias] = params->unpack();
    model::QConvParams p;
    p.weight = quantized_weight(w, bias);
    p.output = {.scale = result.q_scale(), .zero_point = result.q_zero_point()};
    p.relu = relu;
    return p;
  }

  // A fake-quant module: read its state into a FakeQuantPoint, record the node, run it for real.
  Slot fake_quant(const c10::intrusive_ptr<c10::ivalue::Object>& obj, const std::string& path,
                  const std::string& type, const Slot& x) {
    const bool fixed = contains(type, "FixedQParamsFakeQuantize");
    if (!contains(type, "FusedMovingAvgObsFakeQuantize") && !fixed) {
      fail(file_ + ": fake-quant module '" + path + "' is a " + type +
           "; qparity supports FusedMovingAvgObsFakeQuantize (the 1.13 default QAT qconfigs) and "
           "FixedQParamsFakeQuantize");
    }
    if (!qat_) fail(file_ + ": fake-quant module '" + path + "' in the int8 model (pass the QAT model first)");
    torch::jit::Module module(obj);
    model::FakeQuantPoint p = fixed ? read_fixed_fake_quant(module, path) : read_fake_quant(module, path);
    const model::ValueId in_id = x.id != model::kNoValue ? x.id : constant(x.value.toTensor());
    const at::Tensor result = module.forward({x.value}).toTensor();
    model::Node node;
    node.source_op = fixed ? "aten::fake_quantize_per_tensor_affine" : "aten::fused_moving_avg_obs_fake_quant";
    node.op = model::OpKind::kFakeQuant;
    node.inputs = {in_id};
    node.params = model::FakeQuantParams{static_cast<int32_t>(graph_->fake_quants.size())};
    graph_->fake_quants.push_back(std::move(p));
    // "conv1.activation_post_process" belongs to layer conv1, "conv1.weight_fake_quant" too.
    const auto dot = path.rfind('.');
    node.layer = dot == std::string::npos ? path : path.substr(0, dot);
    node.output = new_value(dims_of(result), model::ValueType::kFloat, to_run_tensor(result));
    node_scopes_.push_back(path);
    fake_quant_inputs_.push_back({graph_->nodes.size(), in_id});
    graph_->nodes.push_back(std::move(node));
    return {result, graph_->nodes.back().output, {}};
  }

  // The op a fake-quant module's forward calls, with its constant arguments.
  const Node* find_op(const std::shared_ptr<torch::jit::Graph>& graph, const char* op, const std::string& path) {
    const Node* found = nullptr;
    for (const Node* n : graph->nodes()) {
      if (n->kind() == c10::Symbol::fromQualString(op)) found = n;
    }
    if (found == nullptr) fail(file_ + ": fake-quant module '" + path + "' has no " + op + " op");
    return found;
  }

  c10::IValue constant_argument(const Node* n, size_t i, const std::string& path) {
    const auto v = torch::jit::toIValue(n->input(i));
    if (!v) fail(file_ + ": fake-quant module '" + path + "': argument " + std::to_string(i) + " is not a constant");
    return *v;
  }

  // FixedQParamsFakeQuantize (sigmoid / hardsigmoid outputs): fixed buffers, nothing observes.
  model::FakeQuantPoint read_fixed_fake_quant(torch::jit::Module& module, const std::string& path) {
    model::FakeQuantPoint p;
    p.module = path;
    p.kind = FakeQuantModuleKind::kFixedQParamsFakeQuantize;
    const auto graph = module.get_method("forward").graph()->copy();
    torch::jit::Inline(*graph);
    const Node* op = find_op(graph, "aten::fake_quantize_per_tensor_affine", path);
    p.spec.quant_min = constant_argument(op, 3, path).toInt();
    p.spec.quant_max = constant_argument(op, 4, path).toInt();
    p.spec.qscheme = QScheme::kPerTensorAffine;
    p.spec.dtype = p.spec.quant_min < 0 ? QDType::kQInt8 : QDType::kQUInt8;
    p.spec.custom_range = true;
    p.scale = float_data(module.attr("scale").toTensor());
    for (const float z : float_data(module.attr("zero_point").toTensor())) p.zero_point.push_back(static_cast<int64_t>(z));
    p.min_val = {0.0f};  // no running range: one entry for the one per-tensor channel
    p.max_val = {0.0f};
    p.observer_enabled = false;
    p.fake_quant_enabled = module.attr("fake_quant_enabled").toTensor().item<int64_t>() != 0;
    return p;
  }

  model::FakeQuantPoint read_fake_quant(torch::jit::Module& module, const std::string& path) {
    model::FakeQuantPoint p;
    p.module = path;
    const auto graph = module.get_method("forward").graph()->copy();
    torch::jit::Inline(*graph);
    const Node* fused = nullptr;
    for (const Node* n : graph->nodes()) {
      if (n->kind() == c10::Symbol::fromQualString("aten::fused_moving_avg_obs_fake_quant")) fused = n;
    }
    if (fused == nullptr) fail(file_ + ": fake-quant module '" + path + "' has no fused_moving_avg_obs_fake_quant op");
    auto constant_input = [&](size_t i) {
      const auto v = torch::jit::toIValue(fused->input(i));
      if (!v) fail(file_ + ": fake-quant module '" + path + "': argument " + std::to_string(i) + " is not a constant");
      return *v;
    };
    p.averaging_constant = static_cast<float>(constant_input(7).toDouble());
    p.spec.quant_min = constant_input(8).toInt();
    p.spec.quant_max = constant_input(9).toInt();
    p.axis = constant_input(10).toInt();
    p.per_channel = constant_input(11).toBool();
    const bool symmetric = constant_input(12).toBool();
    p.spec.qscheme = p.per_channel ? (symmetric ? QScheme::kPerChannelSymmetric : QScheme::kPerChannelAffine)
                                   : (symmetric ? QScheme::kPerTensorSymmetric : QScheme::kPerTensorAffine);
    p.spec.dtype = p.spec.quant_min < 0 ? QDType::kQInt8 : QDType::kQUInt8;
    p.spec.custom_range = true;
    const auto observer = module.attr("activation_post_process").toModule();
    p.min_val = float_data(observer.attr("min_val").toTensor());
    p.max_val = float_data(observer.attr("max_val").toTensor());
    p.scale = float_data(module.attr("scale").toTensor());
    for (const float z : float_data(module.attr("zero_point").toTensor())) p.zero_point.push_back(static_cast<int64_t>(z));
    p.observer_enabled = module.attr("observer_enabled").toTensor().item<int64_t>() != 0;
    p.fake_quant_enabled = module.attr("fake_quant_enabled").toTensor().item<int64_t>() != 0;
    if (p.min_val.empty()) {  // an observer that never ran: +inf / -inf, one entry per channel later
      p.min_val = {INFINITY};
      p.max_val = {-INFINITY};
    }
    return p;
  }

  // Layer names. Ops in the user's own forward code (outside any torch.nn module) first join
  // the layer of the fake-quant that observes them (FloatFunctional's add in a QAT model runs in
  // the caller's code, its observer is "skip_add.activation_post_process"); the rest are named
  // "<scope>.<op>", numbered per scope in order, identically in both models.
  void name_layers() {
    std::unordered_map<model::ValueId, size_t> producer;
    for (size_t i = 0; i < graph_->nodes.size(); ++i) producer[graph_->nodes[i].output] = i;
    // Only the functional's own ops join: add / mul / cat, and the relu of add_relu before them.
    const auto functional_op = [](model::OpKind op) {
      return op == model::OpKind::kAdd || op == model::OpKind::kMul || op == model::OpKind::kCat;
    };
    for (const auto& [fq, input] : fake_quant_inputs_) {
      if (fx_) break;  // FX models have no FloatFunctional; their fake-quants are folded below
      model::ValueId v = input;
      while (producer.count(v) != 0) {
        model::Node& p = graph_->nodes[producer[v]];
        const bool joins = p.op == model::OpKind::kRelu || functional_op(p.op);
        if (!p.layer.empty() || p.inputs.empty() || !joins) break;
        p.layer = graph_->nodes[fq].layer;
        if (functional_op(p.op)) break;
        v = p.inputs.front();
      }
    }
    // Module names stay theirs: a functional F.relu6 next to a module named relu6 becomes relu6_1.
    std::unordered_set<std::string> taken;
    for (const model::Node& node : graph_->nodes) taken.insert(node.layer);
    std::unordered_map<std::string, int> count;
    for (size_t i = 0; i < graph_->nodes.size(); ++i) {
      model::Node& node = graph_->nodes[i];
      if (!node.layer.empty()) continue;
      std::string op = node.source_op.substr(node.source_op.find("::") + 2);
      if (!op.empty() && op.back() == '_') op.pop_back();
      const std::string& scope = node_scopes_[i];
      const std::string base = scope.empty() ? op : scope + "." + op;
      do {
        const int k = count[base]++;
        node.layer = k == 0 ? base : base + "_" + std::to_string(k);
      } while (taken.count(node.layer) != 0);
      taken.insert(node.layer);
    }
    // FX inserts its fake-quants as top-level modules (activation_post_process_3, called again as
    // forward1, forward2 ... where ops share qparams): each belongs to the layer whose output it
    // observes, as in eager mode.
    for (size_t i = 0; i < graph_->nodes.size(); ++i) {
      model::Node& node = graph_->nodes[i];
      if (node.op != model::OpKind::kFakeQuant || !fx_) continue;
      const auto& point = graph_->fake_quants[static_cast<size_t>(std::get<model::FakeQuantParams>(node.params).point)];
      if (point.module.find('.') != std::string::npos) continue;
      const auto p = producer.find(node.inputs.front());
      if (p != producer.end()) node.layer = graph_->nodes[p->second].layer;
    }
  }

  bool qat_;
  bool fx_ = false;  // the model is a (traced or scripted) FX GraphModule
  std::string file_;
  model::Graph* graph_ = nullptr;
  std::vector<std::optional<run::Tensor>>* reference_ = nullptr;
  std::unordered_map<const Value*, std::string> paths_;
  std::vector<std::string> node_scopes_;
  std::vector<std::pair<size_t, model::ValueId>> fake_quant_inputs_;
};

at::QEngine engine_of(const std::string& engine) {
  if (engine == "qnnpack") return at::QEngine::QNNPACK;
  if (engine == "onednn") return at::QEngine::ONEDNN;
  if (engine == "fbgemm") return at::QEngine::FBGEMM;
  fail("unknown engine '" + engine + "'");
}

torch::jit::Module load_module(const std::string& file) {
  try {
    const LoadCrashGuard guard(file, "torch.jit.save");
    return torch::jit::load(file);
  } catch (const std::exception& e) {
    fail(file + ": not a TorchScript model saved by torch.jit.save (" + torch_error_line(e.what()) + ")");
  }
}

at::Tensor to_at(const run::Tensor& t) {
  return at::from_blob(const_cast<float*>(t.values.data()), t.dims, at::kFloat).clone();
}

LoadedPath load(const std::string& file, const run::Tensor& input, const LoadOptions& options, bool qat) {
  at::globalContext().setQEngine(engine_of(options.engine));  // before load: int8 weights re-pack at load
  at::set_num_threads(options.torch_threads);
  torch::NoGradGuard no_grad;
  torch::jit::Module module = load_module(file);
  bool has_fake_quant = false;
  bool has_packed = false;
  for (const auto& m : module.named_modules()) {
    const std::string t = type_name(m.value._ivalue());
    has_fake_quant = has_fake_quant || contains(t, "FakeQuantize");
    has_packed = has_packed || contains(t, "quantized.modules") || contains(t, "intrinsic.quantized");
  }
  if (qat && !has_fake_quant) fail(file + ": not a QAT model (it has no fake-quant modules; is it the int8 model?)");
  if (!qat && has_fake_quant) fail(file + ": not an int8 model (it has fake-quant modules; is it the QAT model?)");
  const at::Tensor x = to_at(input);
  // The real forward first, on a fresh copy, so observers that move do so exactly once in each run.
  torch::jit::Module fresh = load_module(file);
  LoadedPath path;
  try {
    path.output = to_run_tensor(fresh.forward({x}).toTensor());
    Walker walker(qat, file);
    LoadedPath walked = walker.walk(module, input, x);
    walked.output = std::move(path.output);
    return walked;
  } catch (const c10::Error& e) {
    fail(file + ": libtorch refused to run the model on this input: " + torch_error_line(e.what_without_backtrace()));
  } catch (const std::invalid_argument&) {
    throw;  // the walker's own errors name the layer
  } catch (const std::exception& e) {
    // The TorchScript interpreter rethrows an op's error as std::runtime_error with a traceback
    // (fuzz torch_qat: a corrupt observer state; "value cannot be converted to type int"): its
    // last line, without the file, so the caller says which file and input failed.
    throw std::runtime_error(torch_error_line(e.what()));
  }
  (void)has_packed;
}

}  // namespace

LoadedPath load_qat_model(const std::string& file, const run::Tensor& input, const LoadOptions& options) {
  return load(file, input, options, true);
}

LoadedPath load_int8_model(const std::string& file, const run::Tensor& input, const LoadOptions& options) {
  return load(file, input, options, false);
}

bool engine_available(const std::string& engine) {
  const auto engines = at::globalContext().supportedQEngines();
  try {
    const at::QEngine e = engine_of(engine);
    return std::find(engines.begin(), engines.end(), e) != engines.end();
  } catch (const std::invalid_argument&) {
    return false;
  }
}

}  // namespace qparity::torchfe
