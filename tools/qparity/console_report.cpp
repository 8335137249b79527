// Console report of `qparity seed`: the seed's own figures first, then the evidence.
#include <fmt/format.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "qparity/numerics/float32.h"
#include "reports.h"

namespace qparity::cli {
namespace {

// Seed-style summary of a row: the first two values, a window around `centre`, the last
// value, with "..." wherever indices are skipped.
std::string summarize_row(const std::vector<uint8_t>& bins, int64_t width, int64_t centre) {
  std::set<int64_t> shown{0, 1, width - 1};
  for (int64_t i = centre - 2; i <= centre + 1; ++i) {
    if (i >= 0 && i < width) shown.insert(i);
  }
  std::string s;
  int64_t previous = -1;
  for (const int64_t i : shown) {
    if (i < 0 || i >= width) continue;
    if (!s.empty()) s += ", ";
    if (i > previous + 1) s += "..., ";
    s += std::to_string(bins[static_cast<size_t>(i)]);
    previous = i;
  }
  return s;
}

std::string rule_summary(const UsedQParams& u) {
  if (!u.derivation) return "module buffers (no rule ran)";
  return std::string(to_string(u.derivation->rule)) + ": " + u.derivation->branch;
}

void append_point(std::string& out, const QuantPoint& fq, const QuantPoint& q8) {
  const auto& a = fq.used.grid;
  const auto& b = q8.used.grid;
  out += fmt::format("  {:<7} fake-quant  {:<15.9g} {:>5}  [{}, {}]  {}\n", fq.name, a.scale,
                     a.zero_point, a.range.min, a.range.max, rule_summary(fq.used));
  out += fmt::format("  {:<7} int8        {:<15.9g} {:>5}  [{}, {}]  {}\n", "", b.scale,
                     b.zero_point, b.range.min, b.range.max, rule_summary(q8.used));
  if (a.scale != b.scale || a.zero_point != b.zero_point) {
    const double rel = (static_cast<double>(b.scale) - a.scale) / a.scale;
    out += fmt::format("  {:<7} -> differs: scale ratio int8/fake-quant {:.9g} ({:+.3g} relative, {:+} ulp), "
                       "zero point {} vs {}\n",
                       "", static_cast<double>(b.scale) / a.scale, rel, ulp_distance(a.scale, b.scale),
                       a.zero_point, b.zero_point);
  }
  out += fmt::format("  {:<7} fake-quant: {}\n", "", fq.used.provenance);
  out += fmt::format("  {:<7} int8:       {}\n", "", q8.used.provenance);
}

}  // namespace

void append_explanation(std::string& out, const Explanation& why, bool paths_agree) {
  const Diagnosis& d = why.diagnosis;
  out += "\ndiagnosis (computed from this run's numbers)\n";
  if (d.paths_agree) out += "  the paths agree: every output bin and float is identical\n";
  for (const std::string& point : d.differing_without_effect) {
    out += "  note: the " + point + " qparams differ between the paths without changing any output\n";
  }
  int number = 1;
  for (const Finding& f : d.findings) {
    out += fmt::format("  {}. {} at the {}: {}\n", number++, to_string(f.divergence_class), f.point,
                       f.summary);
    out += fmt::format("     explains {} of {} mismatching elements ({} with different bins)\n",
                       f.explains_elements, d.mismatched_elements, f.explains_bin_mismatches);
    for (const std::string& e : f.evidence) {
      // The qparams table above already shows each point's provenance; JSON keeps it all.
      if (e.starts_with("fake-quant provenance") || e.starts_with("int8 provenance")) continue;
      out += "     - " + e + "\n";
    }
  }
  if (!d.paths_agree) {
    out += fmt::format("  first point where the paths part: {}\n", d.first_parting_point.value_or("?"));
    if (d.unexplained_elements > 0) {
      out += fmt::format("  WARNING: {} mismatching elements are NOT explained by any finding\n",
                         d.unexplained_elements);
    } else {
      out += "  every mismatching element is explained\n";
    }
  }
  if (why.trace) {
    const ElementExplanation& t = *why.trace;
    out += fmt::format("\nelement [{}, {}, {}, {}] through both paths (full trace: qparity explain)\n",
                       t.index.n, t.index.c, t.index.h, t.index.w);
    for (size_t i = 0; i < t.rows.size(); ++i) {
      const TraceRow& row = t.rows[i];
      const bool first = t.first_difference && *t.first_difference == i;
      if (!first && !row.differs) continue;
      out += fmt::format("  {:<34} fake-quant {:<16} int8 {}{}\n", row.stage, row.fake_quant,
                         row.int8, first ? "   <- first difference" : "");
    }
  }
  if (paths_agree && why.fixes.empty()) return;
  out += "\nfixes, each verified by re-running the experiment with the change applied\n";
  bool any = false;
  for (const VerifiedFix& v : why.fixes) {
    if (!v.verified_parity) continue;
    any = true;
    out += fmt::format("  FIX  {}\n       verified: bins agree after the change ({} floats still "
                       "differ)\n       why: {}\n       re-run: {}\n",
                       v.candidate.change, v.fp32_mismatch_count, v.candidate.rationale,
                       seed_command_line(v.candidate.options));
  }
  if (!any) out += "  none of the candidate changes brings the paths to bin parity\n";
  for (const VerifiedFix& v : why.fixes) {
    if (v.verified_parity) continue;
    out += "  tried, not a fix: " + v.candidate.change + " -> " +
           (v.error ? "refused: " + *v.error
                    : fmt::format("{} bins still differ", v.bin_mismatch_count)) +
           "\n";
  }
}

std::string render_seed_console(const SeedResult& r, const std::optional<Explanation>& why,
                                const RunContext&) {
  const Comparison& c = r.compare;
  const Shape4& s = r.output_shape;
  std::string out;
  out += fmt::format("qparity seed: QuantStub -> Conv2d 1x1 (weights k*{}, bias 0) + ReLU -> "
                     "DeQuantStub, QAT fake-quant vs convert()ed int8\n",
                     r.options.weight_pattern == WeightPattern::kIdentity ? std::string("I")
                                                                          : std::string(to_string(r.options.weight_pattern)));
  if (const std::string line = seed_command_line(r.options); line != "qparity seed") {
    out += "  options: " + line.substr(std::string("qparity seed ").size()) + "\n";
  }
  out += fmt::format("  k = {:.17g}, backend {}, observer {}, input [{}, {}, {}, {}] (ramp i/255 along W)\n",
                     r.options.k, r.profile.name,
                     r.options.observer == ObserverKind::kFused ? "FusedMovingAvgObsFakeQuantize"
                                                                : "FakeQuantize",
                     s.n, s.c, s.h, s.w);
  out += fmt::format("  engine numerics: {}\n\n", r.profile.provenance);

  if (c.bin_mismatch_count == 0 && c.fp32_mismatch_count == 0) {
    out += fmt::format("RESULT: the paths agree: all {} output bins and float outputs are identical.\n",
                       c.element_count);
  } else if (c.bin_mismatch_count == 0) {
    out += fmt::format("RESULT: bins agree, but {} of {} dequantized float outputs differ.\n",
                       c.fp32_mismatch_count, c.element_count);
  } else {
    out += fmt::format("RESULT: DIVERGE: {} of {} output bins differ (max |dq| = {}); {} float outputs differ.\n",
                       c.bin_mismatch_count, c.element_count, c.max_abs_delta_q, c.fp32_mismatch_count);
  }
  out += fmt::format("  error_mean = {:.4f}\n  error_max  = {:.4f}\n", c.error_mean,
                     static_cast<double>(c.error_max));
  if (c.first_mismatch) {
    const auto& m = *c.first_mismatch;
    out += fmt::format("  first mismatch at [{}, {}, {}, {}]\n", m.index.n, m.index.c, m.index.h,
                       m.index.w);
    out += fmt::format("    value fp32 error:      {:.10g}\n", static_cast<double>(m.error_fp32));
    out += fmt::format("    value expected quint8: {}\n", m.expected_q);
    out += fmt::format("    value output quint8:   {}\n", m.actual_q);
    if (r.options.k != 1.0) {
      out += "    (expected = the fake-quant path's own output bin; the seed script's "
             "(out * k*255).to(uint8) truncates and equals it only for k = 1)\n";
    }
  }

  const int64_t centre = c.first_mismatch ? c.first_mismatch->index.w : s.w / 2;
  out += "\nrow 0 of channel 0, output bins\n";
  out += fmt::format("  fake-quant  {}\n", summarize_row(r.fake_quant.run.bins, s.w, centre));
  out += fmt::format("  int8        {}\n", summarize_row(r.int8.run.bins, s.w, centre));
  out += fmt::format("  every row of every channel identical in both paths: {}\n",
                     c.rows_identical ? "yes" : "no");

  out += "\nquantization parameters each path used\n";
  out += fmt::format("  {:<7} {:<11} {:<15} {:>5}  {:<10}  {}\n", "point", "path", "scale", "zp",
                     "range", "rule");
  append_point(out, r.fake_quant.input, r.int8.input);
  append_point(out, r.fake_quant.weight, r.int8.weight);
  append_point(out, r.fake_quant.output, r.int8.output);
  if (why) append_explanation(out, *why, c.bin_mismatch_count == 0 && c.fp32_mismatch_count == 0);
  return out;
}

}  // namespace qparity::cli
