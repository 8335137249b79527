// Op-level parity: qparity's model executor (run::run_graph) against ATen itself (Debian's
// libtorch 1.13.1), for every quantized op the executor implements and the float activations
// whose rounding depends on ATen's loop split. Each case builds the one-op graph the TorchScript
// frontend would build (same OpKind, params, ValueInfo.channels_last read from the real tensors
// exactly as frontends/torch/torchscript_frontend.cpp does) and compares bins (logical NCHW
// order), scale and zero point exactly, or float outputs bit for bit. A case ATen refuses must be
// refused by the executor too, and the other way round.
//
// Inputs are edge-biased (docs/research/scripts/emu_ops.py edge_qparams / edge_u8): power-of-two
// scales (exact .5 ties), 1/255-like and random scales, zero points 0/255/128/127/1/254/random,
// bins heavy at 0 and 255; sizes with odd tails up to 71 407 elements, several above ATen's
// 32 768-element grain so that 2 threads split them. Every case runs on both engines
// (qnnpack, onednn), with 1 and 2 PyTorch threads; layouts NCHW and channels-last (and mixed
// for binary ops). The seed is fixed.
//
// Quantized operands reach the op through the executor itself: the graph's input is one flat
// float tensor; each operand is slice -> reshape -> quantize on its grid (the float values are
// (bin - zp) * scale, which quantize back to the bin exactly; the harness checks that), and the
// quantize output carries the operand's memory layout.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "qparity/model/graph.h"
#include "qparity/profile/backend_profile.h"
#include "qparity/run/executor.h"
#include "qparity/run/tensor.h"
#include "torchscript_frontend.h"

namespace {

namespace model = qparity::model;
namespace run = qparity::run;
using model::Dims;
using model::OpKind;
using model::ValueId;
using model::ValueType;

// ---------------------------------------------------------------------------------------------
// Engines, threads

struct Engine {
  std::string name;
  at::QEngine qengine;
  qparity::BackendProfile profile;
};

const std::vector<Engine>& engines() {
  static const std::vector<Engine> all = [] {
    std::vector<Engine> r;
    const qparity::CpuFeatures cpu = qparity::detect_cpu_features();
    const auto& supported = at::globalContext().supportedQEngines();
    const auto add = [&](const char* name, at::QEngine q) {
      if (std::find(supported.begin(), supported.end(), q) == supported.end()) return;
      r.push_back({name, q, *qparity::make_backend_profile(name, cpu)});
    };
    add("qnnpack", at::QEngine::QNNPACK);
    add("onednn", at::QEngine::ONEDNN);
    return r;
  }();
  return all;
}

constexpr int kThreadCounts[] = {1, 2};

struct Config {
  const Engine* engine = nullptr;  // nullptr: float op, engine irrelevant
  int threads = 1;
};

run::FloatKernels* torch_kernels(int threads) {
  static std::map<int, std::unique_ptr<run::FloatKernels>> kernels;
  auto& k = kernels[threads];
  if (!k) k = qparity::torchfe::make_torch_float_kernels(threads);
  return k.get();
}

// at::set_num_threads recreates the pthreadpool QNNPACK uses (its new workers spin) and clears
// the mkldnn computation cache, so it is called only when the count changes.
void apply(const Config& c) {
  if (c.engine != nullptr) at::globalContext().setQEngine(c.engine->qengine);
  static int current = -1;
  if (current != c.threads) {
    at::set_num_threads(c.threads);
    current = c.threads;
  }
}

// ---------------------------------------------------------------------------------------------
// Random, edge-biased inputs

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  int64_t integer(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(g_);
  }
  double uniform(double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(g_);
  }
  bool chance(double p) { return uniform(0.0, 1.0) < p; }
  template <typename T>
  T pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(integer(0, static_cast<int64_t>(v.size()) - 1))];
  }

 private:
  std::mt19937_64 g_;
};

struct QParams {
  double scale = 1.0;  // a float32 value held in a double, as q_scale() returns it
  int64_t zero_point = 0;
};

QParams edge_qparams(Rng& rng) {
  const int64_t k = rng.integer(0, 3);
  float s = 0.0f;
  if (k == 0) {
    s = std::ldexp(1.0f, static_cast<int>(rng.integer(-10, 1)));
  } else if (k == 1) {
    s = static_cast<float>(rng.uniform(0.5, 8.0) / 255.0);
  } else {
    s = static_cast<float>(std::pow(10.0, rng.uniform(-3.5, 0.5)));
  }
  const std::vector<int64_t> zps{
      0, 255, 128, 127, 1, 254, rng.integer(0, 255), rng.integer(0, 255)};
  return {static_cast<double>(s), rng.pick(zps)};
}

std::vector<uint8_t> edge_u8(Rng& rng, int64_t n) {
  std::vector<uint8_t> x(static_cast<size_t>(n));
  for (auto& v : x) {
    const double r = rng.uniform(0.0, 1.0);
    v = r < 0.08 ? 0 : r < 0.16 ? 255 : static_cast<uint8_t>(rng.integer(0, 255));
  }
  return x;
}

// Floats around the activations' kinks (±3, 0, 6), sigmoid's expf range limits, exact binary
// fractions and wide random values.
std::vector<float> edge_floats(Rng& rng, int64_t n) {
  static const std::vector<float> specials{
      0.0f,   -0.0f, 3.0f,   -3.0f,  6.0f,    -6.0f,  2.5f,    -2.5f,  1.0f,
      -1.0f,  88.7f, -88.7f, 100.0f, -100.0f, 104.0f, -104.0f, 1e-30f, -1e-30f,
      1e-45f, 0.5f,  -0.5f,  17.0f,  -17.0f,  1e30f,  -1e30f};
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) {
    const double r = rng.uniform(0.0, 1.0);
    if (r < 0.1) {
      v = rng.pick(specials);
    } else if (r < 0.4) {
      v = static_cast<float>(rng.uniform(-8.0, 8.0));
    } else if (r < 0.6) {
      v = static_cast<float>(rng.integer(-512, 512)) / 64.0f;
    } else if (r < 0.8) {
      v = static_cast<float>(rng.uniform(-20.0, 20.0));
    } else {
      v = static_cast<float>(rng.uniform(-120.0, 120.0));
    }
  }
  return x;
}

std::string fmt_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g (%a)", v, v);
  return buf;
}

std::string fmt_dims(const Dims& d) { return model::to_string(d); }

std::string fmt_q(const QParams& q) {
  return "scale " + fmt_double(q.scale) + " zp " + std::to_string(q.zero_point);
}

// ---------------------------------------------------------------------------------------------
// Tensors on both sides

