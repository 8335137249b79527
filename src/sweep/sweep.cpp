#include "qparity/sweep/sweep.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "qparity/diagnose/diagnosis.h"
#include "qparity/numerics/float32.h"

namespace qparity {
namespace {

constexpr int64_t kMaxPoints = 1000000;

// Position of a finite float in the ordered list of floats (adjacent floats differ by one).
int64_t float_ordinal(float v) {
  const auto bits = static_cast<int64_t>(std::bit_cast<int32_t>(v));
  return bits < 0 ? std::numeric_limits<int32_t>::min() - bits : bits;
}

float float_from_ordinal(int64_t ordinal) {
  const int64_t bits = ordinal < 0 ? std::numeric_limits<int32_t>::min() - ordinal : ordinal;
  return std::bit_cast<float>(static_cast<int32_t>(bits));
}

std::string series_label(const SeedOptions& o, const SweepSpec& spec) {
  std::string label;
  auto add = [&](bool swept, const std::string& text) {
    if (!swept) return;
    if (!label.empty()) label += ' ';
    label += text;
  };
  add(spec.backends.size() > 1, "backend=" + o.backend);
  add(spec.observers.size() > 1, "observer=" + std::string(to_string(o.observer)));
  add(spec.weight_qschemes.size() > 1, "weight_qscheme=" + std::string(to_string(o.weight_qscheme)));
  add(spec.reduce_ranges.size() > 1,
      std::string("reduce_range=") + (o.activation_reduce_range ? "on" : "off"));
  add(spec.weight_patterns.size() > 1, "weight_pattern=" + std::string(to_string(o.weight_pattern)));
  return label.empty() ? "all" : label;
}

template <typename T>
std::vector<T> or_default(const std::vector<T>& values, T fallback) {
  return values.empty() ? std::vector<T>{fallback} : values;
}

// Runs `task(i)` for i in [0, count) on `threads` threads; results go to fixed slots, so the
// outcome does not depend on the thread count or scheduling.
template <typename Task>
void parallel_for(int64_t count, int threads, Task&& task) {
  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&] {
    for (int64_t i = next++; i < count; i = next++) {
      try {
        task(i);
      } catch (...) {
        const std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    }
  };
  const int extra = std::max(0, std::min<int>(threads, static_cast<int>(count)) - 1);
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(extra));
  for (int t = 0; t < extra; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

std::vector<double> k_values(const KRange& r) {
  if (!std::isfinite(r.start) || !std::isfinite(r.stop)) {
    throw std::invalid_argument("--k: START and STOP must be finite numbers");
  }
  if (r.stop < r.start) throw std::invalid_argument("--k: STOP is smaller than START");
  if (r.count < 1) throw std::invalid_argument("--k: COUNT must be at least 1");
  if (r.count > kMaxPoints) {
    throw std::invalid_argument("--k: COUNT " + std::to_string(r.count) + " is more than " +
                                std::to_string(kMaxPoints) + " points");
  }
  if (!(r.start > 0.0)) {
    throw std::invalid_argument(r.log ? "--k: --log needs START > 0" : "--k: k must be > 0");
  }
  if (r.count > 1 && r.start == r.stop) {
    throw std::invalid_argument("--k: COUNT > 1 needs STOP > START");
  }
  std::vector<double> ks;
  ks.reserve(static_cast<size_t>(r.count));
  for (int64_t i = 0; i < r.count; ++i) {
    const double t = r.count == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(r.count - 1);
    const double k = r.log ? std::exp(std::log(r.start) + t * (std::log(r.stop) - std::log(r.start)))
                           : r.start + t * (r.stop - r.start);
    const double k32 = static_cast<double>(static_cast<float>(i + 1 == r.count ? r.stop : k));
    if (ks.empty() || ks.back() != k32) ks.push_back(k32);
  }
  return ks;
}

PointOutcome evaluate_point(const SeedOptions& options, const CpuFeatures& cpu, bool diagnose_it) {
  PointOutcome out;
  try {
    const SeedExperiment experiment(options, cpu);
    const SeedResult r = run_experiment(experiment, PathConcurrency::kOneThread);
    out.bin_mismatch_count = r.compare.bin_mismatch_count;
    out.fp32_mismatch_count = r.compare.fp32_mismatch_count;
    out.max_abs_delta_q = r.compare.max_abs_delta_q;
    out.error_max = r.compare.error_max;
    out.error_mean = r.compare.error_mean;
    out.first_mismatch = r.compare.first_mismatch;
    if (r.compare.bin_mismatch_count == 0 && r.compare.fp32_mismatch_count == 0) {
      out.outcome = "agree";
    } else if (!diagnose_it) {
      out.outcome = r.compare.bin_mismatch_count > 0 ? "diverge" : "float_differ";
    } else {
      const Diagnosis d = diagnose(experiment, r);
      for (const Finding& f : d.findings) {
        const std::string label = std::string(to_string(f.divergence_class)) + "@" + f.point;
        if (out.outcome.find(label) != std::string::npos) continue;
        out.outcome += (out.outcome.empty() ? "" : "+") + label;
      }
      if (d.unexplained_elements > 0) out.outcome += "+unexplained";
    }
  } catch (const std::invalid_argument& e) {
    out.error = e.what();
    out.outcome = "refused";
  }
  return out;
}

SweepResult run_sweep(const SweepSpec& spec, const CpuFeatures& cpu, int threads,
                      const SweepProgress& progress) {
  const std::vector<double> ks = k_values(spec.k);
  SweepResult result;
  for (const std::string& backend : or_default(spec.backends, spec.base.backend)) {
    if (!make_backend_profile(backend, cpu)) {
      throw std::invalid_argument("--backend: unknown backend '" + backend + "'");
    }
    for (ObserverKind observer : or_default(spec.observers, spec.base.observer)) {
      for (QScheme qscheme : or_default(spec.weight_qschemes, spec.base.weight_qscheme)) {
        for (bool reduce : or_default(spec.reduce_ranges, spec.base.activation_reduce_range)) {
          for (WeightPattern pattern : or_default(spec.weight_patterns, spec.base.weight_pattern)) {
            SeedOptions o = spec.base;
            o.backend = backend;
            o.observer = observer;
            o.weight_qscheme = qscheme;
            o.activation_reduce_range = reduce;
            o.weight_pattern = pattern;
            SweepSeries series{series_label(o, spec), {}};
            for (double k : ks) {
              o.k = k;
              validate_seed_options(o);
              series.points.push_back(result.points.size());
              result.points.push_back({o, {}});
            }
            result.series.push_back(std::move(series));
          }
        }
      }
    }
  }
  const auto total = static_cast<int64_t>(result.points.size());
  std::atomic<int64_t> done{0};
  std::mutex progress_mutex;
  parallel_for(total, threads, [&](int64_t i) {
    SweepPoint& p = result.points[static_cast<size_t>(i)];
    p.result = evaluate_point(p.options, cpu, spec.diagnose);
    if (progress) {
      const std::lock_guard lock(progress_mutex);
      progress(++done, total);
    }
  });

  for (const SweepSeries& s : result.series) {
    for (size_t j = 0; j < s.points.size(); ++j) {
      const SweepPoint& p = result.points[s.points[j]];
      if (result.ranges.empty() || result.ranges.back().series != s.label ||
          result.ranges.back().outcome != p.result.outcome) {
        if (!result.ranges.empty() && result.ranges.back().series == s.label) {
          const SweepPoint& before = result.points[s.points[j - 1]];
          result.boundaries.push_back({s.label, before.options.k, p.options.k,
                                       before.result.outcome, p.result.outcome, false, 0});
        }
        result.ranges.push_back({s.label, p.result.outcome, p.options.k, p.options.k, 0});
      }
      result.ranges.back().k_last = p.options.k;
      ++result.ranges.back().points;
    }
  }
  return result;
}

void refine_boundaries(SweepResult& result, const SweepSpec& spec, const CpuFeatures& cpu,
                       int threads, const SweepProgress& progress) {
  // The configuration of a series: any of its points, with k replaced.
  auto series_options = [&](const std::string& label) {
    for (const SweepSeries& s : result.series) {
      if (s.label == label) return result.points[s.points.front()].options;
    }
    throw std::logic_error("refine_boundaries: unknown series " + label);
  };
  const auto total = static_cast<int64_t>(result.boundaries.size());
  // A sampled interval may hold several outcome changes (A -> B -> C between two sampled k);
  // each is bisected in turn, so the refined boundaries of an interval form a chain from its
  // low outcome to its high one.
  std::vector<std::vector<Boundary>> chains(static_cast<size_t>(total));
  std::atomic<int64_t> done{0};
  std::mutex progress_mutex;
  parallel_for(total, threads, [&](int64_t i) {
    const Boundary& sampled = result.boundaries[static_cast<size_t>(i)];
    std::vector<Boundary>& chain = chains[static_cast<size_t>(i)];
    SeedOptions o = series_options(sampled.series);
    const int64_t end = float_ordinal(static_cast<float>(sampled.k_high));
    int64_t lo = float_ordinal(static_cast<float>(sampled.k_low));
    std::string low_outcome = sampled.outcome_low;
    while (true) {
      Boundary b{sampled.series, 0.0, 0.0, low_outcome, sampled.outcome_high, true, 0};
      int64_t hi = end;
      // Invariant: k(lo) has low_outcome, k(hi) has b.outcome_high, a different outcome.
      while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        o.k = static_cast<double>(float_from_ordinal(mid));
        PointOutcome r = evaluate_point(o, cpu, spec.diagnose);
        ++b.refinement_runs;
        if (r.outcome == low_outcome) {
          lo = mid;
        } else {
          hi = mid;
          b.outcome_high = std::move(r.outcome);
        }
      }
      b.k_low = static_cast<double>(float_from_ordinal(lo));
      b.k_high = static_cast<double>(float_from_ordinal(hi));
      chain.push_back(b);
      // Done once the sampled high outcome is reached; otherwise go on from this change.
      if (hi == end || b.outcome_high == sampled.outcome_high) break;
      lo = hi;
      low_outcome = b.outcome_high;
    }
    if (progress) {
      const std::lock_guard lock(progress_mutex);
      progress(++done, total);
    }
  });
  std::vector<Boundary> refined;
  for (std::vector<Boundary>& chain : chains) {
    for (Boundary& b : chain) refined.push_back(std::move(b));
  }
  result.boundaries = std::move(refined);
}

}  // namespace qparity
