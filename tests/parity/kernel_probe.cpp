// kernel_probe: qparity's kernels behind a JSON pipe, for check_kernel_parity.py.
//
// Reads ONE JSON request document from stdin and writes ONE JSON response document to stdout.
// A request is an object with an "op"; {"op": "batch", "requests": [...]} runs several and
// answers {"responses": [...]} in the same order. A request that fails (qparity throws, a field
// is missing, a value is out of range) answers {"error": "..."} in its place; a batch goes on.
//
// Float32 values travel as their uint32 bit patterns ("..._bits" fields), doubles as JSON numbers
// (Python's repr and nlohmann's 17-digit output both round-trip exactly). Everything numeric is
// done by the qparity library; this file only decodes, loops and encodes. Where PyTorch rounds a
// double scale to float before using it (quantize, the double fake-quant API), the probe does the
// same f(scale) and says so.
//
// Ops (fields; "[]" = array; shapes are int lists, element order is row-major/contiguous):
//   quantize                 dtype, scale, zero_point, x_bits[]                      -> q[]
//   quantize_per_channel     dtype, scales[], zero_points[], axis, shape, x_bits[]   -> q[]
//   dequantize               scale, zero_point, q[]                                  -> x_bits[]
//   dequantize_per_channel   scales[], zero_points[], axis, shape, q[]               -> x_bits[]
//   fake_quantize_per_tensor (scale_bits | scale), zero_point, quant_min, quant_max, x_bits[]
//                                                            -> y_bits[], bin[], in_range[]
//   fake_quantize_per_channel scale_bits[], zero_points[], axis, shape, quant_min, quant_max, x_bits[]
//                                                            -> y_bits[], bin[], in_range[]
//   python_observer_qparams  spec, min_bits[], max_bits[]
//                                                            -> scale_bits[], zero_point[], quant_min, quant_max
//   choose_quantization_params rule ("aten"|"fbgemm"), min_bits[], max_bits[],
//                            qmin, qmax, preserve_sparsity (each a scalar or an array)
//                                                            -> scale_bits[], scale_double[], zero_point[]
//   moving_average           running_bits[], current_bits[], averaging_constant (double)
//                                                            -> bits[]
//   fake_quant_module        kind ("fused"|"fake_quantize"), spec, min_bits, max_bits,
//                            scale_bits, zero_point (the buffers before the forward),
//                            hand_set_scale (bool), backend (fused rule source), x_bits[]
//                            -> forward {y_bits[], scale_bits, zero_point, buffer_scale_bits,
//                                        buffer_zero_point}, convert {scale_bits, zero_point}
//   conv2d                   backend, input (quint8 bins[]), input_shape[4], input_scale,
//                            input_zero_point, weight (qint8 bins[]), weight_shape[4],
//                            weight_scales[], weight_zero_points[], per_channel,
//                            bias_bits[] | null, output_scale, output_zero_point, relu,
//                            stride[2], padding[2], dilation[2], groups, cpu? (see get_profile)
//                            -> out[], shape[4], profile {name, accumulation (the model this
//                               conv used, conv2d_accumulation), requant, onednn_isa?}
// spec = {dtype, qscheme, quant_min?, quant_max?, reduce_range?, eps_bits?}; without
// quant_min/quant_max the observer's default range is used (custom_range = false).
// conv2d scales must be float32 values (qparity's kernel API holds float scales, as a converted
// module's are); a double that is not one is refused rather than silently rounded.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <exception>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "qparity/numerics/dtype.h"
#include "qparity/numerics/fake_quant.h"
#include "qparity/numerics/fake_quant_module.h"
#include "qparity/numerics/float32.h"
#include "qparity/numerics/qparam_rules.h"
#include "qparity/numerics/quantize.h"
#include "qparity/ops/conv2d.h"
#include "qparity/profile/backend_profile.h"