// Stored NHWC and not also NCHW-contiguous: the frontend's definition of ValueInfo.channels_last.
bool stored_channels_last(const at::Tensor& t) {
  return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

// A quint8 operand: bins in logical (row-major) order, its grid, and the layout requested.
struct Operand {
  Dims dims;
  std::vector<uint8_t> bins;
  QParams q;
  bool channels_last = false;  // requested: .contiguous(ChannelsLast)

  std::string describe() const {
    return fmt_dims(dims) + (channels_last ? " channels-last" : " NCHW") + " " + fmt_q(q);
  }
};

Operand random_operand(Rng& rng, Dims dims, bool channels_last) {
  Operand o;
  o.dims = std::move(dims);
  o.bins = edge_u8(rng, model::numel(o.dims));
  o.q = edge_qparams(rng);
  o.channels_last = channels_last && o.dims.size() == 4;
  return o;
}

at::Tensor to_aten(const Operand& o) {
  at::Tensor u8 = at::empty(o.dims, at::kByte);
  std::memcpy(u8.data_ptr<uint8_t>(), o.bins.data(), o.bins.size());
  at::Tensor q = at::_make_per_tensor_quantized_tensor(u8, o.q.scale, o.q.zero_point);
  if (o.channels_last) q = q.contiguous(at::MemoryFormat::ChannelsLast);
  return q;
}

// A quantized clone() returns an NCHW tensor even from a channels-last one (1.13.1), so the
// in-place ops get a copy in the input's own layout.
at::Tensor clone_keeping_layout(const at::Tensor& t) {
  return stored_channels_last(t) ? t.clone().contiguous(at::MemoryFormat::ChannelsLast) : t.clone();
}

at::Tensor float_to_aten(const Dims& dims, const std::vector<float>& v, bool channels_last) {
  at::Tensor t = at::empty(dims, at::kFloat);
  std::memcpy(t.data_ptr<float>(), v.data(), v.size() * sizeof(float));
  if (channels_last && dims.size() == 4) t = t.contiguous(at::MemoryFormat::ChannelsLast);
  return t;
}

run::Tensor from_aten(const at::Tensor& t) {
  if (t.is_quantized()) {
    const at::Tensor r = t.int_repr().contiguous();
    const auto* p = r.data_ptr<uint8_t>();
    return run::quantized_tensor(t.sizes().vec(), std::vector<uint8_t>(p, p + r.numel()),
                                 t.q_scale(), t.q_zero_point());
  }
  const at::Tensor f = t.contiguous();
  const auto* p = f.data_ptr<float>();
  return run::float_tensor(t.sizes().vec(), std::vector<float>(p, p + f.numel()));
}

std::string first_line(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  if (line.size() > 240) line = line.substr(0, 240) + "...";
  return line;
}

struct Outcome {
  bool ran = false;
  std::string error;
  run::Tensor value;
  bool channels_last = false;  // ATen only: the result's layout
};

Outcome run_aten(const std::function<at::Tensor()>& op) {
  Outcome o;
  try {
    const at::Tensor r = op();
    o.value = from_aten(r);
    o.channels_last = stored_channels_last(r);
    o.ran = true;
  } catch (const std::exception& e) {
    o.error = first_line(e.what());
  }
  return o;
}

// A boxed call of a registered op (quantized::add, ...), as TorchScript makes it.
c10::IValue call_op(const char* name, const char* overload, std::vector<c10::IValue> args) {
  const auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
  std::vector<c10::IValue> stack(std::move(args));
  handle.callBoxed(&stack);
  return stack.at(0);
}

at::Tensor call_tensor_op(const char* name, const char* overload, std::vector<c10::IValue> args) {
  return call_op(name, overload, std::move(args)).toTensor();
}

// ---------------------------------------------------------------------------------------------
// The executor's side: one-op graphs

struct ExecGraph {
  model::Graph graph;
  run::Tensor input;
  std::vector<ValueId> operands;
  std::vector<Operand> intended;  // quantized operands, to check the harness's quantize step
};

// Float input [total] -> per operand: slice -> reshape -> quantize (with the operand's layout).
ExecGraph quantized_operands(const std::vector<Operand>& ops, const std::vector<at::Tensor>& real) {
  ExecGraph e;
  int64_t total = 0;
  for (const Operand& o : ops) total += model::numel(o.dims);
  e.graph.input = e.graph.add_value({total}, ValueType::kFloat);
  std::vector<float> flat;
  flat.reserve(static_cast<size_t>(total));
  int64_t offset = 0;
  for (size_t k = 0; k < ops.size(); ++k) {
    const Operand& o = ops[k];
    const int64_t n = model::numel(o.dims);
    model::Node slice;
    slice.layer = "operand" + std::to_string(k);
    slice.source_op = "test::slice";
    slice.op = OpKind::kSlice;
    slice.inputs = {e.graph.input};
    slice.params = model::SliceParams{0, offset, offset + n};
    slice.output = e.graph.add_value({n}, ValueType::kFloat);
    e.graph.nodes.push_back(slice);
    model::Node reshape;
    reshape.layer = slice.layer;
    reshape.source_op = "aten::reshape";
    reshape.op = OpKind::kReshape;
    reshape.inputs = {slice.output};
    reshape.params = model::ReshapeParams{o.dims};
    reshape.output = e.graph.add_value(o.dims, ValueType::kFloat);
    e.graph.nodes.push_back(reshape);
    model::Node quantize;
    quantize.layer = slice.layer;
    quantize.source_op = "aten::quantize_per_tensor";
    quantize.op = OpKind::kQuantize;
    quantize.inputs = {reshape.output};
    quantize.params = model::QuantizeParams{{o.q.scale, o.q.zero_point}};
    quantize.output = e.graph.add_value(o.dims, ValueType::kQUInt8);
    e.graph.values[static_cast<size_t>(quantize.output)].channels_last =
        stored_channels_last(real.at(k));
    e.graph.nodes.push_back(quantize);
    e.operands.push_back(quantize.output);
    for (const uint8_t b : o.bins) {
      flat.push_back(static_cast<float>(
          (static_cast<double>(b) - static_cast<double>(o.q.zero_point)) * o.q.scale));
    }
    offset += n;
  }
  e.input = run::float_tensor({total}, std::move(flat));
  e.intended = ops;
  return e;
}

ExecGraph float_operand(const Dims& dims, const std::vector<float>& values,
                        const at::Tensor& real) {
  ExecGraph e;
  e.graph.input = e.graph.add_value(dims, ValueType::kFloat);
  e.graph.values[static_cast<size_t>(e.graph.input)].channels_last = stored_channels_last(real);
  e.operands = {e.graph.input};
  e.input = run::float_tensor(dims, values);
  return e;
}

// Appends the op under test; its output's ValueInfo as the frontend records it (dims, type and
// layout of the real result; the first operand's dims when ATen refused).
void add_op(ExecGraph& e, OpKind op, model::OpParams params, const Outcome& real,
            const char* source_op, std::vector<ValueId> inputs = {}) {
  model::Node node;
  node.layer = "op";
  node.source_op = source_op;
  node.op = op;
  node.inputs = inputs.empty() ? e.operands : std::move(inputs);
  node.params = std::move(params);
  const model::ValueInfo& first = e.graph.values[static_cast<size_t>(node.inputs.at(0))];
  const Dims dims = real.ran ? real.value.dims : first.dims;
  const ValueType type = real.ran ? real.value.type : first.type;
  node.output = e.graph.add_value(dims, type);
  e.graph.values[static_cast<size_t>(node.output)].channels_last = real.ran && real.channels_last;
  e.graph.nodes.push_back(node);
  e.graph.output = node.output;
}

Outcome run_executor(const ExecGraph& e, const Config& c) {
  Outcome o;
  const qparity::BackendProfile& profile =
      c.engine != nullptr ? c.engine->profile : engines().front().profile;
  try {
    run::RunResult r =
        run::run_graph(e.graph, e.input, {&profile, torch_kernels(c.threads), c.threads});
    for (size_t k = 0; k < e.intended.size(); ++k) {
      const run::Tensor& q = r.values.at(static_cast<size_t>(e.operands[k]));
      if (q.bins != e.intended[k].bins || q.scale != e.intended[k].q.scale ||
          q.zero_point != e.intended[k].q.zero_point) {
        o.error = "HARNESS: operand " + std::to_string(k) + " did not quantize back to its bins";
        return o;
      }
    }
    o.value = std::move(r.values.at(static_cast<size_t>(e.graph.output)));
    o.ran = true;
  } catch (const std::exception& ex) {
    o.error = first_line(ex.what());
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Comparison and the tally

struct Stats {
  int64_t cases = 0, refused_both = 0, elements = 0, failed_cases = 0, failed_elements = 0;
  std::string first_refusal;
};

std::map<std::string, Stats>& tally() {
  static std::map<std::string, Stats> t;
  return t;
}

std::string key_of(const std::string& op, const Config& c, const std::string& layout) {
  return op + " | " + (c.engine != nullptr ? c.engine->name : std::string("float")) + " | " +
         layout + " | threads " + std::to_string(c.threads);
}

constexpr int kDetailedFailuresPerKey = 3;

std::string index_string(const Dims& dims, int64_t flat) {
  std::vector<int64_t> idx(dims.size());
  for (size_t d = dims.size(); d-- > 0;) {
    idx[d] = flat % dims[d];
    flat /= dims[d];
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) s += (d ? "," : "") + std::to_string(idx[d]);
  return s + "]";
}

// Context printed with a mismatching element: e.g. the operands' bins at the same index.
using Context = std::function<std::string(int64_t flat_index)>;

void compare(const std::string& op, const Config& c, const std::string& layout,
             const std::string& description, const Outcome& want, const Outcome& got,
             const Context& context = {}) {
  const std::string key = key_of(op, c, layout);
  Stats& s = tally()[key];
  ++s.cases;
  std::ostringstream why;
  int64_t bad = 0;
  if (!want.ran && !got.ran) {
    ++s.refused_both;
    if (s.first_refusal.empty()) s.first_refusal = want.error + "  //  qparity: " + got.error;
    return;
  }
  if (!got.ran && got.error.rfind("HARNESS", 0) == 0) {
    why << got.error;
    bad = -1;
  } else if (!want.ran) {
    why << "ATen refuses (" << want.error << ") but qparity runs";
    bad = -1;
  } else if (!got.ran) {
    why << "qparity refuses (" << got.error << ") but ATen runs, output "
        << fmt_dims(want.value.dims);
    bad = -1;
  } else {
    s.elements += want.value.numel();
    const run::Tensor& w = want.value;
    const run::Tensor& g = got.value;
    if (w.dims != g.dims || w.type != g.type) {
      why << "shape/type: ATen " << fmt_dims(w.dims) << (w.quantized() ? " quint8" : " float")
          << ", qparity " << fmt_dims(g.dims) << (g.quantized() ? " quint8" : " float");
      bad = -1;
    } else if (w.quantized()) {
      if (w.scale != g.scale || w.zero_point != g.zero_point) {
        why << "output grid: ATen " << fmt_q({w.scale, w.zero_point}) << ", qparity "
            << fmt_q({g.scale, g.zero_point}) << "; ";
        bad = w.numel();
      }
      int64_t shown = 0;
      int64_t diff = 0;
      for (int64_t i = 0; i < w.numel(); ++i) {
        const auto a = w.bins[static_cast<size_t>(i)];
        const auto b = g.bins[static_cast<size_t>(i)];
        if (a == b) continue;
        ++diff;
        if (shown++ < 4) {
          why << "\n    at " << index_string(w.dims, i) << " ATen " << int(a) << " qparity "
              << int(b);
          if (context) why << "  (" << context(i) << ")";
        }
      }
      if (diff > 0) why << "\n    " << diff << " of " << w.numel() << " bins differ";
      bad = std::max(bad, diff);
    } else {
      int64_t shown = 0;
      int64_t diff = 0;
      for (int64_t i = 0; i < w.numel(); ++i) {
        const float a = w.values[static_cast<size_t>(i)];
        const float b = g.values[static_cast<size_t>(i)];
        if (std::memcmp(&a, &b, sizeof a) == 0) continue;
        ++diff;
        if (shown++ < 4) {
          why << "\n    at " << index_string(w.dims, i) << " ATen " << fmt_double(a) << " qparity "
              << fmt_double(b);
          if (context) why << "  (" << context(i) << ")";
        }
      }
      if (diff > 0) why << "\n    " << diff << " of " << w.numel() << " floats differ";
      bad = diff;
    }
  }
  if (bad == 0) return;
  ++s.failed_cases;
  s.failed_elements += std::max<int64_t>(bad, 0);
  if (s.failed_cases <= kDetailedFailuresPerKey) {
    ADD_FAILURE() << "MISMATCH " << key << "\n  case: " << description << "\n  " << why.str();
  }
}

// The operands' bins at a logical output index (same-shape elementwise ops), and where the first
// operand's element sits in memory (which decides vector block or scalar tail).
Context elementwise_context(const std::vector<Operand>& ops) {
  return [ops](int64_t i) {
    std::ostringstream s;
    for (size_t k = 0; k < ops.size(); ++k) {
      if (static_cast<int64_t>(ops[k].bins.size()) <= i) continue;
      s << (k ? ", " : "") << "in" << k << " bin " << int(ops[k].bins[static_cast<size_t>(i)]);
    }
    const Operand& o = ops.front();
    if (o.channels_last && o.dims.size() == 4) {
      const int64_t c = o.dims[1], h = o.dims[2], w = o.dims[3];
      const int64_t n = i / (c * h * w), ci = (i / (h * w)) % c, hi = (i / w) % h, wi = i % w;
      s << ", memory offset " << ((n * h + hi) * w + wi) * c + ci;
    } else {
      s << ", memory offset " << i;
    }
    return s.str();
  };
}

Context float_context(const Dims& dims, const std::vector<float>& x, bool channels_last) {
  return [dims, x, channels_last](int64_t i) {
    std::ostringstream s;
    s << "x " << fmt_double(x[static_cast<size_t>(i)]);
    if (channels_last && dims.size() == 4) {
      const int64_t c = dims[1], h = dims[2], w = dims[3];
      const int64_t n = i / (c * h * w), ci = (i / (h * w)) % c, hi = (i / w) % h, wi = i % w;
      s << ", memory offset " << ((n * h + hi) * w + wi) * c + ci;
    } else {
      s << ", memory offset " << i;
    }
    return s.str();
  };
}

std::vector<Config> quantized_configs() {
  std::vector<Config> r;
  for (const Engine& e : engines()) {
    for (const int t : kThreadCounts) r.push_back({&e, t});
  }
  return r;
}

std::string layout_name(const std::vector<at::Tensor>& ts) {
  std::string s;
  for (size_t k = 0; k < ts.size(); ++k) {
    if (k) s += "+";
    s += stored_channels_last(ts[k]) ? "nhwc" : "nchw";
  }
  return s;
}

// Shapes for elementwise ops: odd tails, C not a multiple of 8, sizes either side of the grain.
const std::vector<Dims>& elementwise_shapes() {
  static const std::vector<Dims> shapes{{1, 1, 1, 13},   {1, 3, 5, 7},     {2, 5, 7, 9},
                                        {1, 13, 17, 19}, {3, 10, 1, 1},    {1, 7, 64, 73},
                                        {2, 3, 37, 149}, {1, 7, 101, 101}, {1, 1, 33, 1031}};
  return shapes;
}

// ---------------------------------------------------------------------------------------------
// One quantized op over operands, everything else generic.

struct QuantizedCase {
  std::string op;           // the tally's op name, e.g. "quantized::add_relu"
  std::string description;  // params
  std::vector<Operand> operands;
  OpKind kind = OpKind::kIdentity;
  model::OpParams params;
  std::function<at::Tensor(const std::vector<at::Tensor>&)> aten;
  bool elementwise = false;  // print operand bins at mismatching indices
  const char* source_op = "test";
};

void run_quantized_case(const QuantizedCase& qc, const Config& c) {
  apply(c);
  std::vector<at::Tensor> real;
  for (const Operand& o : qc.operands) real.push_back(to_aten(o));
  const Outcome want = run_aten([&] { return qc.aten(real); });
  ExecGraph e = quantized_operands(qc.operands, real);
  add_op(e, qc.kind, qc.params, want, qc.source_op);
  const Outcome got = run_executor(e, c);
  std::string description = qc.description;
  for (size_t k = 0; k < qc.operands.size(); ++k) {
    description +=
        "\n    in" + std::to_string(k) + ": " + qc.operands[k].describe() +
        (stored_channels_last(real[k]) != qc.operands[k].channels_last ? " (counts as NCHW)" : "");
  }
  compare(qc.op, c, layout_name(real), description, want, got,
          qc.elementwise ? elementwise_context(qc.operands) : Context{});
}

void run_all(const std::vector<QuantizedCase>& cases) {
  for (const Config& c : quantized_configs()) {
    for (const QuantizedCase& qc : cases) run_quantized_case(qc, c);
  }
}

// ---------------------------------------------------------------------------------------------
// Tests

TEST(OpsVsAten, BothEnginesAvailable) {
  std::vector<std::string> names;
  for (const Engine& e : engines()) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"qnnpack", "onednn"}));
}

