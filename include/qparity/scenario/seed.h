// The seed experiment (shared/docs/seed-experiment.md): QuantStub -> Conv2d(3,3,1x1) with
// weights k·I and zero bias -> ReLU (fused) -> DeQuantStub, fed the ramp i/255 along W,
// run once as the QAT (fake-quant) model and once as its convert()ed int8 twin.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qparity/diff/compare.h"
#include "qparity/numerics/fake_quant_module.h"
#include "qparity/ops/conv2d.h"
#include "qparity/profile/backend_profile.h"

namespace qparity {

enum class ObserverKind {
  kFused,  // FusedMovingAvgObsFakeQuantize (the seed)
  kPlain,  // FakeQuantize
};

std::string_view to_string(ObserverKind kind);
std::optional<ObserverKind> parse_observer_kind(std::string_view name);

struct SeedOptions {
  double k = 1.0;               // conv weight multiplier, as the Python double k
  std::string backend = "fbgemm";
  ObserverKind observer = ObserverKind::kFused;
  int64_t rows = 256;           // input height; the width is always the 256-value ramp
};

constexpr int64_t kSeedChannels = 3;
constexpr int64_t kSeedWidth = 256;

// Bytes run_seed needs per input row (all buffers of both paths), for memory checks.
int64_t seed_bytes_per_row();

// One quantization point (input, weight, output) as one path used it.
struct QuantPoint {
  std::string name;  // "input", "weight", "output"
  QDType dtype = QDType::kQUInt8;
  QScheme qscheme = QScheme::kPerTensorAffine;
  UsedQParams used;
};

struct PathResult {
  std::string name;  // "fake_quant" or "int8"
  QuantPoint input, weight, output;
  std::vector<float> values;   // fake-quant output / dequantized int8 output, NCHW
  std::vector<uint8_t> bins;   // output bins, NCHW
};

struct SeedResult {
  SeedOptions options;
  BackendProfile profile;
  Shape4 output_shape;
  PathResult fake_quant;
  PathResult int8;
  Comparison compare;
};

// Validates options (throws std::invalid_argument naming the bad option) and runs both paths.
SeedResult run_seed(const SeedOptions& options, const CpuFeatures& cpu);

// Throws std::invalid_argument when an option is unusable.
void validate_seed_options(const SeedOptions& options);

}  // namespace qparity
