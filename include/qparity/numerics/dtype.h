// Quantized element types and the integer ranges they admit.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace qparity {

enum class QDType { kQUInt8, kQInt8, kQInt32 };

// Closed integer interval [min, max] of quantized values.
struct QRange {
  int64_t min = 0;
  int64_t max = 0;
  friend bool operator==(const QRange&, const QRange&) = default;
};

// The full range of the storage type (quint8 [0,255], qint8 [-128,127], qint32).
QRange storage_range(QDType dtype);
std::string_view to_string(QDType dtype);
std::optional<QDType> parse_qdtype(std::string_view name);

enum class QScheme {
  kPerTensorAffine,
  kPerTensorSymmetric,
  kPerChannelAffine,
  kPerChannelSymmetric,
};

std::string_view to_string(QScheme scheme);
std::optional<QScheme> parse_weight_qscheme(std::string_view name);
bool is_symmetric(QScheme scheme);
bool is_per_channel(QScheme scheme);

}  // namespace qparity