// relu, relu6, hardtanh, hardsigmoid, sigmoid, quantized::hardswish
TEST(OpsVsAten, QuantizedActivations) {
  Rng rng(0x51ed0001);
  std::vector<QuantizedCase> cases;
  for (const Dims& shape : elementwise_shapes()) {
    for (const bool cl : {false, true}) {
      for (int draw = 0; draw < 3; ++draw) {
        const Operand x = random_operand(rng, shape, cl);
        {
          QuantizedCase q{.op = "aten::relu",
                          .operands = {x},
                          .kind = OpKind::kRelu,
                          .params = {},
                          .aten = [](const auto& in) { return at::relu(in[0]); },
                          .elementwise = true};
          cases.push_back(q);
        }
        {
          QuantizedCase q{.op = "quantized::relu6",
                          .operands = {x},
                          .kind = OpKind::kHardtanh,
                          .params = model::ClampParams{0.0, 6.0},
                          .aten =
                              [](const auto& in) {
                                return call_tensor_op("quantized::relu6", "", {in[0], false});
                              },
                          .elementwise = true};
          cases.push_back(q);
          q.op = "aten::hardtanh(0,6)";
          q.aten = [](const auto& in) { return at::hardtanh(in[0], 0.0, 6.0); };
          cases.push_back(q);
        }
        {
          // Bounds on the grid, on exact half steps, and off the grid; sometimes outside the range.
          auto bound = [&]() {
            const double bin = static_cast<double>(rng.integer(-20, 275) - x.q.zero_point);
            const double frac =
                rng.pick(std::vector<double>{0.0, 0.5, -0.5, 0.25, rng.uniform(-1, 1)});
            return (bin + frac) * x.q.scale;
          };
          double lo = bound(), hi = bound();
          if (lo > hi) std::swap(lo, hi);
          QuantizedCase q{.op = "aten::hardtanh",
                          .description = "min " + fmt_double(lo) + " max " + fmt_double(hi),
                          .operands = {x},
                          .kind = OpKind::kHardtanh,
                          .params = model::ClampParams{lo, hi},
                          .aten = [lo, hi](const auto& in) { return at::hardtanh(in[0], lo, hi); },
                          .elementwise = true};
          cases.push_back(q);
        }
        {
          QuantizedCase q{.op = "aten::hardsigmoid",
                          .operands = {x},
                          .kind = OpKind::kHardsigmoid,
                          .params = {},
                          .aten = [](const auto& in) { return at::hardsigmoid(in[0]); },
                          .elementwise = true};
          cases.push_back(q);
          q.op = "aten::sigmoid";
          q.kind = OpKind::kSigmoid;
          q.aten = [](const auto& in) { return at::sigmoid(in[0]); };
          cases.push_back(q);
        }
        {
          const QParams o = edge_qparams(rng);
          QuantizedCase q{.op = "quantized::hardswish",
                          .description = "output " + fmt_q(o),
                          .operands = {x},
                          .kind = OpKind::kQHardswish,
                          .params = model::QuantizeParams{{o.scale, o.zero_point}},
                          .aten =
                              [o](const auto& in) {
                                return call_tensor_op("quantized::hardswish", "",
                                                      {in[0], o.scale, o.zero_point});
                              },
                          .elementwise = true};
          cases.push_back(q);
        }
      }
    }
  }
  run_all(cases);
}

