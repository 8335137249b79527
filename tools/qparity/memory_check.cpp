#include "memory_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace qparity::cli {
namespace {

// ---------------------------------------------------------------------------------------------
// The fit (docs/usage.md, "Memory", has the measurements). Peak RSS is linear in --rows: the
// engine streams blocks of rows, so what grows is what is kept per output element (3 x 256 per
// row): both paths' bins, and with the diagnosis its per-element classes and values, which
// depend on the configuration (3.1 to 5.9 bytes per element measured; the fix re-runs stream and
// add nothing per row). The slopes are the largest measured, rounded up; kBaseBytes covers the
// 3 MiB of a 1-row run and a sweep's per-point results. kMarginPercent covers allocator slack.
constexpr int64_t kBaseBytes = 64LL << 20;
constexpr int64_t kSeedBytesPerRow = 4700;        // seed / explain with the diagnosis (max 4540)
constexpr int64_t kSeedPlainBytesPerRow = 2100;   // seed --no-diagnosis (measured 1570)
constexpr int64_t kSweepPointBytesPerRow = 4700;  // one sweep point in flight (max 4510)
constexpr int64_t kSweepPlainPointBytesPerRow = 1700;  // ... with --no-diagnosis (1520)
constexpr int64_t kMarginPercent = 120;                // estimate = 1.2 x the fit

int64_t saturating_estimate(int64_t per_row, int64_t rows, int64_t concurrent) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t per_unit = per_row * kMarginPercent / 100;
  if (rows > (kMax - kBaseBytes) / per_unit / concurrent) return kMax;
  return kBaseBytes + rows * per_unit * concurrent;
}

int64_t seed_per_row(bool diagnosis) {
  return diagnosis ? kSeedBytesPerRow : kSeedPlainBytesPerRow;
}
int64_t sweep_per_row(bool diagnosis) {
  return diagnosis ? kSweepPointBytesPerRow : kSweepPlainPointBytesPerRow;
}

// ---------------------------------------------------------------------------------------------
// Reading the limit.

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A non-negative decimal number alone on its line ("max" and garbage give nothing).
std::optional<int64_t> parse_count(const std::string& text) {
  std::istringstream in(text);
  int64_t value = -1;
  if (!(in >> value) || value < 0) return std::nullopt;
  return value;
}

// The value of `key` in a "key value" per line file (memory.stat).
std::optional<int64_t> stat_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  int64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return std::nullopt;
}

// cgroup v1 spells "no limit" as a page-rounded INT64_MAX; anything past 2^62 bytes is none.
constexpr int64_t kNoLimit = int64_t{1} << 62;

struct CgroupFiles {
  const char* mount;      // under <root>/sys/fs/cgroup
  const char* limit;      // memory.max / memory.limit_in_bytes
  const char* usage;      // memory.current / memory.usage_in_bytes
  const char* cache_key;  // memory.stat's reclaimable page cache of the cgroup and below
};
constexpr CgroupFiles kV2 = {"", "memory.max", "memory.current", "inactive_file"};
constexpr CgroupFiles kV1 = {"/memory", "memory.limit_in_bytes", "memory.usage_in_bytes",
                             "total_inactive_file"};

// What the cgroup at `dir` still lets its processes allocate, if it has a limit. Inactive page
// cache is reclaimed before the OOM killer runs, so it counts as free (as `docker stats` does).
std::optional<MemoryLimit> cgroup_room(const std::string& dir, const std::string& shown,
                                       const CgroupFiles& f) {
  const std::optional<std::string> limit_text = read_text(dir + "/" + f.limit);
  if (!limit_text) return std::nullopt;
  const std::optional<int64_t> limit = parse_count(*limit_text);  // "max": no limit
  if (!limit || *limit >= kNoLimit) return std::nullopt;
  int64_t used = parse_count(read_text(dir + "/" + f.usage).value_or("")).value_or(0);
  const auto stat = read_text(dir + "/memory.stat");
  used -= std::min(used, stat ? stat_value(*stat, f.cache_key).value_or(0) : 0);
  return MemoryLimit{std::max<int64_t>(0, *limit - used),
                     fmt::format("cgroup {}: {} {}, {} in use", shown, f.limit,
                                 format_bytes(*limit), format_bytes(used))};
}

// The tightest room of the cgroup at `path` and its ancestors.
std::optional<MemoryLimit> cgroup_limit(const std::string& root, std::string path,
                                        const CgroupFiles& f) {
  std::optional<MemoryLimit> tightest;
  while (true) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    const std::string shown = path.empty() ? "/" : path;
    const std::string dir = root + "/sys/fs/cgroup" + f.mount + (path == "/" ? "" : path);
    const std::optional<MemoryLimit> room = cgroup_room(dir, shown, f);
    if (room && (!tightest || room->bytes < tightest->bytes)) tightest = room;
    const size_t slash = path.find_last_of('/');
    if (path.empty() || path == "/" || slash == std::string::npos) break;
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
  return tightest;
}

