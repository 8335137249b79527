#include "qparity/diagnose/diagnosis.h"

#include <algorithm>
#include <array>
#include <optional>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "common/format.h"
#include "common/multiversion.h"
#include "qparity/numerics/fake_quant.h"
#include "qparity/numerics/float32.h"

namespace qparity {
namespace {

std::string describe_index(const ElementIndex& i) {
  return "[" + std::to_string(i.n) + ", " + std::to_string(i.c) + ", " + std::to_string(i.h) +
         ", " + std::to_string(i.w) + "]";
}

bool same_grid(const QuantGrid& a, const QuantGrid& b) {
  return a.scale == b.scale && a.zero_point == b.zero_point && a.range == b.range;
}

constexpr int kPointCount = 3;

// Whether two paths' grids agree at point p (every channel of a per-channel weight).
bool same_point(const PathGrids& a, const PathGrids& b, int p) {
  if (p == 0) return same_grid(a.input, b.input);
  if (p == 2) return same_grid(a.output, b.output);
  if (a.weight_channels.size() != b.weight_channels.size()) return false;
  for (size_t m = 0; m < a.weight_channels.size(); ++m) {
    if (!same_grid(a.weight_channels[m], b.weight_channels[m])) return false;
  }
  return same_grid(a.weight, b.weight);
}

// Gives `to` the grids `from` has at point p.
void take_point(PathGrids& to, const PathGrids& from, int p) {
  if (p == 0) {
    to.input = from.input;
  } else if (p == 2) {
    to.output = from.output;
  } else {
    to.weight = from.weight;
    to.weight_channels = from.weight_channels;
  }
}

// The channel whose grids differ first (0 for per-tensor points).
size_t first_differing_channel(const QuantPoint& a, const QuantPoint& b) {
  for (size_t m = 0; m < a.channels.size() && m < b.channels.size(); ++m) {
    if (!same_grid(a.channels[m].grid, b.channels[m].grid)) return m;
  }
  return 0;
}

// The point as one channel sees it (itself for per-tensor points).
QuantPoint channel_view(const QuantPoint& p, size_t channel) {
  QuantPoint view = p;
  if (!p.channels.empty()) view.used = p.channels[channel];
  view.channels.clear();
  return view;
}

const QuantPoint& point_at(const PathResult& r, int p) {
  return p == 0 ? r.input : (p == 1 ? r.weight : r.output);
}

std::string describe_grid(const QuantPoint& p) {
  const QuantGrid& g = p.used.grid;
  std::string s = "scale " + detail::g9(g.scale) + ", zero point " + std::to_string(g.zero_point) +
                  ", range [" + std::to_string(g.range.min) + ", " + std::to_string(g.range.max) +
                  "]";
  if (p.used.derivation) {
    s += " (" + std::string(to_string(p.used.derivation->rule)) + ": " + p.used.derivation->branch +
         ")";
  } else {
    s += " (module buffers as set)";
  }
  return s;
}

// How one value quantizes on a grid, stage by stage (eq. 4.1 / 5.1).
std::string describe_quantization(float v, const QuantGrid& g, bool clamp_to_range) {
  const float inverse = 1.0f / g.scale;
  const float steps = v * inverse;
  const float rounded = round_half_even(steps);
  const bool tie = std::fabs(steps - std::trunc(steps)) == 0.5f;
  const int64_t unclamped = fake_quant_unclamped_bin(v, g.scale, g.zero_point);
  const int64_t bin = clamp_to_range ? std::clamp(unclamped, g.range.min, g.range.max) : unclamped;
  std::string s = detail::g9(v) + " * f(1/" + detail::g9(g.scale) + ") = " + detail::g9(steps) +
                  (tie ? " (an exact .5 tie)" : "") + " -> RNE " + detail::g9(rounded);
  if (g.zero_point != 0) s += " + zp " + std::to_string(g.zero_point);
  s += " = bin " + std::to_string(unclamped);
  if (bin != unclamped) s += ", clamped to " + std::to_string(bin);
  const float back = dequantize_value(bin, g.scale, g.zero_point);
  s += " -> " + detail::g9(back) + (back == v ? " (exact)" : " (off by " + detail::g9(back - v) + ")");
  return s;
}

// Limits a rule applied on its way to a grid: the threshold / clamp class.
std::vector<std::string> limits_hit(const QuantPoint& p, const char* path) {
  std::vector<std::string> out;
  if (!p.channels.empty()) {
    for (size_t m = 0; m < p.channels.size(); ++m) {
      for (std::string& s : limits_hit(channel_view(p, m), path)) {
        out.push_back(std::move(s) + " (output channel " + std::to_string(m) + ")");
      }
    }
    return out;
  }
  if (!p.used.derivation) return out;
  const QParamDerivation& d = *p.used.derivation;
  if (d.raised_to_small_scale_threshold) {
    out.push_back(std::string(path) + " scale was raised to SMALL_SCALE_THRESHOLD 6.1e-05 (the " +
                  "rule computed " + detail::g9(d.scale_before_float) + " from min " + detail::g9(d.min_val) +
                  ", max " + detail::g9(d.max_val) + ")");
  }
  if (d.raised_to_eps) {
    out.push_back(std::string(path) + " scale was raised to eps " + detail::g9(d.scale) + " (computed " +
                  detail::g9(d.scale_before_float) + ")");
  }
  return out;
}

Finding grid_finding(int p, const SeedExperiment& experiment, const SeedResult& r) {
  const size_t channel = first_differing_channel(point_at(r.fake_quant, p), point_at(r.int8, p));
  const QuantPoint fq = channel_view(point_at(r.fake_quant, p), channel);
  const QuantPoint q8 = channel_view(point_at(r.int8, p), channel);
  const QuantGrid& a = fq.used.grid;
  const QuantGrid& b = q8.used.grid;
  Finding f;
  f.point = fq.name;
  if (!point_at(r.fake_quant, p).channels.empty()) {
    f.evidence.push_back("per-channel weights: output channel " + std::to_string(channel) +
                         " is the first whose grids differ");
  }
  f.evidence.push_back("fake-quant " + fq.name + ": " + describe_grid(fq));
  f.evidence.push_back("int8 " + q8.name + ": " + describe_grid(q8));
  if (a.scale != b.scale) {
    f.evidence.push_back("scales differ: int8/fake-quant = " +
                         detail::g9(static_cast<double>(b.scale) / a.scale) + " (" +
                         std::to_string(ulp_distance(a.scale, b.scale)) + " ulp, " +
                         detail::g9((static_cast<double>(b.scale) - a.scale) / a.scale) + " relative)");
  }
  if (a.zero_point != b.zero_point) {
    f.evidence.push_back("zero points differ: " + std::to_string(a.zero_point) + " vs " +
                         std::to_string(b.zero_point));
  }
  f.evidence.push_back("fake-quant provenance: " + fq.used.provenance);
  f.evidence.push_back("int8 provenance: " + q8.used.provenance);
  for (auto& s : limits_hit(fq, "fake-quant")) f.evidence.push_back(s);
  for (auto& s : limits_hit(q8, "int8")) f.evidence.push_back(s);
  if (p == 1) {
    // Representative values: every distinct nonzero weight on both grids.
    std::vector<float> shown;
    const PathGrids fq_grids = r.fake_quant.grids();
    const PathGrids q8_grids = r.int8.grids();
    for (int64_t m = 0; m < kSeedChannels; ++m) {
      for (const auto& tap : experiment.trace_fake_quant(fq_grids, {0, m, 0, 0}).taps) {
        if (tap.weight == 0.0f || std::find(shown.begin(), shown.end(), tap.weight) != shown.end()) {
          continue;
        }
        shown.push_back(tap.weight);
        f.evidence.push_back("weight " + detail::g9(tap.weight) + " on the fake-quant grid: " +
                             describe_quantization(tap.weight, fq_grids.weight_of(m), true));
        f.evidence.push_back("weight " + detail::g9(tap.weight) + " on the int8 grid: " +
                             describe_quantization(tap.weight, q8_grids.weight_of(m), true));
      }
    }
  }
  return f;
}

void add_element_evidence(Finding& f, int p, const SeedExperiment& experiment,
                          const PathGrids& before, const PathGrids& after, const ElementIndex& e) {
  const ElementTrace t0 = experiment.trace_fake_quant(before, e);
  const ElementTrace t1 = experiment.trace_fake_quant(after, e);
  std::string where = "element " + describe_index(e) + ": ";
  if (p == 0) {
    for (size_t i = 0; i < t0.taps.size(); ++i) {
      if (t0.taps[i].input_dequantized == t1.taps[i].input_dequantized) continue;
      f.evidence.push_back(where + "input " + detail::g9(t0.taps[i].input) + " -> fake-quant grid " +
                           describe_quantization(t0.taps[i].input, before.input, true) +
                           "; int8 grid " +
                           describe_quantization(t0.taps[i].input, after.input, true));
      break;
    }
  }
  if (p == 2) {
    const float y = std::max(t0.accumulator_real, 0.0f);
    f.evidence.push_back(where + "conv output " + detail::g9(y) + " -> fake-quant grid " +
                         describe_quantization(y, before.output, true) + "; int8 grid " +
                         describe_quantization(y, after.output, true));
  }
  f.evidence.push_back(where + "bin " + std::to_string(t0.output_bin) + " (" +
                       detail::g9(t0.output_dequantized) + ") becomes " + std::to_string(t1.output_bin) +
                       " (" + detail::g9(t1.output_dequantized) + ") when only the " + f.point +
                       " grid is swapped to the int8 one");
}

// Kernel-step classification of one element whose bin differs between the fake-quant path on
// the int8 grids and the int8 path itself.
DivergenceClass classify_kernel_element(const SeedExperiment& experiment,
                                        const SeedExperiment::TraceWeights& weights,
                                        const ElementIndex& e, std::string& detail) {
  const PathGrids& grids = weights.grids;
  const ElementTrace f = experiment.trace_fake_quant(weights, e);
  const ElementTrace q = experiment.trace_int8(weights, e);
  if (q.accumulator_exact != static_cast<int64_t>(q.accumulator)) {
    detail = "the int32 accumulator saturated: exact " + std::to_string(q.accumulator_exact) +
             ", kernel " + detail::g9(q.accumulator) + " (" +
             std::string(to_string(experiment.profile().accumulation)) + ")";
    return DivergenceClass::kThresholdClamp;
  }
  const QuantGrid& out = grids.output;
  if (f.unclamped != f.output_bin || (q.unclamped != q.output_bin && f.unclamped == q.unclamped)) {
    detail = "clamp limits differ: fake-quant clamps bin " + std::to_string(f.unclamped) +
             " to [" + std::to_string(out.range.min) + ", " + std::to_string(out.range.max) +
             "] -> " + std::to_string(f.output_bin) + "; the int8 kernel clamps " +
             std::to_string(q.unclamped) + " to [" +
             std::to_string(out.zero_point) + ", 255] -> " + std::to_string(q.output_bin);
    return DivergenceClass::kThresholdClamp;
  }
  const float q_steps = q.zero_point_added_before_rounding
                            ? q.pre_rounding - static_cast<float>(q.zero_point)
                            : q.pre_rounding;
  const bool f_tie = std::fabs(f.pre_rounding - std::trunc(f.pre_rounding)) == 0.5f;
  const bool q_tie = std::fabs(q.pre_rounding - std::trunc(q.pre_rounding)) == 0.5f;
  if ((f_tie || q_tie) && f.pre_rounding == q_steps) {
    detail = "both paths reach " + detail::g9(f.pre_rounding) + " output steps, an exact .5 tie; " +
             "fake-quant rounds it (RNE -> " + std::to_string(f.rounded) + ") then adds zp " +
             std::to_string(f.zero_point) + " = " + std::to_string(f.output_bin) + "; the int8 " +
             (q.zero_point_added_before_rounding
                  ? "kernel adds zp first (" + detail::g9(q.pre_rounding) + ") and rounds that -> "
                  : "kernel rounds -> ") +
             std::to_string(q.output_bin);
    return DivergenceClass::kRounding;
  }
  detail = "pre-rounding value " + detail::g9(f.pre_rounding) + " (fake-quant: f(y * f(1/" +
           detail::g9(out.scale) + ")), y = " + detail::g9(f.accumulator_real) + ") vs " + detail::g9(q_steps) +
           " (int8: f(f(acc " + detail::g9(q.accumulator) + ") * M " + detail::g9(q.multiplier) +
           ")) round to " + std::to_string(f.rounded) + " vs " +
           std::to_string(q.zero_point_added_before_rounding ? q.rounded - q.zero_point
                                                            : q.rounded);
  return DivergenceClass::kRequantPrecision;
}

std::string class_summary(DivergenceClass c, const std::string& point) {
  switch (c) {
    case DivergenceClass::kGridMismatch:
      return "the " + point + " is quantized on different grids in the two paths";
    case DivergenceClass::kFloatOnly:
      return "the " + point + " grids differ only in the last bits of the scale: bins agree, "
             "dequantized floats differ";
    case DivergenceClass::kThresholdClamp:
      return point == "requantization"
                 ? "the int8 kernel hit a limit the fake-quant path does not have"
                 : "the " + point + " scale hit a limit (threshold / eps) in one path only";
    case DivergenceClass::kRounding:
      return "pre-rounding values sit on .5 ties that the paths round differently";
    case DivergenceClass::kRequantPrecision:
      return "the int8 requantization multiplier chain lands on the other side of a rounding "
             "boundary than the fake-quant float product";
  }
  return "";
}

// True when equal bins mean equal floats and different bins different floats in both runs.
bool values_follow_bins(const PathRun& a, const PathRun& b) {
  if (a.value_of_bin != b.value_of_bin) return false;
  std::array<float, 256> sorted = a.value_of_bin;
  std::sort(sorted.begin(), sorted.end());
  return std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
}

// differs[i] = 1 where the two runs' bins or float outputs differ (vectorizable loops).
QPARITY_MULTIVERSION
void mark_differences(const PathRun& a, const PathRun& b, std::vector<uint8_t>& differs) {
  const size_t n = a.bins.size();
  differs.resize(n);
  // Raw restrict pointers: a byte store through the vector could alias its own pointers, which
  // would keep the compiler from vectorizing.
  const uint8_t* __restrict qa = a.bins.data();
  const uint8_t* __restrict qb = b.bins.data();
  uint8_t* __restrict out = differs.data();
  if (values_follow_bins(a, b)) {
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(qa[i] != qb[i]);
    return;
  }
  const float* va = a.value_of_bin.data();
  const float* vb = b.value_of_bin.data();
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<uint8_t>((qa[i] != qb[i]) | (va[qa[i]] != vb[qb[i]]));
  }
}

// How many flags are set (a local sum: accumulating into a struct member through a byte loop
// would be reloaded and stored on every element).
QPARITY_MULTIVERSION
int64_t count_set(const std::vector<uint8_t>& flags) {
  const uint8_t* __restrict f = flags.data();
  int64_t count = 0;
  for (size_t i = 0; i < flags.size(); ++i) count += f[i];
  return count;
}

// Elements still open that `changed` marks are explained now: counts them (and those whose
// bins differ between the original paths), closes them, and returns the first one's index.
struct Explained {
  int64_t elements = 0, bin_mismatches = 0;
  std::optional<size_t> first;
};

QPARITY_MULTIVERSION
Explained close_explained(std::vector<uint8_t>& open, const std::vector<uint8_t>& changed,
                          const PathRun& fake_quant, const PathRun& int8) {
  Explained e;
  const size_t n = open.size();
  const uint8_t* __restrict qa = fake_quant.bins.data();
  const uint8_t* __restrict qb = int8.bins.data();
  const uint8_t* __restrict hit_if = changed.data();
  uint8_t* __restrict still_open = open.data();
  int64_t elements = 0, bins = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto hit = static_cast<uint8_t>(still_open[i] & hit_if[i]);
    elements += hit;
    bins += hit & static_cast<uint8_t>(qa[i] != qb[i]);
  }
  if (elements > 0) {
    for (size_t i = 0; i < n; ++i) {
      if (still_open[i] & hit_if[i]) {
        e.first = i;
        break;
      }
    }
    for (size_t i = 0; i < n; ++i) still_open[i] = static_cast<uint8_t>(still_open[i] & ~hit_if[i]);
  }
  e.elements = elements;
  e.bin_mismatches = bins;
  return e;
}

}  // namespace