// The in-place forms the frontend records as the same IR ops (kRelu, kHardtanh): relu_,
// quantized::relu6(inplace=True) (nnq.ReLU6(inplace=True)), hardtanh_ (F.relu6 / F.hardtanh with
// inplace=True). ATen's in-place clamp computes the out-of-place result and copy_()s it back.
TEST(OpsVsAten, InplaceActivations) {
  Rng rng(0x51ed000d);
  std::vector<QuantizedCase> cases;
  for (const Dims& shape : elementwise_shapes()) {
    for (const bool cl : {false, true}) {
      const Operand x = random_operand(rng, shape, cl);
      cases.push_back({.op = "aten::relu_",
                       .operands = {x},
                       .kind = OpKind::kRelu,
                       .params = {},
                       .aten =
                           [](const auto& in) {
                             at::Tensor t = clone_keeping_layout(in[0]);
                             return at::relu_(t);
                           },
                       .elementwise = true});
      cases.push_back(
          {.op = "quantized::relu6(inplace)",
           .operands = {x},
           .kind = OpKind::kHardtanh,
           .params = model::ClampParams{0.0, 6.0},
           .aten =
               [](const auto& in) {
                 return call_tensor_op("quantized::relu6", "", {clone_keeping_layout(in[0]), true});
               },
           .elementwise = true});
      const double lo = -0.5 * x.q.scale * static_cast<double>(rng.integer(0, 100));
      const double hi = x.q.scale * static_cast<double>(rng.integer(1, 100));
      cases.push_back({.op = "aten::hardtanh_",
                       .description = "min " + fmt_double(lo) + " max " + fmt_double(hi),
                       .operands = {x},
                       .kind = OpKind::kHardtanh,
                       .params = model::ClampParams{lo, hi},
                       .aten =
                           [lo, hi](const auto& in) {
                             at::Tensor t = clone_keeping_layout(in[0]);
                             return at::hardtanh_(t, lo, hi);
                           },
                       .elementwise = true});
    }
  }
  run_all(cases);
}

// Floats on which float sigmoid's vector lambda (Sleef expf) and scalar lambda (glibc expf) give
// different results, found with ATen itself: 65 536 values contiguous on one thread (whole
// 16-element blocks: all vector) against a stride-2 view of the same values (never vectorized).
std::vector<float> sigmoid_split_sensitive(Rng& rng) {
  apply({nullptr, 1});
  const int64_t n = 1 << 16;
  const std::vector<float> x = edge_floats(rng, n);
  const at::Tensor v = float_to_aten({n}, x, false);
  at::Tensor wide = at::zeros({2 * n}, at::kFloat);
  wide.slice(0, 0, 2 * n, 2).copy_(v);
  const at::Tensor yv = at::sigmoid(v).contiguous();
  const at::Tensor ys = at::sigmoid(wide.slice(0, 0, 2 * n, 2)).contiguous();
  std::vector<float> r;
  for (int64_t i = 0; i < n; ++i) {
    const float a = yv.data_ptr<float>()[i], b = ys.data_ptr<float>()[i];
    if (std::memcmp(&a, &b, sizeof a) != 0) r.push_back(x[static_cast<size_t>(i)]);
  }
  return r;
}

// hardswish, hardsigmoid, sigmoid on float tensors (the QAT path). Float sigmoid's vector lambda
// (Sleef expf, 16-element blocks) and scalar tail (glibc expf) round differently, so layout and
// thread chunks (>= 32768 elements) matter.
TEST(OpsVsAten, FloatActivations) {
  Rng rng(0x51ed0002);
  struct FloatCase {
    Dims dims;
    std::vector<float> x;
    bool channels_last;
  };
  std::vector<FloatCase> cases;
  std::vector<Dims> shapes = elementwise_shapes();
  shapes.push_back({1, 5, 80, 82});  // 32 800: two chunks of 16 400 (no tail)
  shapes.push_back({1, 1, 1, 32767});
  shapes.push_back({1, 1, 1, 65537});  // two chunks of 32 769
  for (const Dims& shape : shapes) {
    for (const bool cl : {false, true}) {
      for (int draw = 0; draw < 2; ++draw)
        cases.push_back({shape, edge_floats(rng, model::numel(shape)), cl});
    }
  }
  // Inputs made only of values whose sigmoid differs between the two lambdas: every element's
  // place in the split (layout, thread chunk, block or tail) shows.
  const std::vector<float> sensitive = sigmoid_split_sensitive(rng);
  ASSERT_GT(sensitive.size(), 100u)
      << "no sigmoid inputs found on which ATen's vector and scalar lambdas differ";
  for (const Dims& shape : std::vector<Dims>{
           {1, 7, 101, 101}, {2, 3, 37, 149}, {1, 1, 1, 65537}, {1, 5, 80, 82}, {1, 3, 5, 7}}) {
    for (const bool cl : {false, true}) {
      std::vector<float> x(static_cast<size_t>(model::numel(shape)));
      for (float& v : x) v = rng.pick(sensitive);
      cases.push_back({shape, std::move(x), cl});
    }
  }
  struct FloatOp {
    const char* name;
    OpKind kind;
    std::function<at::Tensor(const at::Tensor&)> aten;
  };
  const std::vector<FloatOp> ops{{"aten::hardswish(float)", OpKind::kHardswish,
                                  [](const at::Tensor& t) { return at::hardswish(t); }},
                                 {"aten::hardsigmoid(float)", OpKind::kHardsigmoid,
                                  [](const at::Tensor& t) { return at::hardsigmoid(t); }},
                                 {"aten::sigmoid(float)", OpKind::kSigmoid,
                                  [](const at::Tensor& t) { return at::sigmoid(t); }}};
  for (const int threads : kThreadCounts) {
    const Config c{nullptr, threads};
    apply(c);
    for (const FloatOp& op : ops) {
      for (const FloatCase& fc : cases) {
        const at::Tensor real = float_to_aten(fc.dims, fc.x, fc.channels_last);
        const Outcome want = run_aten([&] { return op.aten(real); });
        ExecGraph e = float_operand(fc.dims, fc.x, real);
        add_op(e, op.kind, {}, want, op.name);
        const Outcome got = run_executor(e, c);
        compare(op.name, c, layout_name({real}), "x " + fmt_dims(fc.dims), want, got,
                float_context(fc.dims, fc.x, stored_channels_last(real)));
      }
    }
  }
}

