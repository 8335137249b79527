#include "qparity/diagnose/model_trace.h"

#include <cmath>
#include <stdexcept>

#include "common/format.h"
#include "qparity/numerics/fake_quant.h"
#include "qparity/numerics/requantize.h"
#include "qparity/ops/conv2d.h"
#include "qparity/run/qconv_args.h"

namespace qparity::diagnose {
namespace {

using model::OpKind;
using qparity::detail::g9;

const model::Layer* find_layer(const std::vector<model::Layer>& layers, const std::string& name) {
  for (const auto& l : layers) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

float value_at(const run::Tensor& t, int64_t i) {
  const auto k = static_cast<size_t>(i);
  return t.quantized() ? dequantize_value(t.bins[k], static_cast<float>(t.scale), t.zero_point)
                       : t.values[k];
}

std::string value_text(const run::Tensor& t, int64_t i) {
  if (!t.quantized()) return g9(t.values[static_cast<size_t>(i)]);
  return "bin " + std::to_string(t.bins[static_cast<size_t>(i)]) + " (" + g9(value_at(t, i)) + ")";
}

// The output element's conv coordinates: [N, M, OH, OW] for a conv, [rows, M] for a linear.
struct ConvElement {
  int64_t n = 0, m = 0, oh = 0, ow = 0;
};

ConvElement conv_element(const model::Dims& dims, int64_t index, bool linear) {
  if (linear) return {index / dims.back(), index % dims.back(), 0, 0};
  return {index / (dims[1] * dims[2] * dims[3]), (index / (dims[2] * dims[3])) % dims[1],
          (index / dims[3]) % dims[2], index % dims[3]};
}

const run::Tensor& value_of(const ModelPaths& p, model::ValueId id, run::Tensor& scratch) {
  const auto k = static_cast<size_t>(id);
  if (const auto& c = p.qat.values[k].constant) {
    scratch = run::float_tensor(c->dims, c->data);
    return scratch;
  }
  return p.qat_run.values[k];
}

class Tracer {
 public:
  Tracer(const ModelPaths& paths, const diff::LayerComparison& like, int64_t index,
         const BackendProfile& profile)
      : paths_(paths), like_(like), index_(index), profile_(profile) {}

  ModelElementTrace run() {
    trace_.layer = like_.name;
    trace_.op = like_.op;
    int64_t rest = index_;
    trace_.position.assign(like_.dims.size(), 0);
    for (size_t k = like_.dims.size(); k-- > 0;) {
      trace_.position[k] = rest % like_.dims[k];
      rest /= like_.dims[k];
    }
    const auto qat_layers = model::layers_of(paths_.qat);
    const auto int8_layers = model::layers_of(paths_.int8);
    qat_layer_ = find_layer(qat_layers, like_.name);
    int8_layer_ = find_layer(int8_layers, like_.name);
    if (int8_layer_ != nullptr && weighted_int8() != nullptr && qat_layer_ != nullptr) {
      conv_rows();
    } else {
      op_rows();
    }
    bin_rows();
    // Rounding to different integers that clamp (ReLU, range) to the same bin is no difference.
    if (trace_.fake_quant_bin == trace_.int8_bin) {
      for (auto& r : trace_.rows) r.differs = r.differs && r.stage != "rounded (RNE)";
    }
    for (size_t i = 0; i < trace_.rows.size(); ++i) {
      if (trace_.rows[i].differs) {
        trace_.first_difference = i;
        break;
      }
    }
    return std::move(trace_);
  }

 private:
  const model::Node* weighted_int8() const {
    for (const size_t i : int8_layer_->nodes) {
      const auto& n = paths_.int8.nodes[i];
      if (n.op == OpKind::kQConv2d || n.op == OpKind::kQLinear) return &n;
    }
    return nullptr;
  }

  const model::Node* float_conv() const {
    for (const size_t i : qat_layer_->nodes) {
      const auto& n = paths_.qat.nodes[i];
      if (n.op == OpKind::kConv2d || n.op == OpKind::kLinear) return &n;
    }
    return nullptr;
  }

  void row(std::string stage, std::string fq, std::string q, bool differs = false) {
    trace_.rows.push_back({std::move(stage), std::move(fq), std::move(q), differs});
  }

  // Conv / linear: taps, sum against accumulator, the QAT ops after the conv, requantization.
  void conv_rows() {
    const model::Node& qnode = *weighted_int8();
    const bool linear = qnode.op == OpKind::kQLinear;
    const auto& p = std::get<model::QConvParams>(qnode.params);
    const run::Tensor& qx = paths_.int8_run.values[static_cast<size_t>(qnode.inputs.at(0))];
    const QuantizedConv2dArgs args = run::quantized_conv_args(p, linear, qx);
    const ConvElement e = conv_element(like_.dims, index_, linear);
    const Shape4 out = conv2d_output_shape(args.input_shape, args.weight_shape, args.geometry);
    const int64_t flat = ((e.n * out.c + e.m) * out.h + e.oh) * out.w + e.ow;
    const std::vector<int32_t> acc = conv2d_accumulators(args, conv2d_accumulation(profile_, args));
    const auto channels = conv2d_requant_channels(profile_, args);
    const RequantChannel& ch = channels.at(channels.size() == 1 ? 0 : static_cast<size_t>(e.m));
    RequantTrace rq;
    requantize(acc.at(static_cast<size_t>(flat)), ch, &rq);
    const float w_scale =
        args.weight_scales.at(args.weight_scales.size() == 1 ? 0 : static_cast<size_t>(e.m));
    const int64_t w_zp = args.weight_zero_points.at(
        args.weight_zero_points.size() == 1 ? 0 : static_cast<size_t>(e.m));
    const double step = static_cast<double>(args.input_scale) * static_cast<double>(w_scale);

    const model::Node* fconv = float_conv();
    std::optional<FloatConv2dTrace> ft;
    run::Tensor wx;
    run::Tensor ww;
    run::Tensor wb;
    if (fconv != nullptr) {
      const run::Tensor& x = value_of(paths_, fconv->inputs.at(0), wx);
      const run::Tensor& w = value_of(paths_, fconv->inputs.at(1), ww);
      const run::Tensor* b =
          fconv->inputs.size() > 2 ? &value_of(paths_, fconv->inputs[2], wb) : nullptr;
      FloatConv2dArgs fa{.input = x.values,
                         .input_shape = args.input_shape,
                         .weight = w.values,
                         .weight_shape = args.weight_shape,
                         .bias = b ? std::span<const float>(b->values) : std::span<const float>(),
                         .geometry = args.geometry};
      if (x.values.size() == static_cast<size_t>(args.input_shape.numel()) &&
          w.values.size() == static_cast<size_t>(args.weight_shape.numel())) {
        ft = conv2d_float_trace(fa, e.n, e.m, e.oh, e.ow);
      }
    }
    if (ft) {
      // Inputs compare as values (both paths' grids are the layer input's); weights as the
      // integers each path multiplies, QAT's recovered from its fake-quantized weight on its grid.
      const std::optional<QuantGrid> qat_grid = weight_grid(*fconv, e.m);
      int64_t inputs_differ = 0;
      int64_t weights_differ = 0;
      for (const auto& tap : ft->taps) {
        const float q_in = dequantize_value(args.input[static_cast<size_t>(tap.input_index)],
                                            args.input_scale, args.input_zero_point);
        inputs_differ += q_in != tap.input;
        const int64_t q_w = args.weight[static_cast<size_t>(tap.weight_index)];
        weights_differ += qat_grid ? quantize_value(tap.weight, *qat_grid) != q_w
                                   : dequantize_value(q_w, w_scale, w_zp) != tap.weight;
      }
      const auto taps = static_cast<int64_t>(ft->taps.size());
      row("input values at the taps", std::to_string(taps) + " taps",
          inputs_differ == 0 ? "the same values"
                             : std::to_string(inputs_differ) + " of them differ (inherited)",
          inputs_differ > 0);
      std::string grids;
      if (qat_grid) {
        grids = " (QAT scale " + g9(qat_grid->scale) + " zp " +
                std::to_string(qat_grid->zero_point) + ", int8 " + g9(w_scale) + " zp " +
                std::to_string(w_zp) + ")";
      }
      row("weight integers at the taps", std::to_string(taps) + " taps",
          (weights_differ == 0 ? std::string("the same integers")
                               : std::to_string(weights_differ) + " of them differ") +
              grids,
          weights_differ > 0 ||
              (qat_grid && (qat_grid->scale != w_scale || qat_grid->zero_point != w_zp)));
      const double sum_steps = static_cast<double>(ft->sum) / step;
      row("sum of products", g9(ft->sum) + " (" + g9(sum_steps) + " accumulator steps)",
          std::to_string(rq.accumulator) + " steps of " + g9(step) + " = " +
              g9(rq.accumulator * step),
          std::llround(sum_steps) != rq.accumulator);
    } else {
      row("sum of products", "", std::to_string(rq.accumulator) + " steps of " + g9(step));
    }
    row("bias", ft ? g9(ft->with_bias - ft->sum) + " (QAT's conv bias)" : "",
        p.weight.bias.empty() ? "none" : g9(p.weight.bias.at(static_cast<size_t>(e.m))));
    qat_chain_rows(fconv);
    requant_rows(rq, ch);
  }

  // The grid QAT's weight fake-quant used for output channel m (nullopt: the conv's weight is not
  // a fake-quant's output).
  std::optional<QuantGrid> weight_grid(const model::Node& conv, int64_t m) const {
    for (const auto& use : paths_.qat_run.fake_quant_uses) {
      if (paths_.qat.nodes[use.node].output != conv.inputs.at(1) || use.channels.empty()) continue;
      return use.channels[use.channels.size() == 1 ? 0 : static_cast<size_t>(m)].grid;
    }
    return std::nullopt;
  }

  // The QAT ops after the conv that keep the output's shape (ConvBn: scale, bias, BN, ReLU).
  void qat_chain_rows(const model::Node* after) {
    bool started = after == nullptr;
    for (const size_t i : qat_layer_->nodes) {
      const auto& n = paths_.qat.nodes[i];
      if (&n == after) {
        started = true;
      }
      if (!started || n.op == OpKind::kFakeQuant) continue;
      const run::Tensor& v = paths_.qat_run.values[static_cast<size_t>(n.output)];
      if (v.numel() != like_.numel) continue;
      row("QAT " + std::string(model::to_string(n.op)), value_text(v, index_), "");
    }
  }

  void requant_rows(const RequantTrace& rq, const RequantChannel& ch) {
    const auto fq = fake_quant_input();
    std::string scheme = std::string(to_string(ch.scheme));
    if (fq) {
      row("value to round (QAT: x * f(1/s))",
          g9(fq->input) + " * " + g9(fq->inv_scale) + " = " + g9(fq->pre_rounding),
          g9(rq.pre_rounding) + " (" + scheme + ", multiplier " + g9(ch.multiplier) + ")");
      row("rounded (RNE)", g9(fq->rounded), std::to_string(rq.rounded),
          static_cast<int64_t>(fq->rounded) != rq.rounded &&
              ch.scheme != RequantScheme::kOnednnReciprocalFp32);
    } else {
      row("value to round", "", g9(rq.pre_rounding) + " (" + scheme + ")");
      row("rounded (RNE)", "", std::to_string(rq.rounded));
    }
  }

  // The fake-quant stages of the layer's output fake-quant at this element (eq. 4.1).
  std::optional<FakeQuantTrace> fake_quant_input() const {
    if (qat_layer_ == nullptr || !like_.fake_quant_grid_is_own) return std::nullopt;
    const model::Node& last = paths_.qat.nodes[qat_layer_->nodes.back()];
    if (last.op != OpKind::kFakeQuant) return std::nullopt;
    const run::Tensor& x = paths_.qat_run.values[static_cast<size_t>(last.inputs.at(0))];
    if (x.numel() != like_.numel || x.quantized()) return std::nullopt;
    return fake_quant_trace(x.values[static_cast<size_t>(index_)], like_.fake_quant_grid);
  }

  // Other layers: every op's output at this element, QAT's then int8's.
  void op_rows() {
    if (qat_layer_ != nullptr) {
      for (const size_t i : qat_layer_->nodes) {
        const auto& n = paths_.qat.nodes[i];
        const run::Tensor& v = paths_.qat_run.values[static_cast<size_t>(n.output)];
        if (v.numel() == like_.numel)
          row("QAT " + std::string(model::to_string(n.op)), value_text(v, index_), "");
      }
    }
    if (int8_layer_ != nullptr) {
      for (const size_t i : int8_layer_->nodes) {
        const auto& n = paths_.int8.nodes[i];
        const run::Tensor& v = paths_.int8_run.values[static_cast<size_t>(n.output)];
        if (v.numel() == like_.numel)
          row("int8 " + std::string(model::to_string(n.op)), "", value_text(v, index_));
      }
    }
  }

  // The bins the layer comparison compares, and the values they stand for.
  void bin_rows() {
    const run::Tensor& fq = paths_.qat_run.values[static_cast<size_t>(like_.fake_quant_value)];
    const run::Tensor& q = paths_.int8_run.values[static_cast<size_t>(like_.int8_value)];
    const std::vector<int32_t> dq = diff::layer_dq(like_, fq, q);
    const float fv = value_at(fq, index_);
    trace_.fake_quant_bin = quantize_value(fv, like_.fake_quant_grid);
    trace_.int8_bin = trace_.fake_quant_bin + dq[static_cast<size_t>(index_)];
    row("output bin (+ zero point, clamped)",
        std::to_string(trace_.fake_quant_bin) + " (grid " + g9(like_.fake_quant_grid.scale) +
            ", zp " + std::to_string(like_.fake_quant_grid.zero_point) + ")",
        std::to_string(trace_.int8_bin) + " (grid " + g9(like_.int8_grid.scale) + ", zp " +
            std::to_string(like_.int8_grid.zero_point) + ")",
        dq[static_cast<size_t>(index_)] != 0);
    row("output value", g9(fv), g9(value_at(q, index_)), value_at(q, index_) != fv);
  }

  const ModelPaths& paths_;
  const diff::LayerComparison& like_;
  int64_t index_;
  const BackendProfile& profile_;
  const model::Layer* qat_layer_ = nullptr;
  const model::Layer* int8_layer_ = nullptr;
  ModelElementTrace trace_;
};

}  // namespace

ModelElementTrace trace_model_element(const ModelPaths& paths,
                                      const diff::ModelComparison& comparison, size_t layer,
                                      int64_t index, const BackendProfile& profile) {
  const diff::LayerComparison& like = comparison.layers.at(layer);
  if (index < 0 || index >= like.numel) {
    throw std::invalid_argument("element " + std::to_string(index) + " is outside layer '" +
                                like.name + "' (" + std::to_string(like.numel) + " elements)");
  }
  return Tracer(paths, like, index, profile).run();
}

}  // namespace qparity::diagnose
