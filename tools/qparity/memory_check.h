// The memory check of `seed` and `sweep` (issue 9 item 3): what a run will allocate, against
// the memory this process may really use (MemAvailable and every cgroup limit above it), so a
// run that cannot fit is refused with a message instead of being killed by the OOM killer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qparity::cli {

// ---------------------------------------------------------------------------------------------
// The estimate: fitted to the peak RSS measured with /usr/bin/time -f %M (docs/usage.md,
// "Memory"), times a safety margin.

struct MemoryEstimate {
  int64_t bytes = 0;       // the estimated peak, margin included
  int64_t concurrent = 1;  // experiments held in memory at once
};

// `qparity seed`/`explain` with `rows` rows. The diagnosis re-runs fixes beside the experiment,
// so it holds more experiments at once.
MemoryEstimate estimate_seed_memory(int64_t rows, bool diagnosis);

// `qparity sweep`: `points` points (series x k values) on `threads` threads; every thread holds
// one point's experiment (one path after the other, no fixes), min(threads, points) at once.
MemoryEstimate estimate_sweep_memory(int64_t rows, int64_t points, int64_t threads, bool diagnosis);

// The largest row count whose estimate fits in `bytes` (0 if none), for the message.
int64_t seed_rows_that_fit(int64_t bytes, bool diagnosis);
int64_t sweep_threads_that_fit(int64_t bytes, int64_t rows, int64_t points, bool diagnosis);

// ---------------------------------------------------------------------------------------------
// The limit.

struct MemoryLimit {
  int64_t bytes = 0;
  std::string source;  // where it came from: "MemAvailable in /proc/meminfo", "cgroup /qp: ..."
};

// MemAvailable of a /proc/meminfo text, in bytes.
std::optional<int64_t> parse_meminfo_available(const std::string& meminfo);

// The memory cgroup paths of a /proc/self/cgroup text: the cgroup v2 path ("0::/a/b") and the
// cgroup v1 memory controller's ("4:memory:/a/b"), each if present.
struct CgroupPaths {
  std::optional<std::string> v2;
  std::optional<std::string> v1_memory;
};
CgroupPaths parse_proc_cgroup(const std::string& proc_cgroup);

// The tightest limit on this process's memory, read under `root` ("" in production; a test's
// temporary directory holding fake proc/ and sys/fs/cgroup/ files): the smallest of MemAvailable
// and, for every cgroup from this process's up to the root, its limit minus what it already
// uses (cgroup v2 memory.max - memory.current, or v1 memory.limit_in_bytes -
// memory.usage_in_bytes; reclaimable page cache counted as free). Nothing if nothing is readable.
std::optional<MemoryLimit> read_memory_limit(const std::string& root = "");

// Throws std::invalid_argument when `estimate` does not fit in `limit`: "<option>: <what> need
// an estimated X GiB, only Y GiB is available (<source>); <advice>".
void check_fits(const MemoryEstimate& estimate, const std::optional<MemoryLimit>& limit,
                const std::string& option, const std::string& what, const std::string& advice);

// "1.5 GiB" / "512 MiB".
std::string format_bytes(int64_t bytes);

}  // namespace qparity::cli