// quantized::add / add_relu: same shapes, NCHW, NHWC and mixed layouts.
TEST(OpsVsAten, QuantizedAdd) {
  Rng rng(0x51ed0003);
  std::vector<QuantizedCase> cases;
  for (const Dims& shape : elementwise_shapes()) {
    for (const auto& [la, lb] : std::vector<std::pair<bool, bool>>{
             {false, false}, {true, true}, {true, false}, {false, true}}) {
      for (int draw = 0; draw < 2; ++draw) {
        Operand a = random_operand(rng, shape, la);
        Operand b = random_operand(rng, shape, lb);
        if (draw == 1) b.q = a.q;  // equal grids
        const QParams o = draw == 1 && rng.chance(0.5) ? a.q : edge_qparams(rng);
        for (const bool relu : {false, true}) {
          const char* name = relu ? "quantized::add_relu" : "quantized::add";
          cases.push_back(
              {.op = name,
               .description = "output " + fmt_q(o),
               .operands = {a, b},
               .kind = OpKind::kQAdd,
               .params = model::QBinaryParams{{o.scale, o.zero_point}, relu},
               .aten =
                   [name, o](const auto& in) {
                     return call_tensor_op(name, "", {in[0], in[1], o.scale, o.zero_point});
                   },
               .elementwise = true});
        }
      }
    }
  }
  run_all(cases);
}

// Grids and bin pairs on which ATen's generic quantized::add (onednn) gives different bins in its
// vector lambda (FMA dequantize) and its scalar lambda, found with ATen itself: the 256 x 256 pairs
// as [1, 256, 16, 16] tensors, once both NCHW on one thread (whole 64-element blocks: all vector)
// and once with mixed layouts (all scalar).
struct SplitSensitiveAdd {
  QParams a, b, out;
  std::vector<std::pair<uint8_t, uint8_t>> pairs;
};

std::vector<SplitSensitiveAdd> add_split_sensitive(Rng& rng, size_t wanted) {
  const Engine* onednn = nullptr;
  for (const Engine& e : engines()) {
    if (e.name == "onednn") onednn = &e;
  }
  std::vector<SplitSensitiveAdd> found;
  if (onednn == nullptr) return found;
  apply({onednn, 1});
  Operand a{{1, 256, 16, 16}, std::vector<uint8_t>(65536), {}, false};
  Operand b = a;
  for (size_t e = 0; e < 65536; ++e) {
    a.bins[e] = static_cast<uint8_t>(e / 256);
    b.bins[e] = static_cast<uint8_t>(e % 256);
  }
  for (int tries = 0; tries < 400 && found.size() < wanted; ++tries) {
    a.q = edge_qparams(rng);
    b.q = edge_qparams(rng);
    const QParams out{
        static_cast<double>(static_cast<float>((a.q.scale + b.q.scale) * rng.uniform(0.3, 1.0))),
        rng.integer(0, 255)};
    a.channels_last = false;
    const at::Tensor qb = to_aten(b);
    const run::Tensor vec = from_aten(
        call_tensor_op("quantized::add", "", {to_aten(a), qb, out.scale, out.zero_point}));
    a.channels_last = true;
    const run::Tensor sca = from_aten(
        call_tensor_op("quantized::add", "", {to_aten(a), qb, out.scale, out.zero_point}));
    SplitSensitiveAdd s{a.q, b.q, out, {}};
    for (size_t e = 0; e < 65536; ++e) {
      if (vec.bins[e] != sca.bins[e]) s.pairs.emplace_back(a.bins[e], b.bins[e]);
    }
    if (!s.pairs.empty()) found.push_back(std::move(s));
  }
  return found;
}

// quantized::add on inputs made only of split-sensitive pairs: which element runs in which lambda
// (layout, thread chunk, vector block or scalar tail, mixed layouts) decides every bin.
TEST(OpsVsAten, QuantizedAddSplitSensitive) {
  Rng rng(0x51ed0010);
  const std::vector<SplitSensitiveAdd> grids = add_split_sensitive(rng, 3);
  ASSERT_FALSE(grids.empty()) << "no grids found on which ATen's add lambdas differ";
  std::vector<QuantizedCase> cases;
  for (const SplitSensitiveAdd& g : grids) {
    for (const Dims& shape :
         std::vector<Dims>{{1, 7, 101, 101}, {2, 3, 37, 149}, {1, 13, 17, 19}}) {
      for (const auto& [la, lb] :
           std::vector<std::pair<bool, bool>>{{false, false}, {true, true}, {true, false}}) {
        Operand a{shape, std::vector<uint8_t>(static_cast<size_t>(model::numel(shape))), g.a, la};
        Operand b{shape, a.bins, g.b, lb};
        for (size_t e = 0; e < a.bins.size(); ++e)
          std::tie(a.bins[e], b.bins[e]) = rng.pick(g.pairs);
        cases.push_back({.op = "quantized::add(split-sensitive)",
                         .description = "output " + fmt_q(g.out) + ", " +
                                        std::to_string(g.pairs.size()) + " sensitive pairs",
                         .operands = {a, b},
                         .kind = OpKind::kQAdd,
                         .params = model::QBinaryParams{{g.out.scale, g.out.zero_point}, false},
                         .aten =
                             [g](const auto& in) {
                               return call_tensor_op("quantized::add", "",
                                                     {in[0], in[1], g.out.scale, g.out.zero_point});
                             },
                         .elementwise = true});
      }
    }
  }
  run_all(cases);
}

// quantized::mul / mul_relu, same shapes and broadcasting [N,C,1,1] * [N,C,H,W] (both orders).
TEST(OpsVsAten, QuantizedMul) {
  Rng rng(0x51ed0004);
  std::vector<QuantizedCase> cases;
  for (const Dims& shape : elementwise_shapes()) {
    const Dims nc11{shape[0], shape[1], 1, 1};
    const Dims one_hw{1, 1, shape[2], shape[3]};
    const std::vector<std::pair<Dims, Dims>> pairs{
        {shape, shape}, {nc11, shape}, {shape, nc11}, {shape, one_hw}};
    for (const auto& [da, db] : pairs) {
      for (const auto& [la, lb] :
           std::vector<std::pair<bool, bool>>{{false, false}, {true, true}, {true, false}}) {
        const Operand a = random_operand(rng, da, la);
        const Operand b = random_operand(rng, db, lb);
        const QParams o = edge_qparams(rng);
        for (const bool relu : {false, true}) {
          const char* name = relu ? "quantized::mul_relu" : "quantized::mul";
          cases.push_back(
              {.op = name,
               .description = "output " + fmt_q(o),
               .operands = {a, b},
               .kind = OpKind::kQMul,
               .params = model::QBinaryParams{{o.scale, o.zero_point}, relu},
               .aten =
                   [name, o](const auto& in) {
                     return call_tensor_op(name, "", {in[0], in[1], o.scale, o.zero_point});
                   },
               .elementwise = da == db});
        }
      }
    }
  }
  run_all(cases);
}

// quantized::add_scalar / mul_scalar (+relu): scalars positive, negative, zero, on exact half
// steps, and large enough to saturate.
TEST(OpsVsAten, QuantizedScalarOps) {
  Rng rng(0x51ed0005);
  std::vector<QuantizedCase> cases;
  for (const Dims& shape : elementwise_shapes()) {
    for (const bool cl : {false, true}) {
      for (int draw = 0; draw < 2; ++draw) {
        const Operand x = random_operand(rng, shape, cl);
        const double s = x.q.scale;
        const std::vector<double> scalars{
            0.0,
            static_cast<double>(rng.integer(-300, 300)) * s,          // whole steps
            (static_cast<double>(rng.integer(-300, 300)) + 0.5) * s,  // exact half steps (ties)
            rng.uniform(-3.0, 3.0),
            rng.pick(std::vector<double>{1000.0, -1000.0, 1e6 * s, -1e6 * s}),  // saturating
            rng.pick(std::vector<double>{0.5, 2.0, -1.0, -0.25, 3.0, 1e-3, 0.1})};
        for (const double c : scalars) {
          for (const bool add : {true, false}) {
            for (const bool relu : {false, true}) {
              const char* name =
                  add ? (relu ? "quantized::add_scalar_relu" : "quantized::add_scalar")
                      : (relu ? "quantized::mul_scalar_relu" : "quantized::mul_scalar");
              cases.push_back({.op = name,
                               .description = "scalar " + fmt_double(c),
                               .operands = {x},
                               .kind = add ? OpKind::kQAddScalar : OpKind::kQMulScalar,
                               .params = model::QScalarParams{c, relu},
                               .aten =
                                   [name, c](const auto& in) {
                                     return call_tensor_op(name, "", {in[0], at::Scalar(c)});
                                   },
                               .elementwise = true});
            }
          }
        }
      }
    }
  }
  run_all(cases);
}

