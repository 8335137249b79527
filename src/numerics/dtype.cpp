#include "qparity/numerics/dtype.h"

#include <limits>

namespace qparity {

QRange storage_range(QDType dtype) {
  switch (dtype) {
    case QDType::kQUInt8:
      return {0, 255};
    case QDType::kQInt8:
      return {-128, 127};
    case QDType::kQInt32:
      return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
  }
  return {0, 0};
}

std::string_view to_string(QDType dtype) {
  switch (dtype) {
    case QDType::kQUInt8:
      return "quint8";
    case QDType::kQInt8:
      return "qint8";
    case QDType::kQInt32:
      return "qint32";
  }
  return "?";
}

std::optional<QDType> parse_qdtype(std::string_view name) {
  if (name == "quint8") return QDType::kQUInt8;
  if (name == "qint8") return QDType::kQInt8;
  if (name == "qint32") return QDType::kQInt32;
  return std::nullopt;
}

std::string_view to_string(QScheme scheme) {
  switch (scheme) {
    case QScheme::kPerTensorAffine:
      return "per_tensor_affine";
    case QScheme::kPerTensorSymmetric:
      return "per_tensor_symmetric";
    case QScheme::kPerChannelAffine:
      return "per_channel_affine";
    case QScheme::kPerChannelSymmetric:
      return "per_channel_symmetric";
  }
  return "?";
}

std::optional<QScheme> parse_weight_qscheme(std::string_view name) {
  for (QScheme s : {QScheme::kPerTensorAffine, QScheme::kPerTensorSymmetric,
                    QScheme::kPerChannelAffine, QScheme::kPerChannelSymmetric}) {
    if (name == to_string(s)) return s;
  }
  return std::nullopt;
}

bool is_symmetric(QScheme scheme) {
  return scheme == QScheme::kPerTensorSymmetric || scheme == QScheme::kPerChannelSymmetric;
}

bool is_per_channel(QScheme scheme) {
  return scheme == QScheme::kPerChannelAffine || scheme == QScheme::kPerChannelSymmetric;
}

}  // namespace qparity