namespace {

using nlohmann::json;
using qparity::QDType;
using qparity::QRange;

float bits_to_float(uint32_t b) { return std::bit_cast<float>(b); }
uint32_t float_to_bits(float f) { return std::bit_cast<uint32_t>(f); }

std::vector<float> get_floats(const json& j, const char* key) {
  const auto raw = j.at(key).get<std::vector<uint32_t>>();
  std::vector<float> out;
  out.reserve(raw.size());
  for (uint32_t b : raw) out.push_back(bits_to_float(b));
  return out;
}

json float_bits_array(const std::vector<float>& v) {
  json a = json::array();
  for (float f : v) a.push_back(float_to_bits(f));
  return a;
}

QDType get_dtype(const json& j) {
  const auto name = j.at("dtype").get<std::string>();
  const auto d = qparity::parse_qdtype(name);
  if (!d) throw std::invalid_argument("unknown dtype '" + name + "'");
  return *d;
}

qparity::QScheme parse_qscheme(const std::string& s) {
  if (s == "per_tensor_affine") return qparity::QScheme::kPerTensorAffine;
  if (s == "per_tensor_symmetric") return qparity::QScheme::kPerTensorSymmetric;
  if (s == "per_channel_affine") return qparity::QScheme::kPerChannelAffine;
  if (s == "per_channel_symmetric") return qparity::QScheme::kPerChannelSymmetric;
  throw std::invalid_argument("unknown qscheme '" + s + "'");
}

qparity::QuantSpec get_spec(const json& j) {
  qparity::QuantSpec s;
  s.dtype = get_dtype(j);
  s.qscheme = parse_qscheme(j.at("qscheme").get<std::string>());
  const bool has_min = j.contains("quant_min") && !j.at("quant_min").is_null();
  const bool has_max = j.contains("quant_max") && !j.at("quant_max").is_null();
  if (has_min != has_max) throw std::invalid_argument("spec: give both quant_min and quant_max or neither");
  s.custom_range = has_min;
  if (has_min) {
    s.quant_min = j.at("quant_min").get<int64_t>();
    s.quant_max = j.at("quant_max").get<int64_t>();
  }
  s.reduce_range = j.value("reduce_range", false);
  if (j.contains("eps_bits")) s.eps = bits_to_float(j.at("eps_bits").get<uint32_t>());
  return s;
}

std::vector<int64_t> get_shape(const json& j) { return j.at("shape").get<std::vector<int64_t>>(); }

// Channel index of every element of a contiguous tensor of `shape`, along `axis`.
std::vector<size_t> channel_of_each(const std::vector<int64_t>& shape, int64_t axis, size_t numel) {
  if (axis < 0 || axis >= static_cast<int64_t>(shape.size())) {
    throw std::invalid_argument("axis " + std::to_string(axis) + " out of range");
  }
  int64_t total = 1;
  for (int64_t d : shape) total *= d;
  if (total != static_cast<int64_t>(numel)) {
    throw std::invalid_argument("shape has " + std::to_string(total) + " elements, data has " +
                                std::to_string(numel));
  }
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t channels = shape[static_cast<size_t>(axis)];
  std::vector<size_t> ch(numel);
  for (size_t i = 0; i < numel; ++i) {
    ch[i] = static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
  }
  return ch;
}

void check_count(size_t have, int64_t want, const char* what) {
  if (static_cast<int64_t>(have) != want) {
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(have) + " given, " +
                                std::to_string(want) + " needed");
  }
}

// ---------------------------------------------------------------------------------------------

json op_quantize(const json& r) {
  const QDType dtype = get_dtype(r);
  // torch.quantize_per_tensor keeps the double scale but computes with f(scale) (eq. 5.1).
  const qparity::QuantGrid g{qparity::to_f32(r.at("scale").get<double>()),
                             r.at("zero_point").get<int64_t>(), qparity::storage_range(dtype)};
  json q = json::array();
  for (float x : get_floats(r, "x_bits")) q.push_back(qparity::quantize_value(x, g));
  return {{"q", q}};
}

json op_quantize_per_channel(const json& r) {
  const QDType dtype = get_dtype(r);
  const auto scales = r.at("scales").get<std::vector<double>>();
  const auto zps = r.at("zero_points").get<std::vector<int64_t>>();
  const auto shape = get_shape(r);
  const auto axis = r.at("axis").get<int64_t>();
  const auto xs = get_floats(r, "x_bits");
  const auto ch = channel_of_each(shape, axis, xs.size());
  check_count(scales.size(), shape[static_cast<size_t>(axis)], "scales");
  check_count(zps.size(), shape[static_cast<size_t>(axis)], "zero_points");
  json q = json::array();
  for (size_t i = 0; i < xs.size(); ++i) {
    const qparity::QuantGrid g{qparity::to_f32(scales[ch[i]]), zps[ch[i]], qparity::storage_range(dtype)};
    q.push_back(qparity::quantize_value(xs[i], g));
  }
  return {{"q", q}};
}