// quantized::cat / cat_relu: along channels with channels-last inputs (fast path), NCHW and mixed
// inputs (generic path), equal and differing input grids; also other dims.
TEST(OpsVsAten, QuantizedCat) {
  Rng rng(0x51ed0006);
  std::vector<QuantizedCase> cases;
  const std::vector<Dims> bases{{1, 3, 5, 7}, {2, 5, 7, 9},    {1, 13, 17, 19},
                                {2, 9, 1, 1}, {1, 17, 33, 35}, {1, 1, 4, 6}};
  for (const Dims& base : bases) {
    for (const int64_t dim : {1, 1, 1, 0, 2, 3}) {
      for (int layout = 0; layout < 3; ++layout) {  // all NHWC, all NCHW, mixed
        const int parts = static_cast<int>(rng.integer(2, 3));
        std::vector<Operand> ops;
        for (int k = 0; k < parts; ++k) {
          Dims d = base;
          d[static_cast<size_t>(dim)] =
              dim == 1 ? rng.pick(std::vector<int64_t>{1, 3, 5, 8, 9, 13, 16, 19})
                       : base[static_cast<size_t>(dim)] + k;
          const bool cl = layout == 0 || (layout == 2 && k % 2 == 0);
          ops.push_back(random_operand(rng, d, cl));
        }
        const int grids = static_cast<int>(
            rng.integer(0, 2));  // 0: all equal to the output, 1: inputs equal, 2: random
        QParams o = edge_qparams(rng);
        if (grids == 0) {
          for (auto& op : ops) op.q = o;
        } else if (grids == 1) {
          for (auto& op : ops) op.q = ops[0].q;
        }
        for (const bool relu : {false, true}) {
          const char* name = relu ? "quantized::cat_relu" : "quantized::cat";
          cases.push_back({.op = name,
                           .description = "dim " + std::to_string(dim) + " output " + fmt_q(o) +
                                          (grids == 0 ? " (inputs on the output grid)" : ""),
                           .operands = ops,
                           .kind = OpKind::kQCat,
                           .params = model::QCatParams{dim, {o.scale, o.zero_point}, relu},
                           .aten = [name, dim, o](const std::vector<at::Tensor>& in) {
                             c10::List<at::Tensor> list;
                             for (const auto& t : in) list.push_back(t);
                             return call_tensor_op(name, "", {list, dim, o.scale, o.zero_point});
                           }});
        }
      }
    }
  }
  run_all(cases);
}

struct PoolShape {
  Dims dims;
  bool channels_last;
};

std::vector<PoolShape> pool_shapes(Rng& rng, int count) {
  std::vector<PoolShape> r;
  for (int i = 0; i < count; ++i) {
    const int kind = static_cast<int>(rng.integer(0, 9));
    Dims d{rng.integer(1, 2), rng.pick(std::vector<int64_t>{1, 3, 5, 8, 13, 17}),
           rng.integer(1, 23), rng.integer(1, 23)};
    if (kind == 0) d[2] = d[3] = 1;  // (N, C, 1, 1): counts as channels-last (B3)
    if (kind == 1) d[1] = 1;         // one channel: counts as channels-last too
    r.push_back({d, rng.chance(0.5)});
  }
  return r;
}

qparity::Pool2dWindow random_window(Rng& rng, const Dims& d, bool max_pool) {
  qparity::Pool2dWindow w;
  w.kernel_h = rng.integer(1, std::min<int64_t>(4, d[2] + 2));
  w.kernel_w = rng.integer(1, std::min<int64_t>(4, d[3] + 2));
  if (rng.chance(0.15)) w.kernel_h = w.kernel_w = 1;
  w.stride_h = rng.integer(1, 3);
  w.stride_w = rng.integer(1, 3);
  if (max_pool && rng.chance(0.4)) {
    w.dilation_h = rng.integer(1, 2);
    w.dilation_w = rng.integer(1, 2);
  }
  const int64_t eff_h = (w.kernel_h - 1) * w.dilation_h + 1,
                eff_w = (w.kernel_w - 1) * w.dilation_w + 1;
  const int64_t max_ph = max_pool ? eff_h / 2 : w.kernel_h / 2,
                max_pw = max_pool ? eff_w / 2 : w.kernel_w / 2;
  w.pad_h = rng.integer(0, max_ph);
  w.pad_w = rng.integer(0, max_pw);
  w.ceil_mode = rng.chance(0.3);
  return w;
}

// Whether the (dilated) window fits the padded input in both dims.
bool window_fits(const qparity::Pool2dWindow& w, const Dims& d) {
  return (w.kernel_h - 1) * w.dilation_h + 1 <= d[2] + 2 * w.pad_h &&
         (w.kernel_w - 1) * w.dilation_w + 1 <= d[3] + 2 * w.pad_w;
}

qparity::Pool2dWindow fitting_window(Rng& rng, const Dims& d, bool max_pool) {
  for (;;) {
    const qparity::Pool2dWindow w = random_window(rng, d, max_pool);
    if (window_fits(w, d)) return w;
  }
}

std::string describe_window(const qparity::Pool2dWindow& w) {
  std::ostringstream s;
  s << "kernel " << w.kernel_h << "x" << w.kernel_w << " stride " << w.stride_h << "," << w.stride_w
    << " pad " << w.pad_h << "," << w.pad_w << " dilation " << w.dilation_h << "," << w.dilation_w
    << (w.ceil_mode ? " ceil_mode" : "");
  return s.str();
}

TEST(OpsVsAten, QuantizedMaxPool2d) {
  Rng rng(0x51ed0007);
  std::vector<QuantizedCase> cases;
  for (const PoolShape& ps : pool_shapes(rng, 220)) {
    const Operand x = random_operand(rng, ps.dims, ps.channels_last);
    const qparity::Pool2dWindow w = fitting_window(rng, ps.dims, true);
    model::Pool2dParams p;
    p.window = w;
    cases.push_back({.op = "aten::max_pool2d",
                     .description = describe_window(w),
                     .operands = {x},
                     .kind = OpKind::kMaxPool2d,
                     .params = p,
                     .aten = [w](const auto& in) {
                       return at::max_pool2d(in[0], {w.kernel_h, w.kernel_w},
                                             {w.stride_h, w.stride_w}, {w.pad_h, w.pad_w},
                                             {w.dilation_h, w.dilation_w}, w.ceil_mode);
                     }});
  }
  run_all(cases);
}

TEST(OpsVsAten, QuantizedAvgPool2d) {
  Rng rng(0x51ed0008);
  std::vector<QuantizedCase> cases;
  for (const PoolShape& ps : pool_shapes(rng, 260)) {
    const Operand x = random_operand(rng, ps.dims, ps.channels_last);
    const qparity::Pool2dWindow w = fitting_window(rng, ps.dims, false);
    model::Pool2dParams p;
    p.window = w;
    p.count_include_pad = rng.chance(0.5);
    if (rng.chance(0.3)) p.divisor_override = rng.integer(1, 20);
    const bool cip = p.count_include_pad;
    const std::optional<int64_t> div = p.divisor_override;
    cases.push_back({.op = "aten::avg_pool2d",
                     .description = describe_window(w) + (cip ? " count_include_pad" : "") +
                                    (div ? " divisor_override " + std::to_string(*div) : ""),
                     .operands = {x},
                     .kind = OpKind::kAvgPool2d,
                     .params = p,
                     .aten = [w, cip, div](const auto& in) {
                       return at::avg_pool2d(in[0], {w.kernel_h, w.kernel_w},
                                             {w.stride_h, w.stride_w}, {w.pad_h, w.pad_w},
                                             w.ceil_mode, cip,
                                             div ? c10::optional<int64_t>(*div) : c10::nullopt);
                     }});
  }
  run_all(cases);
}

