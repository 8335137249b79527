// The memory check of seed and sweep (issue 9 item 3): the estimate, and the limit read from
// fake /proc and /sys/fs/cgroup trees in a temporary directory.
#include "memory_check.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace qparity::cli {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kGiB = int64_t{1} << 30;

// A fake root: files written under a fresh temporary directory, removed with it.
class FakeRoot {
 public:
  FakeRoot() {
    root_ = fs::temp_directory_path() /
            ("qparity-memtest-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(root_);
  }
  ~FakeRoot() { fs::remove_all(root_); }
  FakeRoot(const FakeRoot&) = delete;
  FakeRoot& operator=(const FakeRoot&) = delete;

  FakeRoot& file(const std::string& path, const std::string& text) {
    const fs::path p = root_ / path;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return *this;
  }
  std::string path() const { return root_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path root_;
};

std::string meminfo_kib(int64_t kib) {
  return "MemTotal:       25000000 kB\nMemFree:         1000000 kB\nMemAvailable:   " +
         std::to_string(kib) + " kB\nBuffers:  10 kB\n";
}

TEST(MemoryEstimate, GrowsWithRowsAndConcurrentPoints) {
  const MemoryEstimate one = estimate_seed_memory(100000, true);
  const MemoryEstimate two = estimate_seed_memory(200000, true);
  EXPECT_GT(two.bytes, one.bytes);
  const MemoryEstimate sweep1 = estimate_sweep_memory(100000, 64, 1, true);
  const MemoryEstimate sweep8 = estimate_sweep_memory(100000, 64, 8, true);
  EXPECT_EQ(sweep8.concurrent, 8);
  EXPECT_GT(sweep8.bytes, 7 * (sweep1.bytes - estimate_sweep_memory(1, 64, 1, true).bytes));
  // More threads than points hold no more points in memory.
  EXPECT_EQ(estimate_sweep_memory(100000, 4, 32, true).bytes,
            estimate_sweep_memory(100000, 4, 4, true).bytes);
}

// The issue's cases on the 24 GiB machine they were measured on (docs/usage.md, "Memory"):
// seed --rows 1200000 used 4.3 GiB and must pass; sweep --rows 500000 --k 1:2:32 --threads 32
// needs tens of GiB and must be refused.
TEST(MemoryEstimate, IssueCasesOnA24GiBMachine) {
  const int64_t available = 23 * kGiB;
  const MemoryEstimate seed = estimate_seed_memory(1200000, true);
  EXPECT_GE(seed.bytes, 43 * kGiB / 10) << "below the measured peak";
  EXPECT_LE(seed.bytes, 8 * kGiB) << "refuses runs that fit";
  EXPECT_GT(estimate_sweep_memory(500000, 32, 32, true).bytes, available);
}

TEST(MemoryEstimate, SaturatesInsteadOfOverflowing) {
  EXPECT_EQ(estimate_seed_memory(int64_t{4} << 60, true).bytes, INT64_MAX);
  EXPECT_EQ(estimate_sweep_memory(int64_t{1} << 50, 1024, 1024, true).bytes, INT64_MAX);
}

TEST(MemoryEstimate, RowsThatFitAreTheLargestThatPass) {
  for (bool diagnosis : {false, true}) {
    const int64_t fit = seed_rows_that_fit(2 * kGiB, diagnosis);
    EXPECT_LE(estimate_seed_memory(fit, diagnosis).bytes, 2 * kGiB);
    EXPECT_GT(estimate_seed_memory(fit + 1, diagnosis).bytes, 2 * kGiB);
  }
  const int64_t threads = sweep_threads_that_fit(8 * kGiB, 200000, 100, true);
  ASSERT_GT(threads, 0);
  EXPECT_LE(estimate_sweep_memory(200000, 100, threads, true).bytes, 8 * kGiB);
  EXPECT_GT(estimate_sweep_memory(200000, 100, threads + 1, true).bytes, 8 * kGiB);
  EXPECT_EQ(seed_rows_that_fit(1, true), 0);
}

TEST(Meminfo, ReadsMemAvailableInBytes) {
  EXPECT_EQ(parse_meminfo_available(meminfo_kib(1234)), int64_t{1234} * 1024);
  EXPECT_FALSE(parse_meminfo_available("MemTotal: 1 kB\nMemFree: 2 kB\n"));
  EXPECT_FALSE(parse_meminfo_available("MemAvailable: -5 kB\n"));
  EXPECT_FALSE(parse_meminfo_available("MemAvailable: 99999999999999999999 kB\n"));
}

TEST(ProcCgroup, FindsTheV2PathAndTheV1MemoryController) {
  const CgroupPaths hybrid =
      parse_proc_cgroup("5:devices:/\n4:memory:/process_api/abc\n0::/user/qp\n");
  EXPECT_EQ(hybrid.v2, "/user/qp");
  EXPECT_EQ(hybrid.v1_memory, "/process_api/abc");
  const CgroupPaths listed = parse_proc_cgroup("7:cpu,memory,pids:/a:b/c\n");
  EXPECT_FALSE(listed.v2);
  EXPECT_EQ(listed.v1_memory, "/a:b/c");  // the path may hold colons
  const CgroupPaths junk = parse_proc_cgroup("garbage\n0::relative\n:::\n");
  EXPECT_FALSE(junk.v2);
  EXPECT_FALSE(junk.v1_memory);
}

TEST(CgroupLimit, MeminfoAloneWhenNoCgroupLimits) {
  FakeRoot root;
  root.file("proc/meminfo", meminfo_kib(8 * 1024 * 1024))
      .file("proc/self/cgroup", "0::/a\n")
      .file("sys/fs/cgroup/a/memory.max", "max\n")
      .file("sys/fs/cgroup/a/memory.current", "1000\n");
  const auto limit = read_memory_limit(root.path());
  ASSERT_TRUE(limit);
  EXPECT_EQ(limit->bytes, 8 * kGiB);
  EXPECT_EQ(limit->source, "MemAvailable in /proc/meminfo");
}

TEST(CgroupLimit, V2MaxMinusCurrentWithReclaimableCacheAsFree) {
  FakeRoot root;
  root.file("proc/meminfo", meminfo_kib(20 * 1024 * 1024))
      .file("proc/self/cgroup", "0::/qp\n")
      .file("sys/fs/cgroup/qp/memory.max", std::to_string(2 * kGiB) + "\n")
      .file("sys/fs/cgroup/qp/memory.current", std::to_string(kGiB / 2) + "\n")
      .file("sys/fs/cgroup/qp/memory.stat",
            "anon 1\ninactive_file " + std::to_string(kGiB / 4) + "\n");
  const auto limit = read_memory_limit(root.path());
  ASSERT_TRUE(limit);
  EXPECT_EQ(limit->bytes, 2 * kGiB - kGiB / 4);
  EXPECT_NE(limit->source.find("cgroup /qp"), std::string::npos) << limit->source;
  EXPECT_NE(limit->source.find("memory.max 2.0 GiB"), std::string::npos) << limit->source;
}

TEST(CgroupLimit, TightestAncestorWins) {
  FakeRoot root;
  root.file("proc/meminfo", meminfo_kib(20 * 1024 * 1024))
      .file("proc/self/cgroup", "0::/outer/inner\n")
      .file("sys/fs/cgroup/outer/inner/memory.max", std::to_string(4 * kGiB))
      .file("sys/fs/cgroup/outer/inner/memory.current", "0")
      .file("sys/fs/cgroup/outer/memory.max", std::to_string(3 * kGiB))
      .file("sys/fs/cgroup/outer/memory.current", std::to_string(kGiB));
  const auto limit = read_memory_limit(root.path());
  ASSERT_TRUE(limit);
  EXPECT_EQ(limit->bytes, 2 * kGiB);
  EXPECT_NE(limit->source.find("cgroup /outer:"), std::string::npos) << limit->source;
}

TEST(CgroupLimit, V1LimitInBytesAndItsNoLimitValue) {
  FakeRoot root;
  root.file("proc/meminfo", meminfo_kib(20 * 1024 * 1024))
      .file("proc/self/cgroup", "4:memory:/job\n0::/\n")
      .file("sys/fs/cgroup/memory/job/memory.limit_in_bytes", std::to_string(kGiB))
      .file("sys/fs/cgroup/memory/job/memory.usage_in_bytes", "0")
      .file("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712");
  const auto limit = read_memory_limit(root.path());
  ASSERT_TRUE(limit);
  EXPECT_EQ(limit->bytes, kGiB);
  EXPECT_NE(limit->source.find("memory.limit_in_bytes"), std::string::npos) << limit->source;
}

TEST(CgroupLimit, UsageAboveTheLimitLeavesZero) {
  FakeRoot root;
  root.file("proc/self/cgroup", "0::/full\n")
      .file("sys/fs/cgroup/full/memory.max", "1000")
      .file("sys/fs/cgroup/full/memory.current", "5000");
  const auto limit = read_memory_limit(root.path());
  ASSERT_TRUE(limit);
  EXPECT_EQ(limit->bytes, 0);
}

TEST(CgroupLimit, NothingReadableGivesNoLimit) {
  FakeRoot root;
  EXPECT_FALSE(read_memory_limit(root.path()));
}

TEST(CheckFits, RefusalNamesEstimateLimitSourceAndAdvice) {
  const MemoryLimit limit{2 * kGiB, "cgroup /qp: memory.max 2.0 GiB, 0 MiB in use"};
  const MemoryEstimate estimate = estimate_seed_memory(800000, true);
  try {
    check_fits(estimate, limit, "--rows", "800000 rows", "use --rows 400000 or fewer");
    FAIL() << "not refused";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("--rows: 800000 rows need an estimated ", 0), 0u) << m;
    EXPECT_NE(m.find("only 2.0 GiB is available (cgroup /qp"), std::string::npos) << m;
    EXPECT_NE(m.find("use --rows 400000 or fewer"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  EXPECT_NO_THROW(check_fits(estimate_seed_memory(1000, true), limit, "--rows", "1000 rows", ""));
  EXPECT_NO_THROW(check_fits(estimate, std::nullopt, "--rows", "800000 rows", ""));
}

}  // namespace
}  // namespace qparity::cli