json op_dequantize(const json& r) {
  const float scale = qparity::to_f32(r.at("scale").get<double>());
  const auto zp = r.at("zero_point").get<int64_t>();
  std::vector<float> out;
  for (int64_t q : r.at("q").get<std::vector<int64_t>>()) {
    out.push_back(qparity::dequantize_value(q, scale, zp));
  }
  return {{"x_bits", float_bits_array(out)}};
}

json op_dequantize_per_channel(const json& r) {
  const auto scales = r.at("scales").get<std::vector<double>>();
  const auto zps = r.at("zero_points").get<std::vector<int64_t>>();
  const auto shape = get_shape(r);
  const auto axis = r.at("axis").get<int64_t>();
  const auto qs = r.at("q").get<std::vector<int64_t>>();
  const auto ch = channel_of_each(shape, axis, qs.size());
  check_count(scales.size(), shape[static_cast<size_t>(axis)], "scales");
  check_count(zps.size(), shape[static_cast<size_t>(axis)], "zero_points");
  std::vector<float> out;
  out.reserve(qs.size());
  for (size_t i = 0; i < qs.size(); ++i) {
    out.push_back(qparity::dequantize_value_per_channel(qs[i], scales[ch[i]], zps[ch[i]]));
  }
  return {{"x_bits", float_bits_array(out)}};
}

json fake_quant_results(const std::vector<float>& xs, const std::vector<qparity::QuantGrid>& grids,
                        const std::vector<size_t>& which) {
  std::vector<float> y;
  json bins = json::array();
  json in_range = json::array();
  for (size_t i = 0; i < xs.size(); ++i) {
    const qparity::QuantGrid& g = grids[which.empty() ? 0 : which[i]];
    y.push_back(qparity::fake_quantize_value(xs[i], g));
    bins.push_back(qparity::fake_quant_bin(xs[i], g));
    const int64_t unclamped = qparity::fake_quant_unclamped_bin(xs[i], g.scale, g.zero_point);
    in_range.push_back(g.range.min <= unclamped && unclamped <= g.range.max);
  }
  return {{"y_bits", float_bits_array(y)}, {"bin", bins}, {"in_range", in_range}};
}

json op_fake_quantize_per_tensor(const json& r) {
  // The tensor-qparams API hands the kernel a float scale (scale_bits); the double API casts
  // its double to float (scale).
  float scale = 0.0f;
  if (r.contains("scale_bits")) {
    scale = bits_to_float(r.at("scale_bits").get<uint32_t>());
  } else {
    scale = qparity::to_f32(r.at("scale").get<double>());
  }
  const QRange range{r.at("quant_min").get<int64_t>(), r.at("quant_max").get<int64_t>()};
  const std::vector<qparity::QuantGrid> grids{{scale, r.at("zero_point").get<int64_t>(), range}};
  return fake_quant_results(get_floats(r, "x_bits"), grids, {});
}

json op_fake_quantize_per_channel(const json& r) {
  const auto scales = get_floats(r, "scale_bits");
  const auto zps = r.at("zero_points").get<std::vector<int64_t>>();
  const auto shape = get_shape(r);
  const auto axis = r.at("axis").get<int64_t>();
  const QRange range{r.at("quant_min").get<int64_t>(), r.at("quant_max").get<int64_t>()};
  const auto xs = get_floats(r, "x_bits");
  const auto ch = channel_of_each(shape, axis, xs.size());
  check_count(scales.size(), shape[static_cast<size_t>(axis)], "scale_bits");
  check_count(zps.size(), shape[static_cast<size_t>(axis)], "zero_points");
  std::vector<qparity::QuantGrid> grids;
  for (size_t c = 0; c < scales.size(); ++c) grids.push_back({scales[c], zps[c], range});
  return fake_quant_results(xs, grids, ch);
}

