#include "sweep_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "atomic_file.h"
#include "budgets.h"
#include "command_errors.h"
#include "html_report.h"
#include "json_fragments.h"
#include "memory_check.h"
#include "option_checks.h"
#include "qparity/sweep/sweep.h"
#include "qparity/version.h"
#include "seed_command.h"

namespace qparity::cli {
namespace {

using Json = nlohmann::ordered_json;

// --k START:STOP:COUNT, split at the colons by CLI11; each part was checked by its validator.
KRange parse_k_range(const std::vector<std::string>& parts, bool log) {
  if (parts.size() != 3) {
    std::string text;
    for (size_t i = 0; i < parts.size(); ++i) text += (i > 0 ? ":" : "") + parts[i];
    throw std::invalid_argument("--k: '" + text + "' must be START:STOP:COUNT, e.g. 0.001:1000:61");
  }
  KRange r;
  CLI::detail::lexical_cast(parts[0], r.start);
  CLI::detail::lexical_cast(parts[1], r.stop);
  CLI::detail::lexical_cast(parts[2], r.count);
  r.log = log;
  return r;
}

// The distinct values of a list option, in order (each was checked by one_of).
template <typename T, typename Parse>
std::vector<T> distinct(const std::vector<std::string>& items, Parse parse) {
  std::vector<T> out;
  for (const std::string& item : items) {
    const T value = parse(item);
    if (std::find(out.begin(), out.end(), value) == out.end()) out.push_back(value);
  }
  return out;
}

int thread_count(const std::optional<int64_t>& threads) {
  if (threads) return static_cast<int>(*threads);  // in [1, 1024] (its validator)
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Every series of every k value is a point; min(threads, points) of them are in memory at once
// (each thread runs one point's experiment, its two paths one after the other).
void check_sweep_memory(const SweepSpec& spec, size_t k_count, int threads) {
  int64_t series = 1;
  for (size_t n : {spec.backends.size(), spec.observers.size(), spec.weight_qschemes.size(),
                   spec.reduce_ranges.size(), spec.weight_patterns.size()}) {
    series *= static_cast<int64_t>(std::max<size_t>(1, n));
  }
  const int64_t points = series * static_cast<int64_t>(k_count);
  const MemoryEstimate estimate =
      estimate_sweep_memory(spec.base.rows, points, threads, spec.diagnose);
  const std::optional<MemoryLimit> limit = read_memory_limit();
  const int64_t fit =
      limit ? sweep_threads_that_fit(limit->bytes, spec.base.rows, points, spec.diagnose) : 0;
  const std::string advice =
      fit > 0 ? fmt::format("use --threads {} or fewer, or fewer --rows", fit)
              : fmt::format("use fewer --rows{}", spec.diagnose ? " or --no-diagnosis" : "");
  check_fits(estimate, limit, estimate.concurrent > 1 ? "--threads" : "--rows",
             fmt::format("{} point{} of {} rows at once ({} threads; {} series x {} k values)",
                         estimate.concurrent, estimate.concurrent > 1 ? "s" : "", spec.base.rows,
                         threads, series, k_count),
             advice);
}

}  // namespace

SweepSpec parse_sweep_options(const SweepCommandOptions& o) {
  SweepSpec spec;
  spec.k = parse_k_range(o.k, o.log);
  spec.backends = distinct<std::string>(o.backends, [](const std::string& s) { return s; });
  spec.observers = distinct<ObserverKind>(
      o.observers, [](const std::string& s) { return parse_observer_kind(s).value(); });
  spec.weight_qschemes = distinct<QScheme>(
      o.weight_qschemes, [](const std::string& s) { return parse_weight_qscheme(s).value(); });
  spec.reduce_ranges =
      distinct<bool>(o.reduce_ranges, [](const std::string& s) { return s == "on"; });
  spec.weight_patterns = distinct<WeightPattern>(
      o.weight_patterns, [](const std::string& s) { return parse_weight_pattern(s).value(); });
  spec.base.rows = o.rows;
  spec.diagnose = !o.no_diagnosis;
  // Everything a point needs is checked before any work starts.
  const std::vector<double> ks = k_values(spec.k);
  for (double k : {ks.front(), ks.back()}) {
    SeedOptions probe = spec.base;
    probe.k = k;
    try {
      validate_seed_options(probe);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fmt::format("--k: k = {} is unusable: {}", k, e.what()));
    }
  }
  check_sweep_memory(spec, ks.size(), thread_count(o.threads));
  return spec;
}

namespace {

// A progress bar on a terminal, shown once the work has taken a second; silent otherwise.
class ProgressBar {
 public:
  explicit ProgressBar(std::string what)
      : what_(std::move(what)), enabled_(isatty(STDERR_FILENO) == 1),
        start_(std::chrono::steady_clock::now()) {}
  void update(int64_t done, int64_t total) {
    if (!enabled_) return;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (elapsed < 1.0 && done < total) return;
    if (elapsed < 1.0 && !shown_) return;
    shown_ = true;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / std::max<int64_t>(total, 1));
    const double eta = done > 0 ? elapsed * static_cast<double>(total - done) / static_cast<double>(done) : 0.0;
    std::cerr << fmt::format("\r{} [{}{}] {}/{} ({:.0f}%) eta {:.0f}s  ", what_,
                             std::string(static_cast<size_t>(filled), '#'),
                             std::string(static_cast<size_t>(kWidth - filled), '.'), done, total,
                             100.0 * static_cast<double>(done) / static_cast<double>(std::max<int64_t>(total, 1)),
                             eta)
              << std::flush;
  }
  ~ProgressBar() {
    if (shown_) std::cerr << "\n";
  }

