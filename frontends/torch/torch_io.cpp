// Inputs (.pt / .npy) and libtorch's float kernels for the QAT path.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "load_crash_guard.h"
#include "qparity/io/npy.h"
#include "torchscript_frontend.h"

namespace qparity::torchfe {
namespace {

std::string read_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::invalid_argument(file + ": cannot read the file");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void check_finite(const std::string& file, const run::Tensor& t) {
  for (size_t i = 0; i < t.values.size(); ++i) {
    if (!std::isfinite(t.values[i])) {
      throw std::invalid_argument(file + ": element " + std::to_string(i) + " of the input is " +
                                  (std::isnan(t.values[i]) ? "NaN" : "infinite") + "; inputs must be finite");
    }
  }
  if (t.values.empty()) throw std::invalid_argument(file + ": the input tensor is empty");
}

at::Tensor view_of(const run::Tensor& t) {
  return at::from_blob(const_cast<float*>(t.values.data()), t.dims, at::kFloat);
}

class TorchFloatKernels final : public run::FloatKernels {
 public:
  explicit TorchFloatKernels(int threads) : threads_(threads) {}
  std::string_view name() const override { return "libtorch 1.13.1 float kernels"; }

  bool run(const model::Node& node, std::span<const run::Tensor* const> in, bool channels_last,
           run::Tensor& out) override {
    // Setting the count rebuilds ATen's thread pools: only when it differs.
    if (at::get_num_threads() != threads_) at::set_num_threads(threads_);
    auto x = [&](size_t i) {
      // The first input in the layout the framework had it in: reductions run in memory order.
      return i == 0 && channels_last ? view_of(*in[i]).contiguous(at::MemoryFormat::ChannelsLast) : view_of(*in[i]);
    };
    auto optional = [&](size_t i) { return in.size() > i ? c10::optional<at::Tensor>(x(i)) : c10::nullopt; };
    at::Tensor r;
    switch (node.op) {
      case model::OpKind::kConv2d: {
        const auto& g = std::get<model::ConvParams>(node.params).geometry;
        r = at::conv2d(x(0), x(1), optional(2), {g.stride_h, g.stride_w}, {g.pad_h, g.pad_w},
                       {g.dilation_h, g.dilation_w}, g.groups);
        break;
      }
      case model::OpKind::kLinear:
        r = at::linear(x(0), x(1), optional(2));
        break;
      case model::OpKind::kBatchNorm: {
        const auto& p = std::get<model::BatchNormParams>(node.params);
        r = at::batch_norm(x(0), x(1), x(2), x(3), x(4), p.training, 0.1, p.eps, false);
        break;
      }
      case model::OpKind::kAdaptiveAvgPool2d: {
        const auto& p = std::get<model::AdaptivePoolParams>(node.params);
        r = at::adaptive_avg_pool2d(x(0), {p.out_h, p.out_w});
        break;
      }
      case model::OpKind::kAvgPool2d: {
        const auto& p = std::get<model::Pool2dParams>(node.params);
        r = at::avg_pool2d(x(0), {p.window.kernel_h, p.window.kernel_w}, {p.window.stride_h, p.window.stride_w},
                           {p.window.pad_h, p.window.pad_w},
                           p.window.ceil_mode, p.count_include_pad,
                           p.divisor_override ? c10::optional<int64_t>(*p.divisor_override) : c10::nullopt);
        break;
      }
      case model::OpKind::kMean: {
        const auto& p = std::get<model::MeanParams>(node.params);
        r = at::mean(x(0), p.dims, p.keepdim);
        break;
      }
      default:
        return false;
    }
    r = r.contiguous();
    out.dims = r.sizes().vec();
    out.values.assign(r.data_ptr<float>(), r.data_ptr<float>() + r.numel());
    return true;
  }

 private:
  int threads_;
};

}  // namespace

run::Tensor load_input(const std::string& file) {
  const std::string bytes = read_file(file);
  run::Tensor t;
  if (bytes.size() >= 6 && bytes.compare(0, 6, "\x93NUMPY", 6) == 0) {
    try {
      io::NpyArray a = io::parse_npy(bytes);
      t = run::float_tensor(std::move(a.dims), std::move(a.values));
    } catch (const std::exception& e) {
      throw std::invalid_argument(file + ": " + e.what());
    }
  } else {
    c10::IValue v;
    try {
      const LoadCrashGuard guard(file, "torch.save");
      v = torch::jit::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
    } catch (const std::exception& e) {
      std::string what = e.what();
      throw std::invalid_argument(file + ": not a tensor saved with torch.save or numpy.save (" +
                                  what.substr(0, what.find('\n')) + ")");
    }
    if (!v.isTensor()) {
      throw std::invalid_argument(file + ": holds a value of type " + v.tagKind() +
                                  ", not a tensor (save the input tensor itself: torch.save(x, FILE))");
    }
    const at::Tensor x = v.toTensor();
    if (x.scalar_type() != at::kFloat || x.is_quantized()) {
      throw std::invalid_argument(file + ": the tensor is " + std::string(c10::toString(x.scalar_type())) +
                                  "; qparity needs float32 (save x.float())");
    }
    if (x.layout() != at::kStrided) throw std::invalid_argument(file + ": the tensor is sparse; qparity needs a dense float32 tensor");
    const at::Tensor c = x.contiguous();
    t = run::float_tensor(c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel()));
  }
  check_finite(file, t);
  return t;
}

std::unique_ptr<run::FloatKernels> make_torch_float_kernels(int torch_threads) {
  return std::make_unique<TorchFloatKernels>(torch_threads);
}

}  // namespace qparity::torchfe