json op_python_observer_qparams(const json& r) {
  const qparity::QuantSpec spec = get_spec(r.at("spec"));
  const auto mins = get_floats(r, "min_bits");
  const auto maxs = get_floats(r, "max_bits");
  check_count(maxs.size(), static_cast<int64_t>(mins.size()), "max_bits");
  std::vector<float> scales;
  json zps = json::array();
  json branches = json::array();
  for (size_t i = 0; i < mins.size(); ++i) {
    const auto d = qparity::python_observer_qparams(mins[i], maxs[i], spec);
    scales.push_back(d.scale);
    zps.push_back(d.zero_point);
    branches.push_back(d.branch);
  }
  const QRange range = qparity::observer_quant_range(spec);
  return {{"scale_bits", float_bits_array(scales)}, {"zero_point", zps}, {"branch", branches},
          {"quant_min", range.min}, {"quant_max", range.max}};
}

// A field that is either one value for every case or an array with one per case.
template <typename T>
T scalar_or_item(const json& r, const char* key, size_t i) {
  const json& v = r.at(key);
  return v.is_array() ? v.at(i).get<T>() : v.get<T>();
}

qparity::QParamRule parse_rule(const std::string& s) {
  if (s == "aten") return qparity::QParamRule::kAtenChooseQuantizationParams;
  if (s == "fbgemm") return qparity::QParamRule::kFbgemmChooseQuantizationParams;
  if (s == "python") return qparity::QParamRule::kPythonObserver;
  throw std::invalid_argument("unknown rule '" + s + "'");
}

json op_choose_quantization_params(const json& r) {
  const auto rule = parse_rule(r.at("rule").get<std::string>());
  if (rule == qparity::QParamRule::kPythonObserver) {
    throw std::invalid_argument("choose_quantization_params: rule must be aten or fbgemm");
  }
  const auto mins = get_floats(r, "min_bits");
  const auto maxs = get_floats(r, "max_bits");
  check_count(maxs.size(), static_cast<int64_t>(mins.size()), "max_bits");
  std::vector<float> scales;
  json scale_double = json::array();
  json zps = json::array();
  json branches = json::array();
  for (size_t i = 0; i < mins.size(); ++i) {
    const QRange range{scalar_or_item<int64_t>(r, "qmin", i), scalar_or_item<int64_t>(r, "qmax", i)};
    const auto d = qparity::choose_quantization_params(
        rule, mins[i], maxs[i], range, scalar_or_item<bool>(r, "preserve_sparsity", i));
    scales.push_back(d.scale);
    scale_double.push_back(d.scale_before_float);
    zps.push_back(d.zero_point);
    branches.push_back(d.branch);
  }
  return {{"scale_bits", float_bits_array(scales)}, {"scale_double", scale_double},
          {"zero_point", zps}, {"branch", branches}};
}

json op_moving_average(const json& r) {
  const auto running = get_floats(r, "running_bits");
  const auto current = get_floats(r, "current_bits");
  check_count(current.size(), static_cast<int64_t>(running.size()), "current_bits");
  // Both the fused op (a float parameter) and the Python observer (a scalar multiplied into a
  // float32 tensor) use the averaging constant as f(c).
  const float c = qparity::to_f32(r.at("averaging_constant").get<double>());
  std::vector<float> out;
  for (size_t i = 0; i < running.size(); ++i) {
    out.push_back(qparity::moving_average_update(running[i], current[i], c));
  }
  return {{"bits", float_bits_array(out)}};
}

// The profile of an engine on this machine (detect_cpu_features()), or on the CPU a request's
// optional "cpu" object describes. The object replaces detection entirely; a flag it leaves out
// is false: {"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx_vnni"}
// (bools), and "avx512_core" as shorthand for the four AVX512 F/BW/VL/DQ flags. The override is
// for runs whose real oneDNN is capped below this machine's ISA (DNNL_MAX_CPU_ISA=AVX2 or
// AVX512_CORE), so that the probe's onednn profile dispatches like the capped library.
qparity::BackendProfile get_profile(const std::string& name, const json& r) {
  qparity::CpuFeatures cpu = qparity::detect_cpu_features();
  if (r.contains("cpu")) {
    const json& c = r.at("cpu");
    for (const auto& [key, value] : c.items()) {
      static const char* const known[] = {"avx2",     "avx512f",     "avx512bw", "avx512vl",
                                          "avx512dq", "avx512_vnni", "avx_vnni", "avx512_core"};
      if (std::find(std::begin(known), std::end(known), key) == std::end(known)) {
        throw std::invalid_argument("unknown cpu feature '" + key + "'");
      }
      if (!value.is_boolean()) {
        throw std::invalid_argument("cpu feature '" + key + "' must be a bool");
      }
    }
    const bool avx512_core = c.value("avx512_core", false);
    cpu = qparity::CpuFeatures{};
    cpu.avx2 = c.value("avx2", false);
    cpu.avx512f = avx512_core || c.value("avx512f", false);
    cpu.avx512bw = avx512_core || c.value("avx512bw", false);
    cpu.avx512vl = avx512_core || c.value("avx512vl", false);
    cpu.avx512dq = avx512_core || c.value("avx512dq", false);
    cpu.avx512_vnni = c.value("avx512_vnni", false);
    cpu.avx_vnni = c.value("avx_vnni", false);
  }
  auto p = qparity::make_backend_profile(name, cpu);
  if (!p) throw std::invalid_argument("unknown backend '" + name + "'");
  return *p;
}