TEST(OpsVsAten, QuantizedAdaptiveAvgPool2d) {
  Rng rng(0x51ed0009);
  std::vector<QuantizedCase> cases;
  for (const PoolShape& ps : pool_shapes(rng, 200)) {
    const Operand x = random_operand(rng, ps.dims, ps.channels_last);
    const int64_t h = ps.dims[2], w = ps.dims[3];
    int64_t oh = 1, ow = 1;
    switch (rng.integer(0, 2)) {
      case 0:
        break;   // global
      case 1: {  // divisible
        std::vector<int64_t> dh, dw;
        for (int64_t k = 1; k <= h; ++k)
          if (h % k == 0) dh.push_back(k);
        for (int64_t k = 1; k <= w; ++k)
          if (w % k == 0) dw.push_back(k);
        oh = rng.pick(dh);
        ow = rng.pick(dw);
        break;
      }
      default:  // anything up to the input (non-divisible mostly)
        oh = rng.integer(1, h);
        ow = rng.integer(1, w);
        break;
    }
    cases.push_back({.op = "aten::adaptive_avg_pool2d",
                     .description = "output " + std::to_string(oh) + "x" + std::to_string(ow),
                     .operands = {x},
                     .kind = OpKind::kAdaptiveAvgPool2d,
                     .params = model::AdaptivePoolParams{oh, ow},
                     .aten = [oh, ow](const auto& in) {
                       return at::adaptive_avg_pool2d(in[0], {oh, ow});
                     }});
  }
  run_all(cases);
}

// adaptive_avg_pool2d to an output larger than the input (upsampling), including (N, C, 1, 1)
// inputs, which ATen takes for channels-last (B3 of the research notes).
TEST(OpsVsAten, AdaptiveAvgPool2dLargerOutput) {
  Rng rng(0x51ed000e);
  std::vector<QuantizedCase> cases;
  for (const PoolShape& ps : pool_shapes(rng, 60)) {
    const Operand x = random_operand(rng, ps.dims, ps.channels_last);
    const int64_t oh = rng.integer(1, ps.dims[2] + 3), ow = rng.integer(1, ps.dims[3] + 3);
    cases.push_back({.op = "aten::adaptive_avg_pool2d(larger output)",
                     .description = "output " + std::to_string(oh) + "x" + std::to_string(ow),
                     .operands = {x},
                     .kind = OpKind::kAdaptiveAvgPool2d,
                     .params = model::AdaptivePoolParams{oh, ow},
                     .aten = [oh, ow](const auto& in) {
                       return at::adaptive_avg_pool2d(in[0], {oh, ow});
                     }});
  }
  run_all(cases);
}

// Pooling windows that do not fit the padded input. ATen accepts them with ceil_mode (the
// output keeps one window, over the taps inside), and avg_pool2d's generic kernels also without
// it (an empty output); max_pool2d refuses an empty output.
TEST(OpsVsAten, PoolWindowsLargerThanInput) {
  Rng rng(0x51ed000f);
  std::vector<QuantizedCase> cases;
  int made = 0;
  while (made < 60) {
    const PoolShape ps = pool_shapes(rng, 1).front();
    const bool max_pool = made % 2 == 0;
    const qparity::Pool2dWindow w = random_window(rng, ps.dims, max_pool);
    if (window_fits(w, ps.dims)) continue;
    ++made;
    const Operand x = random_operand(rng, ps.dims, ps.channels_last);
    model::Pool2dParams p;
    p.window = w;
    if (max_pool) {
      cases.push_back({.op = "aten::max_pool2d(window > input)",
                       .description = describe_window(w),
                       .operands = {x},
                       .kind = OpKind::kMaxPool2d,
                       .params = p,
                       .aten = [w](const auto& in) {
                         return at::max_pool2d(in[0], {w.kernel_h, w.kernel_w},
                                               {w.stride_h, w.stride_w}, {w.pad_h, w.pad_w},
                                               {w.dilation_h, w.dilation_w}, w.ceil_mode);
                       }});
    } else {
      cases.push_back({.op = "aten::avg_pool2d(window > input)",
                       .description = describe_window(w) + " count_include_pad",
                       .operands = {x},
                       .kind = OpKind::kAvgPool2d,
                       .params = p,
                       .aten = [w](const auto& in) {
                         return at::avg_pool2d(in[0], {w.kernel_h, w.kernel_w},
                                               {w.stride_h, w.stride_w}, {w.pad_h, w.pad_w},
                                               w.ceil_mode, true, c10::nullopt);
                       }});
    }
  }
  run_all(cases);
}

// mean over dims on quint8: (2, 3) as every spelling a model can use (the IR holds them
// normalized and sorted, as the frontend records them), keepdim, and other dims.
TEST(OpsVsAten, QuantizedMean) {
  Rng rng(0x51ed000a);
  std::vector<QuantizedCase> cases;
  const std::vector<std::vector<int64_t>> spellings{{2, 3},   {2, 3}, {2, 3}, {3, 2},   {-2, -1},
                                                    {-1, -2}, {3},    {1},    {1, 2, 3}};
  for (const PoolShape& ps : pool_shapes(rng, 90)) {
    for (int k = 0; k < 2; ++k) {
      const Operand x = random_operand(rng, ps.dims, ps.channels_last);
      const std::vector<int64_t> dims = rng.pick(spellings);
      const bool keepdim = rng.chance(0.5);
      model::MeanParams p;
      p.written = dims;  // as the frontend records aten::mean's dim argument
      for (const int64_t d : dims) p.dims.push_back(d < 0 ? d + 4 : d);
      std::sort(p.dims.begin(), p.dims.end());
      p.keepdim = keepdim;
      std::string spelled = "dim (";
      for (size_t i = 0; i < dims.size(); ++i) spelled += (i ? ", " : "") + std::to_string(dims[i]);
      spelled += std::string(") keepdim ") + (keepdim ? "true" : "false");
      const bool respelled = p.dims != dims;  // (3, 2), (-2, -1): the normalized dims are (2, 3)
      cases.push_back(
          {.op = respelled ? "aten::mean(dims not as (2, 3))" : "aten::mean",
           .description = spelled,
           .operands = {x},
           .kind = OpKind::kMean,
           .params = p,
           .aten = [dims, keepdim](const auto& in) { return at::mean(in[0], dims, keepdim); }});
    }
  }
  run_all(cases);
}

// ---------------------------------------------------------------------------------------------
// quantized::conv2d / linear through their packed params, read back as the frontend does.

model::QuantizedWeight weight_of(const at::Tensor& w, const c10::optional<at::Tensor>& bias) {
  model::QuantizedWeight q;
  q.dims = w.sizes().vec();
  const at::Tensor r = w.int_repr().contiguous();
  q.data.assign(r.data_ptr<int8_t>(), r.data_ptr<int8_t>() + r.numel());
  if (w.qscheme() == at::kPerTensorAffine || w.qscheme() == at::kPerTensorSymmetric) {
    q.scales = {w.q_scale()};
    q.zero_points = {w.q_zero_point()};
  } else {
    q.per_channel = true;
    const at::Tensor s = w.q_per_channel_scales().to(at::kDouble).contiguous();
    const at::Tensor z = w.q_per_channel_zero_points().to(at::kLong).contiguous();
    q.scales.assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
    q.zero_points.assign(z.data_ptr<int64_t>(), z.data_ptr<int64_t>() + z.numel());
  }
  if (bias && bias->defined()) {
    const at::Tensor b = bias->to(at::kFloat).contiguous();
    q.bias.assign(b.data_ptr<float>(), b.data_ptr<float>() + b.numel());
  }
  return q;
}

struct RandomWeight {
  at::Tensor weight;  // qint8
  c10::optional<at::Tensor> bias;
  std::string description;
};

