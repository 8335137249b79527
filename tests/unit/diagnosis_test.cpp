// Diagnosis, fixes and traces on configurations whose causes differ. The classes asserted
// here are confirmed against real PyTorch by tests/parity/check_diagnosis.py.
#include <gtest/gtest.h>

#include <random>

#include "qparity/diagnose/diagnosis.h"
#include "qparity/diagnose/fixes.h"
#include "qparity/diagnose/trace.h"

namespace qparity {
namespace {

CpuFeatures vnni() {
  CpuFeatures cpu;
  cpu.avx512_vnni = true;
  return cpu;
}

struct DiagnosedRun {
  SeedExperiment experiment;
  SeedResult result;
  Diagnosis diagnosis;
  explicit DiagnosedRun(const SeedOptions& o)
      : experiment(o, vnni()), result(run_experiment(experiment)),
        diagnosis(diagnose(experiment, result)) {}
};

std::vector<DivergenceClass> classes(const Diagnosis& d) {
  std::vector<DivergenceClass> out;
  for (const Finding& f : d.findings) out.push_back(f.divergence_class);
  return out;
}

std::string all_evidence(const Diagnosis& d) {
  std::string s;
  for (const Finding& f : d.findings) {
    for (const std::string& e : f.evidence) s += e + "\n";
  }
  return s;
}

TEST(Diagnosis, SeedDefaultIsAWeightGridMismatch) {
  const DiagnosedRun r({.backend = "qnnpack", .rows = 4});
  ASSERT_FALSE(r.diagnosis.paths_agree);
  ASSERT_EQ(classes(r.diagnosis), std::vector{DivergenceClass::kGridMismatch});
  const Finding& f = r.diagnosis.findings[0];
  EXPECT_EQ(f.point, "weight");
  EXPECT_EQ(f.explains_elements, r.result.compare.bin_mismatch_count);
  EXPECT_EQ(r.diagnosis.unexplained_elements, 0);
  EXPECT_EQ(r.diagnosis.first_parting_point, "weight");
  EXPECT_NE(all_evidence(r.diagnosis).find("overwritten"), std::string::npos);
}

TEST(Diagnosis, PlainAtKOneAgreesAndInventsNothing) {
  const DiagnosedRun r({.backend = "qnnpack", .observer = ObserverKind::kPlain, .rows = 4});
  EXPECT_TRUE(r.diagnosis.paths_agree);
  EXPECT_TRUE(r.diagnosis.findings.empty());
  EXPECT_TRUE(propose_fixes(r.experiment, r.result, r.diagnosis).empty());
}

TEST(Diagnosis, SmallKHitsTheThreshold) {
  const DiagnosedRun r({.k = 0.01, .backend = "qnnpack", .rows = 4});
  ASSERT_FALSE(r.diagnosis.findings.empty());
  for (const Finding& f : r.diagnosis.findings) {
    EXPECT_EQ(f.divergence_class, DivergenceClass::kThresholdClamp) << f.point;
  }
  EXPECT_NE(all_evidence(r.diagnosis).find("SMALL_SCALE_THRESHOLD"), std::string::npos);
  EXPECT_EQ(r.diagnosis.unexplained_elements, 0);
}

TEST(Diagnosis, PlainAtKPoint3IsFloatOnly) {
  const DiagnosedRun r({.k = 0.3, .backend = "qnnpack", .observer = ObserverKind::kPlain, .rows = 4});
  EXPECT_EQ(r.result.compare.bin_mismatch_count, 0);
  ASSERT_EQ(classes(r.diagnosis), std::vector{DivergenceClass::kFloatOnly});
  EXPECT_EQ(r.diagnosis.findings[0].point, "output");
  EXPECT_EQ(r.diagnosis.findings[0].explains_elements, r.result.compare.fp32_mismatch_count);
}

TEST(Diagnosis, EvidenceFollowsTheNumbers) {
  // The same cause at another k: same class, different numbers in the evidence.
  const DiagnosedRun a({.k = 1.0, .backend = "qnnpack", .rows = 2});
  const DiagnosedRun b({.k = 3.0, .backend = "qnnpack", .rows = 2});
  EXPECT_EQ(classes(a.diagnosis), classes(b.diagnosis));
  EXPECT_NE(all_evidence(a.diagnosis), all_evidence(b.diagnosis));
  EXPECT_NE(all_evidence(b.diagnosis).find("0.0235294122"), std::string::npos);  // f(3/127.5)
  // Another qscheme removes the cause.
  const DiagnosedRun c({.k = 1.0, .backend = "qnnpack", .rows = 2,
               .weight_qscheme = QScheme::kPerTensorAffine});
  EXPECT_TRUE(c.diagnosis.paths_agree);
}

TEST(Fixes, SeedDefaultHasAVerifiedFixAndNoUnverifiedOnes) {
  // Both halves of the name are asserted: some fix is proposed, and every proposed fix really
  // reaches bin parity, judged by an independent re-run of its options (not by the verdict
  // verify_fixes gives, which is checked against that re-run as well).
  const DiagnosedRun r({.backend = "qnnpack", .rows = 2});
  ASSERT_GT(r.result.compare.bin_mismatch_count, 0) << "the seed must diverge, or nothing is fixed";
  const auto fixes = verify_fixes(propose_fixes(r.experiment, r.result, r.diagnosis), r.result, vnni());
  ASSERT_FALSE(fixes.empty());
  for (const VerifiedFix& v : fixes) {
    const SeedResult rerun = run_seed(v.candidate.options, vnni());
    EXPECT_EQ(rerun.compare.bin_mismatch_count, 0) << "an unverified fix: " << v.candidate.change;
    EXPECT_TRUE(v.verified_parity) << v.candidate.change;
    EXPECT_FALSE(v.error.has_value()) << v.candidate.change << ": " << v.error.value_or("");
    EXPECT_EQ(v.bin_mismatch_count, rerun.compare.bin_mismatch_count) << v.candidate.change;
    EXPECT_EQ(v.fp32_mismatch_count, rerun.compare.fp32_mismatch_count) << v.candidate.change;
  }
}

TEST(Fixes, RefusedChangesAreNotFixes) {
  const DiagnosedRun r({.k = 0.005, .backend = "onednn", .rows = 2});
  const auto fixes = verify_fixes(propose_fixes(r.experiment, r.result, r.diagnosis), r.result, vnni());
  bool saw_refusal = false;
  for (const VerifiedFix& v : fixes) {
    if (v.error) {
      saw_refusal = true;
      EXPECT_FALSE(v.verified_parity);
    }
  }
  EXPECT_TRUE(saw_refusal) << "onednn must refuse the affine-weight candidate";
}

TEST(Trace, AgreesWithTheBulkRunEverywhere) {
  std::mt19937 rng(3);
  for (const SeedOptions& o :
       {SeedOptions{.backend = "qnnpack", .rows = 3}, SeedOptions{.k = 0.01, .backend = "onednn", .rows = 3},
        SeedOptions{.k = 7.0, .backend = "fbgemm", .observer = ObserverKind::kPlain, .rows = 3,
                    .weight_pattern = WeightPattern::kMixedSigns}}) {
    const DiagnosedRun r(o);
    std::uniform_int_distribution<int64_t> c(0, 2), h(0, o.rows - 1), w(0, 255);
    for (int i = 0; i < 50; ++i) {
      const ElementIndex e{0, c(rng), h(rng), w(rng)};
      const auto x = explain_element(r.experiment, r.result, e);
      const auto flat = static_cast<size_t>((e.c * o.rows + e.h) * 256 + e.w);
      EXPECT_EQ(x.fake_quant.output_bin, r.result.fake_quant.run.bins[flat]);
      EXPECT_EQ(x.int8.output_bin, r.result.int8.run.bins[flat]);
      EXPECT_EQ(x.fake_quant.output_dequantized, r.result.fake_quant.run.value(flat));
      EXPECT_EQ(x.int8.output_dequantized, r.result.int8.run.value(flat));
      if (r.result.fake_quant.run.value(flat) != r.result.int8.run.value(flat)) {
        EXPECT_TRUE(x.first_difference.has_value()) << "a differing element needs a marked stage";
      }
    }
  }
}

}  // namespace
}  // namespace qparity

namespace qparity {
namespace {

// The block-by-block counting a fix verification uses equals the full run's comparison.
TEST(Fixes, CountPathMismatchesEqualsTheFullRun) {
  for (const SeedOptions& o :
       {SeedOptions{.backend = "qnnpack", .rows = 20}, SeedOptions{.k = 0.3, .backend = "onednn",
                                                                   .observer = ObserverKind::kPlain,
                                                                   .rows = 17},
        SeedOptions{.k = 0.01, .backend = "fbgemm", .rows = 33,
                    .weight_qscheme = QScheme::kPerChannelSymmetric,
                    .weight_pattern = WeightPattern::kDense}}) {
    CpuFeatures cpu;
    cpu.avx512_vnni = true;
    const SeedExperiment e(o, cpu);
    const SeedResult r = run_experiment(e);
    const MismatchCounts c = e.count_path_mismatches();
    EXPECT_EQ(c.bins, r.compare.bin_mismatch_count);
    EXPECT_EQ(c.floats, r.compare.fp32_mismatch_count);
  }
}

}  // namespace
}  // namespace qparity