json op_fake_quant_module(const json& r) {
  qparity::FakeQuantModule m;
  const auto kind = r.at("kind").get<std::string>();
  if (kind == "fused") {
    m.kind = qparity::FakeQuantModuleKind::kFusedMovingAvgObsFakeQuantize;
  } else if (kind == "fake_quantize") {
    m.kind = qparity::FakeQuantModuleKind::kFakeQuantize;
  } else {
    throw std::invalid_argument("unknown module kind '" + kind + "'");
  }
  m.spec = get_spec(r.at("spec"));
  m.min_val = bits_to_float(r.at("min_bits").get<uint32_t>());
  m.max_val = bits_to_float(r.at("max_bits").get<uint32_t>());
  m.zero_point_buffer = r.at("zero_point").get<int64_t>();
  const float scale = bits_to_float(r.at("scale_bits").get<uint32_t>());
  if (r.value("hand_set_scale", false)) {
    qparity::hand_set_scale(m, static_cast<double>(scale));
  } else {
    m.scale_buffer = scale;
  }
  m.observer_enabled = false;
  const auto profile = get_profile(r.value("backend", std::string("qnnpack")), r);
  const auto used = qparity::fake_quant_forward(m, profile.fused_fake_quant_rule);
  std::vector<float> y;
  for (float x : get_floats(r, "x_bits")) y.push_back(qparity::fake_quantize_value(x, used.grid));
  const auto conv = qparity::convert_qparams(m);
  return {{"forward",
           {{"y_bits", float_bits_array(y)},
            {"scale_bits", float_to_bits(used.grid.scale)},
            {"zero_point", used.grid.zero_point},
            {"buffer_scale_bits", float_to_bits(m.scale_buffer)},
            {"buffer_zero_point", m.zero_point_buffer},
            {"provenance", used.provenance}}},
          {"convert",
           {{"scale_bits", float_to_bits(conv.grid.scale)},
            {"zero_point", conv.grid.zero_point},
            {"provenance", conv.provenance}}}};
}

float exact_float(double v, const char* what) {
  const auto f = static_cast<float>(v);
  if (static_cast<double>(f) != v) {
    throw std::invalid_argument(std::string("conv2d: ") + what +
                                " is not a float32 value; qparity's conv API holds float scales");
  }
  return f;
}

qparity::Shape4 get_shape4(const json& j, const char* key) {
  const auto v = j.at(key).get<std::vector<int64_t>>();
  if (v.size() != 4) throw std::invalid_argument(std::string(key) + " must have 4 dimensions");
  return {v[0], v[1], v[2], v[3]};
}

std::pair<int64_t, int64_t> get_pair(const json& j, const char* key, int64_t fallback) {
  if (!j.contains(key)) return {fallback, fallback};
  const auto v = j.at(key).get<std::vector<int64_t>>();
  if (v.size() != 2) throw std::invalid_argument(std::string(key) + " must have 2 values");
  return {v[0], v[1]};
}

