// The qparam rules on the cases docs/numerics.md tabulates (Table 2 in §2) (verified there against
// the real library; the parity suite re-checks them on random ranges).
#include <gtest/gtest.h>

#include "qparity/numerics/fake_quant_module.h"
#include "qparity/numerics/qparam_rules.h"

namespace qparity {
namespace {

QuantSpec symmetric_qint8() {
  return {.dtype = QDType::kQInt8, .qscheme = QScheme::kPerTensorSymmetric, .quant_min = -128,
          .quant_max = 127};
}

QuantSpec affine_quint8() {
  return {.dtype = QDType::kQUInt8, .qscheme = QScheme::kPerTensorAffine, .quant_min = 0,
          .quant_max = 255};
}

constexpr auto kAten = QParamRule::kAtenChooseQuantizationParams;
constexpr auto kFbgemm = QParamRule::kFbgemmChooseQuantizationParams;

TEST(QParamRules, SeedWeightRangeGoesAsymmetricInCppButStaysSymmetricInPython) {
  const auto cpp = derive_qparams(kAten, 0.0f, 1.0f, symmetric_qint8());
  EXPECT_EQ(cpp.scale, static_cast<float>(1.0 / 255.0));
  EXPECT_EQ(cpp.zero_point, -128);
  const auto py = python_observer_qparams(0.0f, 1.0f, symmetric_qint8());
  EXPECT_EQ(py.scale, 1.0f / 127.5f);
  EXPECT_EQ(py.zero_point, 0);
  EXPECT_NE(cpp.branch, py.branch);
}

TEST(QParamRules, StraddlingSymmetricRangeUses128And127) {
  const auto cpp = derive_qparams(kAten, -1.0f, 1.0f, symmetric_qint8());
  EXPECT_EQ(cpp.scale, static_cast<float>(1.0 / 127.0));
  EXPECT_EQ(cpp.zero_point, 0);  // RNE(-0.5) = -0 -> 0
  const auto py = python_observer_qparams(-1.0f, 1.0f, symmetric_qint8());
  EXPECT_EQ(py.scale, 1.0f / 127.5f);
}

TEST(QParamRules, SymmetricQuint8MidpointDiffers) {
  QuantSpec s = affine_quint8();
  s.qscheme = QScheme::kPerTensorSymmetric;
  EXPECT_EQ(derive_qparams(kAten, -1.0f, 1.0f, s).zero_point, 128);
  EXPECT_EQ(python_observer_qparams(-1.0f, 1.0f, s).zero_point, 127);
}

TEST(QParamRules, SmallScaleThresholdOnlyInCpp) {
  const auto cpp = derive_qparams(kAten, 0.0f, 0.005f, symmetric_qint8());
  EXPECT_EQ(cpp.scale, 6.1e-5f);
  EXPECT_NE(cpp.branch.find("SMALL_SCALE_THRESHOLD"), std::string::npos);
  const auto py = python_observer_qparams(-0.005f, 0.005f, symmetric_qint8());
  EXPECT_EQ(py.scale, 0.005f / 127.5f);
}

TEST(QParamRules, PythonAffineZeroPointRoundsHalfToEvenAndClamps) {
  // min = -2.5 * scale with scale = 1: zp = 0 - RNE(-2.5) = 2.
  QuantSpec s = affine_quint8();
  const auto d = python_observer_qparams(-2.5f, 252.5f, s);
  EXPECT_EQ(d.scale, 1.0f);
  EXPECT_EQ(d.zero_point, 2);
  EXPECT_EQ(python_observer_qparams(1.0f, 2.0f, s).zero_point, 0);
}

TEST(QParamRules, ReduceRangeHalvesCustomRangeWithFloorDivision) {
  QuantSpec s = symmetric_qint8();
  s.reduce_range = true;
  EXPECT_EQ(observer_quant_range(s), (QRange{-64, 63}));
  s = affine_quint8();
  s.reduce_range = true;
  EXPECT_EQ(observer_quant_range(s), (QRange{0, 127}));
}

TEST(QParamRules, UnobservedRangeGivesDefaults) {
  const auto d = python_observer_qparams(std::numeric_limits<float>::infinity(),
                                         -std::numeric_limits<float>::infinity(), affine_quint8());
  EXPECT_EQ(d.scale, 1.0f);
  EXPECT_EQ(d.zero_point, 0);
}

TEST(QParamRules, FbgemmRoundsScaleToFloatBeforeTheZeroPoint) {
  // Both rules agree on typical ranges; they are separate named rules all the same.
  const auto a = derive_qparams(kAten, -0.3f, 2.7f, affine_quint8());
  const auto b = derive_qparams(kFbgemm, -0.3f, 2.7f, affine_quint8());
  EXPECT_EQ(a.scale, b.scale);
  EXPECT_EQ(a.zero_point, b.zero_point);
  EXPECT_EQ(b.scale_before_float, static_cast<double>(b.scale));
}

TEST(FakeQuantModule, PlainHonoursHandSetBuffersFusedOverwritesThem) {
  FakeQuantModule plain{.kind = FakeQuantModuleKind::kFakeQuantize, .spec = symmetric_qint8(),
                        .min_val = 0.0f, .max_val = 1.0f, .observer_enabled = false};
  hand_set_scale(plain, 2.0 / 255.0);
  const auto p = fake_quant_forward(plain, kAten);
  EXPECT_EQ(p.grid.scale, static_cast<float>(2.0 / 255.0));
  EXPECT_EQ(p.grid.zero_point, 0);
  EXPECT_FALSE(p.derivation.has_value());

  FakeQuantModule fused = plain;
  fused.kind = FakeQuantModuleKind::kFusedMovingAvgObsFakeQuantize;
  const auto f = fake_quant_forward(fused, kAten);
  EXPECT_EQ(f.grid.scale, static_cast<float>(1.0 / 255.0));
  EXPECT_EQ(f.grid.zero_point, -128);
  EXPECT_EQ(fused.scale_buffer, f.grid.scale);
  EXPECT_NE(f.provenance.find("overwritten"), std::string::npos);

  // convert() reads the Python formula for both kinds, never the buffers.
  EXPECT_EQ(convert_qparams(plain).grid.scale, 1.0f / 127.5f);
  EXPECT_EQ(convert_qparams(fused).grid.scale, 1.0f / 127.5f);
}

}  // namespace
}  // namespace qparity
