#include "diagnose/model_rerun.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <functional>
#include <thread>
#include <unordered_set>

#include "qparity/numerics/span_kernels.h"

namespace qparity::diagnose::detail {

ValueMap::ValueMap(const ModelPaths& paths, const diff::ModelComparison& comparison) {
  map_[paths.int8.input] = paths.qat.input;
  for (const auto& layer : comparison.layers) {
    if (layer.int8_value != model::kNoValue && layer.fake_quant_value != model::kNoValue) {
      map_[layer.int8_value] = layer.fake_quant_value;
    }
  }
}

model::ValueId ValueMap::fake_quant_of(model::ValueId int8_value) const {
  const auto it = map_.find(int8_value);
  return it == map_.end() ? model::kNoValue : it->second;
}

run::Tensor as_int8(const run::Tensor& qat_value, const run::Tensor& like) {
  if (!like.quantized()) return run::float_tensor(like.dims, qat_value.values);
  run::Tensor t = run::quantized_tensor(like.dims, std::vector<uint8_t>(qat_value.values.size()),
                                        like.scale, like.zero_point);
  quantize_span(qat_value.values, {static_cast<float>(like.scale), like.zero_point, {0, 255}},
                t.bins);
  return t;
}

std::optional<run::RunResult> fed_inputs(const ModelPaths& paths, const ValueMap& map,
                                         const model::Layer& layer, std::string& why) {
  std::unordered_set<model::ValueId> computed;
  run::RunResult fed;
  fed.values.resize(paths.int8.values.size());
  for (const size_t i : layer.nodes) {
    const model::Node& node = paths.int8.nodes[i];
    for (const model::ValueId id : node.inputs) {
      const auto k = static_cast<size_t>(id);
      if (computed.count(id) != 0 || paths.int8.values[k].constant || !fed.values[k].dims.empty())
        continue;
      const model::ValueId fq = map.fake_quant_of(id);
      const run::Tensor& like = paths.int8_run.values[k];
      if (fq == model::kNoValue) {
        why = "an input of it has no counterpart in the QAT model";
        return std::nullopt;
      }
      const run::Tensor& qat_value = paths.qat_run.values[static_cast<size_t>(fq)];
      if (qat_value.values.size() != static_cast<size_t>(like.numel())) {
        why = "an input of it has another size in the QAT model";
        return std::nullopt;
      }
      fed.values[k] = as_int8(qat_value, like);
    }
    computed.insert(node.output);
  }
  return fed;
}

model::Graph layer_graph(const model::Graph& int8, const model::Layer& layer) {
  model::Graph g;
  g.values = int8.values;
  g.nodes.resize(int8.nodes.size());
  for (const size_t i : layer.nodes) g.nodes[i] = int8.nodes[i];
  g.input = int8.input;
  g.output = int8.output;
  return g;
}

Mismatches count_mismatches(const std::vector<int32_t>& dq, const model::Dims& dims) {
  Mismatches m;
  const int64_t channels = dims.size() == 4 ? dims[1] : (dims.empty() ? 1 : dims.back());
  const int64_t inner = dims.size() == 4 ? dims[2] * dims[3] : 1;
  m.per_channel.assign(static_cast<size_t>(std::max<int64_t>(channels, 1)), 0);
  for (size_t i = 0; i < dq.size(); ++i) {
    if (dq[i] == 0) continue;
    ++m.total;
    m.max_abs_dq = std::max<int64_t>(m.max_abs_dq, std::abs(dq[i]));
    const auto c =
        static_cast<size_t>((static_cast<int64_t>(i) / inner) % std::max<int64_t>(channels, 1));
    ++m.per_channel[c];
  }
  return m;
}

void parallel_for(int64_t jobs, int threads, const std::function<void(int64_t)>& job) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(std::max<int64_t>(jobs, 0)));
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (int64_t i = next++; i < jobs; i = next++) {
      try {
        job(i);
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
    }
  };
  const int extra =
      static_cast<int>(std::clamp<int64_t>(std::min<int64_t>(threads, jobs) - 1, 0, 255));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(extra));
  for (int t = 0; t < extra; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace qparity::diagnose::detail