 private:
  std::string what_;
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_;
};

std::string k_text(double k) { return fmt::format("{:.9g}", k); }

std::string render_console(const SweepSpec& spec, const SweepResult& r, int threads) {
  std::string out = fmt::format(
      "qparity sweep: {} points ({} series x {} k values from {} to {}, {}), rows {}, {} threads\n",
      r.points.size(), r.series.size(), r.series.empty() ? 0 : r.series.front().points.size(),
      k_text(spec.k.start), k_text(spec.k.stop), spec.k.log ? "log-spaced" : "linear",
      spec.base.rows, threads);
  out += "\noutcome by k range (contiguous k values with the same outcome)\n";
  size_t series_w = 6, outcome_w = 7;
  for (const OutcomeRange& g : r.ranges) {
    series_w = std::max(series_w, g.series.size());
    outcome_w = std::max(outcome_w, g.outcome.size());
  }
  out += fmt::format("  {:<{}}  {:>15}  {:>15}  {:>6}  {}\n", "series", series_w, "k from", "k to",
                     "points", "outcome");
  for (const OutcomeRange& g : r.ranges) {
    out += fmt::format("  {:<{}}  {:>15}  {:>15}  {:>6}  {}\n", g.series, series_w, k_text(g.k_first),
                       k_text(g.k_last), g.points, g.outcome);
  }
  if (!r.boundaries.empty()) {
    out += "\nboundaries";
    out += r.boundaries.front().refined ? " (refined to adjacent float32 values of k)\n"
                                        : " (between sampled k; --refine bisects to adjacent float32)\n";
    for (const Boundary& b : r.boundaries) {
      out += fmt::format("  {:<{}}  k {} -> {}: {} -> {}{}\n", b.series, series_w,
                         fmt::format("{:.9g}", b.k_low), fmt::format("{:.9g}", b.k_high),
                         b.outcome_low, b.outcome_high,
                         b.refined ? fmt::format("  ({} runs)", b.refinement_runs) : "");
    }
  }
  constexpr size_t kMaxTableRows = 200;
  out += "\npoints\n";
  if (r.points.size() > kMaxTableRows) {
    out += fmt::format("  {} points: see --json or --csv for every point\n", r.points.size());
    return out;
  }
  out += fmt::format("  {:<{}}  {:>15}  {:>9}  {:>9}  {:>6}  {:<16}  {}\n", "series", series_w, "k",
                     "bins diff", "fp32 diff", "max dq", "first mismatch", "outcome");
  for (const SweepSeries& s : r.series) {
    for (size_t i : s.points) {
      const SweepPoint& p = r.points[i];
      const auto& m = p.result.first_mismatch;
      out += fmt::format("  {:<{}}  {:>15}  {:>9}  {:>9}  {:>6}  {:<16}  {}\n", s.label, series_w,
                         k_text(p.options.k), p.result.bin_mismatch_count,
                         p.result.fp32_mismatch_count, p.result.max_abs_delta_q,
                         m ? fmt::format("[{},{},{},{}]", m->index.n, m->index.c, m->index.h, m->index.w)
                           : "-",
                         p.result.error ? "refused: " + *p.result.error : p.result.outcome);
    }
  }
  return out;
}

Json point_json(const SweepPoint& p, const std::string& series) {
  Json j = {{"series", series},
            {"k", p.options.k},
            {"backend", p.options.backend},
            {"observer", to_string(p.options.observer)},
            {"weight_qscheme", to_string(p.options.weight_qscheme)},
            {"reduce_range", p.options.activation_reduce_range},
            {"weight_pattern", to_string(p.options.weight_pattern)},
            {"rows", p.options.rows},
            {"bin_mismatch_count", p.result.bin_mismatch_count},
            {"fp32_mismatch_count", p.result.fp32_mismatch_count},
            {"max_abs_delta_q", p.result.max_abs_delta_q},
            {"outcome", p.result.outcome}};
  j["first_mismatch"] = first_mismatch_json(p.result.first_mismatch);
  j["error"] = p.result.error ? Json(*p.result.error) : Json(nullptr);
  return j;
}

std::string render_json(const SweepSpec& spec, const SweepResult& r, const RunContext& context) {
  const std::string& command_line = context.command_line;
  Json points = Json::array();
  for (const SweepSeries& s : r.series) {
    for (size_t i : s.points) points.push_back(point_json(r.points[i], s.label));
  }
  Json ranges = Json::array();
  for (const OutcomeRange& g : r.ranges) {
    ranges.push_back({{"series", g.series}, {"outcome", g.outcome}, {"k_first", g.k_first},
                      {"k_last", g.k_last}, {"points", g.points}});
  }
  Json boundaries = Json::array();
  for (const Boundary& b : r.boundaries) {
    boundaries.push_back({{"series", b.series}, {"k_low", b.k_low}, {"k_high", b.k_high},
                          {"outcome_low", b.outcome_low}, {"outcome_high", b.outcome_high},
                          {"refined", b.refined}, {"refinement_runs", b.refinement_runs}});
  }
  Json j = {{"schema", "qparity.sweep/1"},
            {"qparity_version", version()},
            {"command_line", command_line},
            {"k", {{"start", spec.k.start}, {"stop", spec.k.stop}, {"count", spec.k.count},
                   {"log", spec.k.log}}},
            {"rows", spec.base.rows},
            {"diagnosis", spec.diagnose},
            {"points", points},
            {"summary", {{"ranges", ranges}, {"boundaries", boundaries}}}};
  if (!context.budgets.empty()) j["budgets"] = budgets_json(context.budgets);
  // Any byte that is not UTF-8 (a file name) becomes U+FFFD instead of an exception.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string render_csv(const SweepResult& r) {
  std::string out =
      "series,k,backend,observer,weight_qscheme,reduce_range,weight_pattern,rows,outcome,"
      "bin_mismatch_count,fp32_mismatch_count,max_abs_delta_q,first_n,first_c,first_h,first_w,"
      "first_expected_q,first_actual_q,error\n";
  auto quoted = [](const std::string& s) {
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  for (const SweepSeries& s : r.series) {
    for (size_t i : s.points) {
      const SweepPoint& p = r.points[i];
      const auto& m = p.result.first_mismatch;
      out += fmt::format("{},{:.17g},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                         quoted(s.label), p.options.k, p.options.backend, to_string(p.options.observer),
                         to_string(p.options.weight_qscheme),
                         p.options.activation_reduce_range ? "on" : "off",
                         to_string(p.options.weight_pattern), p.options.rows,
                         quoted(p.result.outcome), p.result.bin_mismatch_count,
                         p.result.fp32_mismatch_count, p.result.max_abs_delta_q,
                         m ? std::to_string(m->index.n) : "", m ? std::to_string(m->index.c) : "",
                         m ? std::to_string(m->index.h) : "", m ? std::to_string(m->index.w) : "",
                         m ? std::to_string(m->expected_q) : "", m ? std::to_string(m->actual_q) : "",
                         p.result.error ? quoted(*p.result.error) : "");
    }
  }
  return out;
}

}  // namespace

void add_sweep_options(CLI::App& command, SweepCommandOptions& o) {
  CLI::Option* k = command.add_option("--k", o.k, "k values: START:STOP:COUNT, linear unless --log")
                       ->delimiter(':')
                       ->type_name("START:STOP:COUNT")
                       ->default_str("0.001:1000:61");
  // Each part by its place; a missing or fourth part is refused after parsing (parse_k_range),
  // the range itself by k_values (STOP > START, COUNT >= 1).
  k->transform(prefixed("COUNT", decimal_integer()).application_index(2));
  k->check(prefixed("START", finite_number()).application_index(0));
  k->check(prefixed("STOP", finite_number()).application_index(1));
  command.add_flag("--log", o.log, "Space the k values logarithmically (START must be > 0)");
  const auto list = [&](const char* name, std::vector<std::string>& values, const char* help,
                        std::vector<std::string> choices) {
    command.add_option(name, values, help)
        ->delimiter(',')
        ->check(one_of(std::move(choices)))
        ->type_name("LIST")
        ->capture_default_str();
  };
  list("--backend", o.backends, "Engines, comma-separated: fbgemm, qnnpack, onednn",
       {"fbgemm", "qnnpack", "onednn"});
  list("--observer", o.observers, "Fake-quant modules, comma-separated: fused, plain",
       {"fused", "plain"});
  list("--weight-qscheme", o.weight_qschemes,
       "Weight qschemes, comma-separated: per_tensor_symmetric, per_tensor_affine, "
       "per_channel_symmetric, per_channel_affine",
       {"per_tensor_symmetric", "per_tensor_affine", "per_channel_symmetric", "per_channel_affine"});
  list("--reduce-range", o.reduce_ranges,
       "Activation reduce_range settings, comma-separated: off, on", {"off", "on"});
  list("--weight-pattern", o.weight_patterns,
       "Weight sign patterns, comma-separated: identity, negative, mixed, dense",
       {"identity", "negative", "mixed", "dense"});
  command.add_option("--rows", o.rows, "Input height of every point (the seed: 256)")
      ->transform(decimal_integer())
      ->check(at_least(1))
      ->type_name("N")
      ->capture_default_str();
  command.add_option("--threads", o.threads, "Worker threads (default: every core), each holding "
                                             "one point in memory; results do not depend on it")
      ->transform(decimal_integer())
      ->check(in_range(1, 1024))
      ->type_name("N");
  command.add_flag("--refine", o.refine,
                   "Bisect every outcome boundary down to adjacent float32 values of k");
  command.add_flag("--no-diagnosis", o.no_diagnosis,
                   "Only count mismatches: outcomes are agree / diverge / float_differ");
  command.add_option("--json", o.json_path, "Write every point and the summary as JSON")
      ->type_name("FILE");
  command.add_option("--csv", o.csv_path, "Write one CSV row per point")->type_name("FILE");
  command.add_option("--html", o.html_path,
                     "Write a self-contained HTML report (outcome against k, ranges, points)")
      ->type_name("FILE");
  command.add_option("--fail-on", o.fail_on,
                     "CI budgets NAME=LIMIT that every point must meet (" + budget_help() +
                         "); exit 1 naming every budget exceeded")
      ->delimiter(',')
      ->check(budget_item())
      ->type_name("BUDGETS");
}

int run_sweep_command(const SweepCommandOptions& o, const std::string& command_line) {
  return run_reporting_errors("qparity sweep", "try fewer --rows or threads", [&]() -> int {
    const SweepSpec spec = parse_sweep_options(o);
    const int threads = thread_count(o.threads);
    const std::vector<Budget> budgets = parse_budgets(o.fail_on);
    check_distinct_outputs({{"--json", o.json_path}, {"--csv", o.csv_path}, {"--html", o.html_path}});
    OutputFiles outputs({{"--json", o.json_path}, {"--csv", o.csv_path}, {"--html", o.html_path}});
    const CpuFeatures cpu = detect_cpu_features();
    SweepResult result;
    {
      ProgressBar bar("sweep");
      result = run_sweep(spec, cpu, threads, [&](int64_t done, int64_t total) { bar.update(done, total); });
    }
    if (o.refine && !result.boundaries.empty()) {
      ProgressBar bar("refine");
      refine_boundaries(result, spec, cpu, threads,
                        [&](int64_t done, int64_t total) { bar.update(done, total); });
    }
    // Budgets hold for every point: the worst point is measured.
    BudgetMeasures worst;
    for (const SweepPoint& p : result.points) {
      worst.max_delta_q = std::max(worst.max_delta_q, static_cast<double>(p.result.max_abs_delta_q));
      worst.bin_mismatch = std::max(worst.bin_mismatch, static_cast<double>(p.result.bin_mismatch_count));
      worst.fp32_mismatch = std::max(worst.fp32_mismatch, static_cast<double>(p.result.fp32_mismatch_count));
      worst.fp32_error_max = std::max(worst.fp32_error_max, static_cast<double>(p.result.error_max));
      worst.error_mean = std::max(worst.error_mean, p.result.error_mean);
    }
    const RunContext context{command_line, check_budgets(budgets, worst)};
    if (outputs.wants("--json")) outputs.set("--json", render_json(spec, result, context));
    if (outputs.wants("--csv")) outputs.set("--csv", render_csv(result));
    if (outputs.wants("--html")) outputs.set("--html", render_sweep_html(spec, result, context));
    outputs.write_all(render_console(spec, result, threads));
    if (!budgets.empty()) return report_budgets("qparity sweep", context.budgets);
    // A refused configuration is no agreement: it counts like a diverging point.
    const bool all_agree = std::all_of(result.points.begin(), result.points.end(), [](const SweepPoint& p) {
      return p.result.bin_mismatch_count == 0 && !p.result.error;
    });
    return all_agree ? 0 : 1;
  });
}

}  // namespace qparity::cli