RandomWeight random_weight(Rng& rng, const Dims& dims, bool zero_zp_only) {
  const int64_t m = dims[0];
  const int64_t n = model::numel(dims);
  at::Tensor i8 = at::empty(dims, at::kChar);
  auto* p = i8.data_ptr<int8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const double r = rng.uniform(0, 1);
    p[i] = static_cast<int8_t>(r < 0.1 ? -128 : r < 0.2 ? 127 : rng.integer(-128, 127));
  }
  auto wscale = [&]() {
    return rng.chance(0.4)
               ? static_cast<double>(std::ldexp(1.0f, static_cast<int>(rng.integer(-9, -3))))
               : static_cast<double>(static_cast<float>(std::pow(10.0, rng.uniform(-3.5, -1.0))));
  };
  RandomWeight w;
  std::ostringstream d;
  if (rng.chance(0.5)) {
    const double s = wscale();
    const int64_t zp = zero_zp_only || rng.chance(0.5) ? 0 : rng.integer(-20, 20);
    w.weight = at::_make_per_tensor_quantized_tensor(i8, s, zp);
    d << "weight per-tensor scale " << fmt_double(s) << " zp " << zp;
  } else {
    at::Tensor scales = at::empty({m}, at::kDouble);
    at::Tensor zps = at::zeros({m}, at::kLong);
    for (int64_t k = 0; k < m; ++k) scales.data_ptr<double>()[k] = wscale();
    w.weight = at::_make_per_channel_quantized_tensor(i8, scales, zps, 0);
    d << "weight per-channel";
  }
  if (rng.chance(0.7)) {
    at::Tensor b = at::empty({m}, at::kFloat);
    for (int64_t k = 0; k < m; ++k)
      b.data_ptr<float>()[k] = static_cast<float>(rng.uniform(-2.0, 2.0));
    w.bias = b;
    d << ", bias";
  }
  w.description = d.str();
  return w;
}

TEST(OpsVsAten, QuantizedConv2d) {
  Rng rng(0x51ed000b);
  int64_t unique = 0;  // every case gets its own input width: no oneDNN primitive-cache collisions
  for (const Config& c : quantized_configs()) {
    for (int i = 0; i < 40; ++i) {
      apply(c);
      const int64_t cin = rng.pick(std::vector<int64_t>{1, 3, 5, 8, 13, 16});
      int64_t groups = 1;
      const int64_t g = rng.integer(0, 2);
      if (g == 1 && cin > 1) groups = cin;  // depthwise
      if (g == 2 && cin % 2 == 0) groups = 2;
      const int64_t cout =
          groups == cin && cin > 1 ? cin * rng.integer(1, 2) : groups * rng.integer(1, 9);
      const int64_t k = rng.integer(1, 3);
      qparity::Conv2dGeometry geo{rng.integer(1, 2),
                                  rng.integer(1, 2),
                                  rng.integer(0, 1),
                                  rng.integer(0, 1),
                                  rng.integer(1, 2),
                                  rng.integer(1, 2),
                                  groups};
      const Dims xd{rng.integer(1, 2), cin, rng.integer(5, 12), 9 + (unique++ % 200)};
      const Operand x = random_operand(rng, xd, rng.chance(0.5));
      const RandomWeight w =
          random_weight(rng, {cout, cin / groups, k, k}, c.engine->name == "onednn");
      const QParams o = edge_qparams(rng);
      const bool relu = rng.chance(0.4);
      const char* name = relu ? "quantized::conv2d_relu" : "quantized::conv2d";
      const at::Tensor qx = to_aten(x);
      std::optional<model::QConvParams> params;
      const Outcome want = run_aten([&] {
        const c10::IValue packed =
            call_op("quantized::conv2d_prepack", "",
                    {w.weight, w.bias ? c10::IValue(*w.bias) : c10::IValue(),
                     std::vector<int64_t>{geo.stride_h, geo.stride_w},
                     std::vector<int64_t>{geo.pad_h, geo.pad_w},
                     std::vector<int64_t>{geo.dilation_h, geo.dilation_w}, groups});
        const auto unpacked = packed.toCustomClass<ConvPackedParamsBase<2>>()->unpack();
        model::QConvParams p;
        p.weight = weight_of(std::get<0>(unpacked), std::get<1>(unpacked));
        p.geometry = geo;
        p.output = {.scale = o.scale, .zero_point = o.zero_point};
        p.relu = relu;
        params = p;
        return call_tensor_op(name, "new", {qx, packed, o.scale, o.zero_point});
      });
      if (!params) {  // prepack refused: the op cannot be built, nothing to compare
        tally()[key_of(name, c, layout_name({qx}))].cases++;
        tally()[key_of(name, c, layout_name({qx}))].refused_both++;
        continue;
      }
      ExecGraph e = quantized_operands({x}, {qx});
      add_op(e, OpKind::kQConv2d, *params, want, name);
      const Outcome got = run_executor(e, c);
      std::ostringstream d;
      d << "weight " << fmt_dims(w.weight.sizes().vec()) << " " << w.description << " stride "
        << geo.stride_h << "," << geo.stride_w << " pad " << geo.pad_h << "," << geo.pad_w
        << " dilation " << geo.dilation_h << "," << geo.dilation_w << " groups " << groups
        << " output " << fmt_q(o) << "\n    in0: " << x.describe();
      compare(name, c, layout_name({qx}), d.str(), want, got);
    }
  }
}

TEST(OpsVsAten, QuantizedLinear) {
  Rng rng(0x51ed000c);
  int64_t unique = 0;
  for (const Config& c : quantized_configs()) {
    for (int i = 0; i < 40; ++i) {
      apply(c);
      const int64_t kin = rng.integer(1, 70);
      const int64_t m = rng.integer(1, 20);
      const int64_t rows = 1 + (unique++ % 300);
      const Dims xd = rng.chance(0.3) ? Dims{2, rows, kin} : Dims{rows, kin};
      const Operand x = random_operand(rng, xd, false);
      const RandomWeight w = random_weight(rng, {m, kin}, c.engine->name == "onednn");
      const QParams o = edge_qparams(rng);
      const bool relu = rng.chance(0.4);
      const char* name = relu ? "quantized::linear_relu" : "quantized::linear";
      const at::Tensor qx = to_aten(x);
      std::optional<model::QConvParams> params;
      const Outcome want = run_aten([&] {
        const c10::IValue packed =
            call_op("quantized::linear_prepack", "",
                    {w.weight, w.bias ? c10::IValue(*w.bias) : c10::IValue()});
        const auto unpacked = packed.toCustomClass<LinearPackedParamsBase>()->unpack();
        model::QConvParams p;
        p.weight = weight_of(std::get<0>(unpacked), std::get<1>(unpacked));
        p.output = {.scale = o.scale, .zero_point = o.zero_point};
        p.relu = relu;
        params = p;
        return call_tensor_op(name, "", {qx, packed, o.scale, o.zero_point});
      });
      if (!params) {
        tally()[key_of(name, c, "-")].cases++;
        tally()[key_of(name, c, "-")].refused_both++;
        continue;
      }
      ExecGraph e = quantized_operands({x}, {qx});
      add_op(e, OpKind::kQLinear, *params, want, name);
      const Outcome got = run_executor(e, c);
      compare(name, c, "-",
              "weight " + fmt_dims(w.weight.sizes().vec()) + " " + w.description + " output " +
                  fmt_q(o) + "\n    in0: " + x.describe(),
              want, got);
    }
  }
}

// ---------------------------------------------------------------------------------------------

class Summary : public ::testing::Environment {
 public:
  void TearDown() override {
    std::printf("\n%-78s %6s %7s %10s %8s %10s\n", "op | engine | layout | threads", "cases",
                "refused", "elements", "failed", "bad elems");
    int64_t cases = 0, failed = 0, elements = 0;
    for (const auto& [key, s] : tally()) {
      std::printf("%-78s %6lld %7lld %10lld %8lld %10lld\n", key.c_str(),
                  static_cast<long long>(s.cases), static_cast<long long>(s.refused_both),
                  static_cast<long long>(s.elements), static_cast<long long>(s.failed_cases),
                  static_cast<long long>(s.failed_elements));
      cases += s.cases;
      failed += s.failed_cases;
      elements += s.elements;
    }
    std::printf("total: %lld cases, %lld outputs compared, %lld cases mismatching\n",
                static_cast<long long>(cases), static_cast<long long>(elements),
                static_cast<long long>(failed));
    for (const auto& [key, s] : tally()) {
      if (!s.first_refusal.empty())
        std::printf("refused both: %s: %s\n", key.c_str(), s.first_refusal.c_str());
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new Summary);
  return RUN_ALL_TESTS();
}
