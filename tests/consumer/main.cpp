// Runs the seed experiment through the installed library and checks its headline figure.
#include <qparity/scenario/seed.h>
#include <qparity/version.h>

#include <cstdio>

int main() {
  const qparity::SeedResult r =
      qparity::run_seed({.backend = "qnnpack", .rows = 2}, qparity::detect_cpu_features());
  const bool ok = r.compare.first_mismatch && r.compare.first_mismatch->index.w == 128;
  std::printf("qparity %s: %lld bins differ, first at w=%lld\n",
              std::string(qparity::version()).c_str(),
              static_cast<long long>(r.compare.bin_mismatch_count),
              static_cast<long long>(ok ? r.compare.first_mismatch->index.w : -1));
  return ok ? 0 : 1;
}
