// libtorch's own quantized conv / linear as an oracle for the int8 path's re-runs (the diagnosis
// check, `qparity model --check-diagnosis`): the weights are packed with the engine's prepack
// and the op is called through the dispatcher, as a scripted int8 model calls it.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <mutex>
#include <stdexcept>

#include "torchscript_frontend.h"

namespace qparity::torchfe {
namespace {

c10::IValue call_op(const char* name, const char* overload, std::vector<c10::IValue> args) {
  const auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
  std::vector<c10::IValue> stack(std::move(args));
  handle.callBoxed(&stack);
  return stack.at(0);
}

at::Tensor quantized_input(const run::Tensor& x) {
  const at::Tensor bins =
      at::from_blob(const_cast<uint8_t*>(x.bins.data()), x.dims, at::kByte).clone();
  return at::_make_per_tensor_quantized_tensor(bins, x.scale, x.zero_point);
}

at::Tensor quantized_weight(const model::QuantizedWeight& w) {
  const at::Tensor ints =
      at::from_blob(const_cast<int8_t*>(w.data.data()), w.dims, at::kChar).clone();
  if (!w.per_channel)
    return at::_make_per_tensor_quantized_tensor(ints, w.scales.at(0), w.zero_points.at(0));
  const at::Tensor scales = at::tensor(at::ArrayRef<double>(w.scales), at::kDouble);
  const at::Tensor zero_points = at::tensor(at::ArrayRef<int64_t>(w.zero_points), at::kLong);
  return at::_make_per_channel_quantized_tensor(ints, scales, zero_points, 0);
}

c10::IValue bias_of(const model::QuantizedWeight& w) {
  if (w.bias.empty()) return c10::IValue();
  return at::tensor(at::ArrayRef<float>(w.bias), at::kFloat);
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

class TorchQuantizedKernels final : public run::QuantizedKernels {
 public:
  explicit TorchQuantizedKernels(int threads) : threads_(threads) {}
  std::string_view name() const override { return "libtorch 1.13.1 quantized::conv2d / linear"; }

  bool run(const model::Node& node, const run::Tensor& x, run::Tensor& out,
           std::string& why) override {
    if (at::get_num_threads() != threads_) at::set_num_threads(threads_);
    const auto& p = std::get<model::QConvParams>(node.params);
    const bool linear = node.op == model::OpKind::kQLinear;
    at::Tensor r;
    try {
      const at::Tensor qw = quantized_weight(p.weight);
      c10::IValue packed;
      if (linear) {
        packed = call_op("quantized::linear_prepack", "", {qw, bias_of(p.weight)});
        r = call_op(p.relu ? "quantized::linear_relu" : "quantized::linear", "",
                    {quantized_input(x), packed, p.output.scale, p.output.zero_point})
                .toTensor();
      } else {
        const auto& g = p.geometry;
        packed = call_op("quantized::conv2d_prepack", "",
                         {qw, bias_of(p.weight), std::vector<int64_t>{g.stride_h, g.stride_w},
                          std::vector<int64_t>{g.pad_h, g.pad_w},
                          std::vector<int64_t>{g.dilation_h, g.dilation_w}, g.groups});
        r = call_op(p.relu ? "quantized::conv2d_relu" : "quantized::conv2d", "new",
                    {quantized_input(x), packed, p.output.scale, p.output.zero_point})
                .toTensor();
      }
    } catch (const std::exception& e) {
      why = first_line(e.what());
      const std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.declined;
      if (stats_.first_declined.empty()) stats_.first_declined = node.layer + ": " + why;
      return false;
    }
    const at::Tensor bins = r.int_repr().contiguous();
    out = run::quantized_tensor(
        r.sizes().vec(),
        std::vector<uint8_t>(bins.data_ptr<uint8_t>(), bins.data_ptr<uint8_t>() + bins.numel()),
        r.q_scale(), r.q_zero_point());
    const std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.ran;
    return true;
  }

  Stats stats() const override {
    const std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  int threads_;
  mutable std::mutex mutex_;  // the diagnosis re-runs layers on several threads
  Stats stats_;
};

}  // namespace

std::unique_ptr<run::QuantizedKernels> make_torch_quantized_kernels(int torch_threads) {
  return std::make_unique<TorchQuantizedKernels>(torch_threads);
}

}  // namespace qparity::torchfe
