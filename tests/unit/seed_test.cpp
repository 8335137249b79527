// The seed experiment end to end (figures of shared/docs/seed-experiment.md; the parity
// suite checks every field against real PyTorch).
#include <gtest/gtest.h>

#include "qparity/scenario/seed.h"

namespace qparity {
namespace {

SeedResult run(double k, const char* backend, ObserverKind observer, int64_t rows = 256) {
  CpuFeatures cpu;
  cpu.avx512_vnni = true;
  return run_seed({.k = k, .backend = backend, .observer = observer, .rows = rows}, cpu);
}

TEST(Seed, DefaultReproducesTheDuplicated127) {
  for (const char* backend : {"fbgemm", "qnnpack", "onednn"}) {
    SCOPED_TRACE(backend);
    const SeedResult r = run(1.0, backend, ObserverKind::kFused);
    ASSERT_TRUE(r.compare.first_mismatch.has_value());
    EXPECT_EQ(r.compare.first_mismatch->index, (ElementIndex{0, 0, 0, 128}));
    EXPECT_EQ(r.compare.first_mismatch->expected_q, 128);
    EXPECT_EQ(r.compare.first_mismatch->actual_q, 127);
    EXPECT_EQ(r.compare.first_mismatch->error_fp32, 0.0039215684f);
    EXPECT_TRUE(r.compare.rows_identical);
    EXPECT_EQ(r.compare.bin_mismatch_count, 3 * 256 * 128);
    EXPECT_EQ(r.compare.max_abs_delta_q, 1);
    EXPECT_NEAR(r.compare.error_mean, 0.0020, 0.00005);
    for (int w = 0; w < 256; ++w) {
      EXPECT_EQ(r.fake_quant.run.bins[static_cast<size_t>(w)], w);
      EXPECT_EQ(r.int8.run.bins[static_cast<size_t>(w)], w <= 127 ? w : w - 1);
    }
    EXPECT_EQ(r.int8.weight.used.grid.scale, 1.0f / 127.5f);
    EXPECT_EQ(r.fake_quant.weight.used.grid.zero_point, -128);
  }
}

TEST(Seed, PlainFakeQuantizeAgreesInBinsAtKOne) {
  const SeedResult r = run(1.0, "qnnpack", ObserverKind::kPlain);
  EXPECT_EQ(r.compare.bin_mismatch_count, 0);
  EXPECT_FALSE(r.compare.first_mismatch.has_value() && r.compare.first_mismatch->expected_q !=
                                                           r.compare.first_mismatch->actual_q);
}

TEST(Seed, RowsChangeTheShapeNotTheRow) {
  const SeedResult r = run(1.0, "qnnpack", ObserverKind::kFused, 3);
  EXPECT_EQ(r.output_shape, (Shape4{1, 3, 3, 256}));
  EXPECT_EQ(r.compare.bin_mismatch_count, 3 * 3 * 128);
}

TEST(Seed, RejectsUnusableOptions) {
  CpuFeatures cpu;
  EXPECT_THROW(run_seed({.k = 0.0}, cpu), std::invalid_argument);
  EXPECT_THROW(run_seed({.k = -1.0}, cpu), std::invalid_argument);
  EXPECT_THROW(run_seed({.k = 1e300}, cpu), std::invalid_argument);
  EXPECT_THROW(run_seed({.rows = 0}, cpu), std::invalid_argument);
  EXPECT_THROW(run_seed({.backend = "tpu"}, cpu), std::invalid_argument);
}

}  // namespace
}  // namespace qparity