json op_conv2d(const json& r) {
  const auto profile = get_profile(r.at("backend").get<std::string>(), r);
  const auto input_raw = r.at("input").get<std::vector<int64_t>>();
  const auto weight_raw = r.at("weight").get<std::vector<int64_t>>();
  std::vector<uint8_t> input;
  input.reserve(input_raw.size());
  for (int64_t v : input_raw) {
    if (v < 0 || v > 255) throw std::invalid_argument("conv2d: input bin out of quint8 range");
    input.push_back(static_cast<uint8_t>(v));
  }
  std::vector<int8_t> weight;
  weight.reserve(weight_raw.size());
  for (int64_t v : weight_raw) {
    if (v < -128 || v > 127) throw std::invalid_argument("conv2d: weight bin out of qint8 range");
    weight.push_back(static_cast<int8_t>(v));
  }
  std::vector<float> bias;
  if (r.contains("bias_bits") && !r.at("bias_bits").is_null()) bias = get_floats(r, "bias_bits");

  qparity::QuantizedConv2dArgs a;
  a.input = input;
  a.input_shape = get_shape4(r, "input_shape");
  a.input_scale = exact_float(r.at("input_scale").get<double>(), "input_scale");
  a.input_zero_point = r.at("input_zero_point").get<int64_t>();
  a.weight = weight;
  a.weight_shape = get_shape4(r, "weight_shape");
  for (double s : r.at("weight_scales").get<std::vector<double>>()) {
    a.weight_scales.push_back(exact_float(s, "a weight scale"));
  }
  a.weight_zero_points = r.at("weight_zero_points").get<std::vector<int64_t>>();
  a.weight_per_channel = r.at("per_channel").get<bool>();
  a.bias = bias;
  a.output_scale = exact_float(r.at("output_scale").get<double>(), "output_scale");
  a.output_zero_point = r.at("output_zero_point").get<int64_t>();
  a.relu = r.value("relu", false);
  const auto [sh, sw] = get_pair(r, "stride", 1);
  const auto [ph, pw] = get_pair(r, "padding", 0);
  const auto [dh, dw] = get_pair(r, "dilation", 1);
  a.geometry = {sh, sw, ph, pw, dh, dw, r.value("groups", int64_t{1})};

  const auto out = qparity::conv2d_quantized(profile, a);
  const auto shape = qparity::conv2d_output_shape(a.input_shape, a.weight_shape, a.geometry);
  json outs = json::array();
  for (uint8_t v : out) outs.push_back(static_cast<int>(v));
  const qparity::AccumulationModel used = qparity::conv2d_accumulation(profile, a);
  json prof = {{"name", profile.name},
               {"accumulation", std::string(qparity::to_string(used))},
               {"requant", std::string(qparity::to_string(profile.requant))}};
  if (profile.onednn_isa) prof["onednn_isa"] = std::string(qparity::to_string(*profile.onednn_isa));
  return {{"out", outs}, {"shape", {shape.n, shape.c, shape.h, shape.w}}, {"profile", prof}};
}

json run_one(const json& r) {
  try {
    const auto op = r.at("op").get<std::string>();
    if (op == "quantize") return op_quantize(r);
    if (op == "quantize_per_channel") return op_quantize_per_channel(r);
    if (op == "dequantize") return op_dequantize(r);
    if (op == "dequantize_per_channel") return op_dequantize_per_channel(r);
    if (op == "fake_quantize_per_tensor") return op_fake_quantize_per_tensor(r);
    if (op == "fake_quantize_per_channel") return op_fake_quantize_per_channel(r);
    if (op == "python_observer_qparams") return op_python_observer_qparams(r);
    if (op == "choose_quantization_params") return op_choose_quantization_params(r);
    if (op == "moving_average") return op_moving_average(r);
    if (op == "fake_quant_module") return op_fake_quant_module(r);
    if (op == "conv2d") return op_conv2d(r);
    return {{"error", "unknown op '" + op + "'"}};
  } catch (const std::exception& e) {
    return {{"error", e.what()}};
  }
}

}  // namespace

int main() {
  json request;
  try {
    request = json::parse(std::cin);
  } catch (const std::exception& e) {
    std::cout << json{{"error", std::string("bad request: ") + e.what()}}.dump() << '\n';
    return 2;
  }
  json response;
  if (request.is_object() && request.value("op", std::string()) == "batch") {
    json responses = json::array();
    for (const json& r : request.at("requests")) responses.push_back(run_one(r));
    response = {{"responses", responses}};
  } else {
    response = run_one(request);
  }
  std::cout << response.dump() << '\n';
  return 0;
}
