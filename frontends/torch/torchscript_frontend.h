// The TorchScript frontend: reads a PyTorch 1.13.1 QAT model (traced after prepare_qat) and its
// int8 twin (scripted after convert), runs each once with libtorch while building the model IR
// from the ops that really executed, and keeps what libtorch computed for every IR value (the
// reference the emulation must equal bit for bit). Only this part of qparity links libtorch.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "qparity/model/graph.h"
#include "qparity/run/float_kernels.h"
#include "qparity/run/quantized_kernels.h"
#include "qparity/run/tensor.h"

namespace qparity::torchfe {

// One path as read and run: its IR graph, and libtorch's value for every IR value it computed
// (by ValueId; empty for inputs and constants).
struct LoadedPath {
  std::string file;
  model::Graph graph;
  std::vector<std::optional<run::Tensor>> reference;
  run::Tensor output;  // the real model's forward output (its own forward call, not the walk)
};

struct LoadOptions {
  std::string engine;     // qnnpack | onednn: set before the int8 model is loaded
  int torch_threads = 1;  // at::set_num_threads for the real runs and float kernels
};

// Throws std::invalid_argument naming the file and what is wrong (not TorchScript, wrong kind of
// model, an unsupported op with its layer, an input that does not fit).
LoadedPath load_qat_model(const std::string& file, const run::Tensor& input, const LoadOptions& options);
LoadedPath load_int8_model(const std::string& file, const run::Tensor& input, const LoadOptions& options);

// A float32 input saved with torch.save (.pt) or numpy.save (.npy, '<f4', C order). Throws
// std::invalid_argument naming the file for anything else, and for NaN or infinite values.
run::Tensor load_input(const std::string& file);

// libtorch's own float kernels for conv, linear, batch norm and average pooling.
std::unique_ptr<run::FloatKernels> make_torch_float_kernels(int torch_threads);

// libtorch's own quantized conv / linear (prepacked under the current quantized engine), an
// oracle for re-runs of the int8 path; it declines an op whose prepack or call fails.
std::unique_ptr<run::QuantizedKernels> make_torch_quantized_kernels(int torch_threads);

// Whether this libtorch build has the engine (qnnpack, onednn, fbgemm).
bool engine_available(const std::string& engine);

}  // namespace qparity::torchfe