std::string_view to_string(DivergenceClass c) {
  switch (c) {
    case DivergenceClass::kGridMismatch:
      return "grid_mismatch";
    case DivergenceClass::kFloatOnly:
      return "float_only";
    case DivergenceClass::kThresholdClamp:
      return "threshold_clamp";
    case DivergenceClass::kRounding:
      return "rounding";
    case DivergenceClass::kRequantPrecision:
      return "requantization_precision";
  }
  return "?";
}

std::vector<std::string> points_with_differing_grids(const SeedResult& r) {
  std::vector<std::string> points;
  const PathGrids a = r.fake_quant.grids();
  const PathGrids b = r.int8.grids();
  for (int p = 0; p < kPointCount; ++p) {
    if (!same_point(a, b, p)) points.push_back(point_at(r.fake_quant, p).name);
  }
  return points;
}

Diagnosis diagnose(const SeedExperiment& experiment, const SeedResult& r) {
  Diagnosis d;
  const Shape4 shape = r.output_shape;
  const size_t n = static_cast<size_t>(shape.numel());
  const PathRun& target = r.int8.run;
  std::vector<uint8_t> open;  // mismatching, not yet explained
  mark_differences(r.fake_quant.run, target, open);
  d.mismatched_elements = count_set(open);
  d.paths_agree = d.mismatched_elements == 0;
  if (d.paths_agree) {
    for (int p = 0; p < kPointCount; ++p) {
      if (!same_point(r.fake_quant.grids(), r.int8.grids(), p)) {
        d.differing_without_effect.push_back(point_at(r.fake_quant, p).name);
      }
    }
    return d;
  }

  // Grid step: swap each differing point's grid to the int8 one, in model order.
  std::vector<uint8_t> changed;
  PathGrids grids = r.fake_quant.grids();
  const PathGrids int8_grids = r.int8.grids();
  // The run before the current swap: the original fake-quant run, then each swapped one.
  std::optional<PathRun> swapped_last;
  const PathRun* previous = &r.fake_quant.run;
  for (int p = 0; p < kPointCount; ++p) {
    if (same_point(grids, int8_grids, p)) continue;
    const PathGrids before = grids;
    take_point(grids, int8_grids, p);
    PathRun swapped = experiment.run_fake_quant(grids);
    Finding f = grid_finding(p, experiment, r);
    mark_differences(*previous, swapped, changed);
    const Explained explained = close_explained(open, changed, r.fake_quant.run, target);
    f.explains_elements = explained.elements;
    f.explains_bin_mismatches = explained.bin_mismatches;
    if (explained.first) f.example = unravel(shape, static_cast<int64_t>(*explained.first));
    if (f.explains_elements > 0) {
      const bool limits = !limits_hit(point_at(r.fake_quant, p), "").empty() ||
                          !limits_hit(point_at(r.int8, p), "").empty();
      f.divergence_class = limits ? DivergenceClass::kThresholdClamp
                                  : (f.explains_bin_mismatches == 0 ? DivergenceClass::kFloatOnly
                                                                    : DivergenceClass::kGridMismatch);
      f.summary = class_summary(f.divergence_class, f.point);
      add_element_evidence(f, p, experiment, before, grids, *f.example);
      d.findings.push_back(std::move(f));
    } else {
      d.differing_without_effect.push_back(f.point);
    }
    swapped_last = std::move(swapped);
    previous = &*swapped_last;
  }

  // Kernel step: what still differs is due to the integer kernel itself.
  std::map<DivergenceClass, Finding> kernel;
  const int64_t still_open = count_set(open);
  if (still_open > 0) mark_differences(*previous, target, changed);
  const SeedExperiment::TraceWeights weights = experiment.trace_weights(grids);
  for (size_t i = 0; still_open > 0 && i < n; ++i) {
    if (!(open[i] & changed[i])) continue;
    const ElementIndex e = unravel(shape, static_cast<int64_t>(i));
    std::string detail;
    const DivergenceClass c = classify_kernel_element(experiment, weights, e, detail);
    Finding& f = kernel[c];
    if (f.explains_elements == 0) {
      f.divergence_class = c;
      f.point = "requantization";
      f.summary = class_summary(c, f.point);
      f.example = e;
      f.evidence.push_back("requantization: " + std::string(to_string(experiment.profile().requant)));
      f.evidence.push_back("element " + describe_index(e) + ": " + detail);
    }
    open[i] = 0;
    ++f.explains_elements;
    if (r.fake_quant.run.bins[i] != target.bins[i]) ++f.explains_bin_mismatches;
  }
  for (auto& [c, f] : kernel) d.findings.push_back(std::move(f));
  if (!d.findings.empty()) d.first_parting_point = d.findings.front().point;
  d.unexplained_elements = count_set(open);
  return d;
}

}  // namespace qparity