void take_tighter(std::optional<MemoryLimit>& tightest, const std::optional<MemoryLimit>& other) {
  if (other && (!tightest || other->bytes < tightest->bytes)) tightest = other;
}

}  // namespace

MemoryEstimate estimate_seed_memory(int64_t rows, bool diagnosis) {
  return {saturating_estimate(seed_per_row(diagnosis), rows, 1), 1};
}

MemoryEstimate estimate_sweep_memory(int64_t rows, int64_t points, int64_t threads,
                                     bool diagnosis) {
  const int64_t concurrent = std::max<int64_t>(1, std::min(points, threads));
  return {saturating_estimate(sweep_per_row(diagnosis), rows, concurrent), concurrent};
}

int64_t seed_rows_that_fit(int64_t bytes, bool diagnosis) {
  const int64_t per_row = seed_per_row(diagnosis) * kMarginPercent / 100;
  return bytes <= kBaseBytes ? 0 : (bytes - kBaseBytes) / per_row;
}

int64_t sweep_threads_that_fit(int64_t bytes, int64_t rows, int64_t points, bool diagnosis) {
  if (bytes <= kBaseBytes) return 0;
  const int64_t per_point = sweep_per_row(diagnosis) * kMarginPercent / 100;
  if (rows > (bytes - kBaseBytes) / per_point) return 0;
  return std::min(points, (bytes - kBaseBytes) / per_point / rows);
}

std::optional<int64_t> parse_meminfo_available(const std::string& meminfo) {
  std::istringstream in(meminfo);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key, unit;
    int64_t kib = -1;
    if (!(fields >> key >> kib >> unit) || key != "MemAvailable:" || unit != "kB") continue;
    if (kib < 0 || kib > std::numeric_limits<int64_t>::max() / 1024) return std::nullopt;
    return kib * 1024;
  }
  return std::nullopt;
}

CgroupPaths parse_proc_cgroup(const std::string& proc_cgroup) {
  CgroupPaths paths;
  std::istringstream in(proc_cgroup);
  std::string line;
  while (std::getline(in, line)) {
    // hierarchy-ID:controller-list:path (the path may itself hold colons).
    const size_t first = line.find(':');
    const size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string id = line.substr(0, first);
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (path.empty() || path.front() != '/') continue;
    if (id == "0" && controllers.empty()) {
      paths.v2 = path;
      continue;
    }
    std::istringstream list(controllers);
    std::string controller;
    while (std::getline(list, controller, ',')) {
      if (controller == "memory") paths.v1_memory = path;
    }
  }
  return paths;
}

std::optional<MemoryLimit> read_memory_limit(const std::string& root) {
  std::optional<MemoryLimit> tightest;
  if (const auto meminfo = read_text(root + "/proc/meminfo")) {
    if (const auto available = parse_meminfo_available(*meminfo)) {
      tightest = MemoryLimit{*available, "MemAvailable in /proc/meminfo"};
    }
  }
  if (const auto proc_cgroup = read_text(root + "/proc/self/cgroup")) {
    const CgroupPaths paths = parse_proc_cgroup(*proc_cgroup);
    if (paths.v2) take_tighter(tightest, cgroup_limit(root, *paths.v2, kV2));
    if (paths.v1_memory) take_tighter(tightest, cgroup_limit(root, *paths.v1_memory, kV1));
  }
  return tightest;
}

void check_fits(const MemoryEstimate& estimate, const std::optional<MemoryLimit>& limit,
                const std::string& option, const std::string& what, const std::string& advice) {
  if (estimate.bytes == std::numeric_limits<int64_t>::max()) {
    throw std::invalid_argument(
        fmt::format("{}: {} would need more memory than exists; {}", option, what, advice));
  }
  if (!limit || estimate.bytes <= limit->bytes) return;
  throw std::invalid_argument(fmt::format(
      "{}: {} need an estimated {} of memory, only {} is available ({}); {}", option, what,
      format_bytes(estimate.bytes), format_bytes(limit->bytes), limit->source, advice));
}

std::string format_bytes(int64_t bytes) {
  constexpr double kMiB = 1024.0 * 1024.0;
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * kMiB) return fmt::format("{:.1f} GiB", b / (1024.0 * kMiB));
  return fmt::format("{:.0f} MiB", b / kMiB);
}

}  // namespace qparity::cli
