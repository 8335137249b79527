// Self-contained HTML reports of `qparity seed`, `explain` and `sweep`: one file, inline CSS,
// plots as inline SVG generated here (html_svg.h), no script and nothing fetched (a
// Content-Security-Policy forbids every fetch). The same result gives the same bytes.
#include "html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "html_page.h"
#include "html_svg.h"
#include "qparity/numerics/float32.h"
#include "qparity/version.h"

namespace qparity::cli {
namespace {

using html::Card;
using html::cards;
using html::command_html;
using html::escape;
using html::Header;
using html::page;
using html::section;
using html::Status;
using html::table;
using html::td;
using html::td_html;

constexpr size_t kMaxPointRows = 2000;  // points table cap; --json / --csv have every point

// The seed's own 4-decimal figures, or 4 significant digits for values that would print as 0.
std::string figure(double v) {
  return v != 0.0 && std::abs(v) < 0.001 ? fmt::format("{:.4g}", v) : fmt::format("{:.4f}", v);
}

std::string f9(float v) { return fmt::format("{:.9g}", static_cast<double>(v)); }
std::string g17(double v) { return fmt::format("{:.17g}", v); }
std::string index_text(const ElementIndex& i) {
  return fmt::format("[{}, {}, {}, {}]", i.n, i.c, i.h, i.w);
}

std::string observer_name(ObserverKind kind) {
  return kind == ObserverKind::kFused ? "FusedMovingAvgObsFakeQuantize" : "FakeQuantize";
}

std::string engine_word(const BackendProfile& p) {
  return p.verified_against_real_kernel ? "verified" : "EMULATED";
}

std::string engine_badge(const BackendProfile& p) {
  return p.verified_against_real_kernel
             ? "<span class=\"badge verified\">VERIFIED bit-exact vs PyTorch 1.13.1</span>"
             : "<span class=\"badge emulated\">EMULATED — no real-kernel check</span>";
}

// ---------------------------------------------------------------------------------------------
// Pieces shared by the seed and explain reports.

// Bins of the output row (n, c, h): index = column w.
std::vector<int> row_bins(const std::vector<uint8_t>& bins, const Shape4& s, int64_t n, int64_t c,
                          int64_t h) {
  std::vector<int> row(static_cast<size_t>(s.w));
  const int64_t offset = ((n * s.c + c) * s.h + h) * s.w;
  for (int64_t w = 0; w < s.w; ++w)
    row[static_cast<size_t>(w)] = bins[static_cast<size_t>(offset + w)];
  return row;
}

// The staircase of row (n, c, h) with a zoom inset around `centre`; `highlight` marks a column.
std::string staircase_figures(const SeedResult& r, int64_t n, int64_t c, int64_t h, int64_t centre,
                              int64_t highlight, const std::string& caption_intro) {
  const Shape4& s = r.output_shape;
  html::StaircaseChart main;
  main.fake_quant = row_bins(r.fake_quant.run.bins, s, n, c, h);
  main.int8 = row_bins(r.int8.run.bins, s, n, c, h);
  main.w_first = 0;
  main.w_last = s.w - 1;
  int64_t divergent = 0;
  for (int64_t w = 0; w < s.w; ++w) {
    if (main.fake_quant[static_cast<size_t>(w)] != main.int8[static_cast<size_t>(w)]) {
      if (main.first_mismatch < 0) main.first_mismatch = w;
      ++divergent;
    }
  }
  if (centre < 0) centre = main.first_mismatch >= 0 ? main.first_mismatch : s.w / 2;
  constexpr int64_t kHalf = 6;
  int64_t z0 = std::max<int64_t>(0, centre - kHalf);
  int64_t z1 = std::min<int64_t>(s.w - 1, z0 + 2 * kHalf);
  z0 = std::max<int64_t>(0, z1 - 2 * kHalf);
  main.zoom_first = z0;
  main.zoom_last = z1;
  main.highlight = highlight;
  main.id = "staircase";
  main.label = fmt::format(
      "Output bin against column w of row {} of channel {} (batch {}), "
      "fake-quant and int8; {} columns differ",
      h, c, n, divergent);
  html::StaircaseChart zoom = main;
  zoom.id = "staircase-zoom";
  zoom.zoom = true;
  zoom.w_first = z0;
  zoom.w_last = z1;
  zoom.label = fmt::format("Zoom on columns {} to {}", z0, z1);

  std::string out = "<div class=\"plots\">\n<figure>\n" + html::staircase_svg(main);
  out +=
      "<ul class=\"legend\">"
      "<li><span class=\"sw line\" style=\"background:#1f6fb4;opacity:.6;height:6px\"></span>"
      "fake-quant path (QAT forward)</li>"
      "<li><span class=\"sw line\" style=\"background:#f28e1c\"></span>int8 path "
      "(convert()ed model)</li>"
      "<li><span class=\"sw\" style=\"background:#d32f2f;width:10px;height:10px;"
      "border-radius:50%\"></span>bins differ</li></ul>\n";
  out += fmt::format(
      "<figcaption>{} Output bin (y) of every column w (x) of row {}, channel {}, batch {}; "
      "column w is fed w/255. {}</figcaption>\n</figure>\n",
      escape(caption_intro), h, c, n,
      divergent == 0
          ? std::string("Both paths give the same bin in every column.")
          : fmt::format("Red: the {} of {} columns whose bins differ (first at w = {}); the dashed "
                        "box is enlarged at the right.",
                        divergent, s.w, main.first_mismatch));
  out += "<figure>\n" + html::staircase_svg(zoom);
  out += fmt::format(
      "<figcaption>Columns {} to {}, one grid line per bin: open blue circles are the fake-quant "
      "bins, filled orange dots the int8 bins, red rings mark columns that differ.{}</figcaption>\n"
      "</figure>\n</div>\n",
      z0, z1,
      main.first_mismatch >= 0 ? ""
                               : " (No column differs: the inset shows the middle of the row.)");
  return out;
}

std::string trace_table(const ElementExplanation& e) {
  std::string rows;
  for (size_t i = 0; i < e.rows.size(); ++i) {
    const TraceRow& row = e.rows[i];
    const bool first = e.first_difference && *e.first_difference == i;
    const std::string cls = first ? "first-diff" : (row.differs ? "differs" : "");
    rows += fmt::format("<tr{} data-stage=\"{}\" data-differs=\"{}\">",
                        cls.empty() ? "" : " class=\"" + cls + "\"", escape(row.stage),
                        row.differs ? "true" : "false");
    rows += td(std::to_string(i + 1), "num") + td(row.stage) + td(row.fake_quant, "mono") +
            td(row.int8, "mono");
    rows += td_html(first ? "<span class=\"mark\">◀ first difference</span>"
                          : (row.differs ? "<span class=\"mark\">differs</span>" : ""));
    rows += "</tr>\n";
  }
  return table("trace", {"#", "stage", "fake-quant path", "int8 path", ""}, rows);
}

std::string engine_section(const std::vector<BackendProfile>& profiles) {
  std::string rows;
  for (const BackendProfile& p : profiles) {
    rows += fmt::format("<tr data-engine=\"{}\" data-verified=\"{}\">", escape(p.name),
                        p.verified_against_real_kernel ? "true" : "false");
    rows +=
        td(p.name, "mono") + td_html(engine_badge(p)) + td(std::string(to_string(p.requant))) +
        td(std::string(to_string(p.accumulation)) +
           (p.onednn_isa ? " (oneDNN ISA " + std::string(to_string(*p.onednn_isa)) + ")" : "")) +
        td(std::string(to_string(p.fused_fake_quant_rule))) + td(p.provenance);
    rows += "</tr>\n";
  }
  std::string inner =
      "<p class=\"note\">Whose integer numerics the int8 path emulates. Only engines a parity test "
      "checks bit for bit against real PyTorch 1.13.1 are marked verified; fbgemm is emulated from "
      "source, because Debian's PyTorch has no fbgemm.</p>\n";
  inner += table(
      "engine-table",
      {"engine", "status", "requantization", "accumulation", "fused fake-quant rule", "provenance"},
      rows);
  return section("engine", "Engine numerics", inner);
}

std::string budgets_section(const std::vector<BudgetVerdict>& verdicts) {
  if (verdicts.empty()) return {};
  std::string rows;
  bool any = false;
  for (const BudgetVerdict& v : verdicts) {
    any = any || v.exceeded;
    rows += fmt::format("<tr data-budget=\"{}\" data-exceeded=\"{}\">", escape(v.budget.name),
                        v.exceeded ? "true" : "false");
    rows += td(v.budget.name, "mono") + td(fmt::format("{:.9g}", v.budget.limit), "num") +
            td(fmt::format("{:.9g}", v.measured), "num") +
            td_html(v.exceeded ? "<span class=\"badge exceeded\">EXCEEDED</span>"
                               : "<span class=\"badge held\">held</span>");
    rows += "</tr>\n";
  }
  std::string inner = any ? "<p class=\"warning\">At least one budget is exceeded: the run exits "
                            "with code 1.</p>\n"
                          : "<p class=\"ok\">Every budget holds.</p>\n";
  inner += table("budgets", {"budget (--fail-on)", "#limit", "#measured", "verdict"}, rows);
  return section("budgets-section", "CI budgets", inner);
}

std::string reproduce_block(const RunContext& context, const std::string& profile_names,
                            const std::string& equivalent) {
  std::string out;
  out += "<p>The exact command line of this run:</p>\n";
  out += "<pre id=\"command-line\">" + escape(context.command_line) + "</pre>\n";
  if (!equivalent.empty()) {
    out += "<p>The same scenario, without output files:</p>\n<pre id=\"equivalent\">" +
           escape(equivalent) + "</pre>\n";
  }
  out += fmt::format(
      "<p>qparity version <code id=\"version\">{}</code>, engine profile{} "
      "<code id=\"profile\">{}</code>.</p>\n",
      escape(version()), profile_names.find(',') == std::string::npos ? "" : "s",
      escape(profile_names));
  return out;
}

std::string scenario_table(const SeedOptions& o, const Shape4& s) {
  const auto opt = [](const std::optional<double>& v, const char* seed_default) {
    return v ? g17(*v) : std::string(seed_default);
  };
  std::vector<std::pair<std::string, std::string>> items = {
      {"k", g17(o.k)},
      {"backend", o.backend},
      {"observer", std::string(to_string(o.observer)) + " (" + observer_name(o.observer) + ")"},
      {"rows", std::to_string(o.rows)},
      {"output shape", fmt::format("[{}, {}, {}, {}]", s.n, s.c, s.h, s.w)},
      {"weight qscheme", std::string(to_string(o.weight_qscheme))},
      {"weight range", fmt::format("[{}, {}]", o.weight_quant_min, o.weight_quant_max)},
      {"activation reduce_range", o.activation_reduce_range ? "on" : "off"},
      {"weight pattern", std::string(to_string(o.weight_pattern))},
      {"weight observer max_val", opt(o.weight_observer_max, "k (the seed)")},
      {"output observer max_val", opt(o.output_observer_max, "k (the seed)")},
      {"input scale", opt(o.input_scale, "1/255 (the seed)")},
      {"weight scale", opt(o.weight_scale, "2k/255 (the seed)")},
      {"output scale", opt(o.output_scale, "k/255 (the seed)")},
  };
  std::string rows;
  for (const auto& [k, v] : items) rows += "<tr>" + td(k) + td(v, "mono") + "</tr>\n";
  return table("scenario", {"setting", "value"}, rows, "compact");
}

// ---------------------------------------------------------------------------------------------
// Seed report pieces.

std::string rule_text(const UsedQParams& u) {
  if (!u.derivation) return "module buffers (no rule ran)";
  return std::string(to_string(u.derivation->rule)) + ": " + u.derivation->branch;
}

std::string qparams_rows(const QuantPoint& fq, const QuantPoint& q8) {
  const QuantGrid& a = fq.used.grid;
  const QuantGrid& b = q8.used.grid;
  struct Row {
    std::string quantity, fq, q8, diff;
    bool differs = false;
    bool mono = true;
  };
  std::vector<Row> rows;
  rows.push_back({"dtype / qscheme",
                  std::string(to_string(fq.dtype)) + " " + std::string(to_string(fq.qscheme)),
                  std::string(to_string(q8.dtype)) + " " + std::string(to_string(q8.qscheme)), "",
                  fq.dtype != q8.dtype || fq.qscheme != q8.qscheme});
  {
    Row r{"scale", f9(a.scale), f9(b.scale), "identical", a.scale != b.scale};
    if (r.differs) {
      const double ratio = static_cast<double>(b.scale) / static_cast<double>(a.scale);
      r.diff = fmt::format("int8 / fake-quant = {:.9g} ({:+.3g} relative, {:+} ulp)", ratio,
                           ratio - 1.0, ulp_distance(a.scale, b.scale));
    }
    rows.push_back(r);
  }
  rows.push_back({"zero point", std::to_string(a.zero_point), std::to_string(b.zero_point),
                  a.zero_point == b.zero_point
                      ? std::string("identical")
                      : fmt::format("int8 − fake-quant = {:+}", b.zero_point - a.zero_point),
                  a.zero_point != b.zero_point});
  const bool range_differs = a.range.min != b.range.min || a.range.max != b.range.max;
  rows.push_back({"range", fmt::format("[{}, {}]", a.range.min, a.range.max),
                  fmt::format("[{}, {}]", b.range.min, b.range.max),
                  range_differs ? "differs" : "identical", range_differs});
  rows.push_back({"rule and branch", rule_text(fq.used), rule_text(q8.used), "", false, false});
  const auto inputs = [](const UsedQParams& u) {
    if (!u.derivation) return std::string("—");
    const QParamDerivation& d = *u.derivation;
    return fmt::format(
        "min {:.9g}, max {:.9g} over [{}, {}]; scale before the float32 store "
        "{:.17g}",
        static_cast<double>(d.min_val), static_cast<double>(d.max_val), d.range.min, d.range.max,
        d.scale_before_float);
  };
  rows.push_back({"rule inputs", inputs(fq.used), inputs(q8.used), "", false, false});
  rows.push_back({"provenance", fq.used.provenance, q8.used.provenance, "", false, false});

  std::string out;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    out += fmt::format("<tr data-point=\"{}\" data-quantity=\"{}\" data-differs=\"{}\"{}>",
                       escape(fq.name), escape(r.quantity), r.differs ? "true" : "false",
                       i == 0 ? " class=\"point-start\"" : "");
    if (i == 0) {
      out +=
          fmt::format("<td class=\"point\" rowspan=\"{}\">{}</td>", rows.size(), escape(fq.name));
    }
    const std::string value_class = std::string(r.mono ? "mono" : "") + (r.differs ? " diff" : "");
    out += td(r.quantity) + td(r.fq, value_class) + td(r.q8, value_class) +
           td(r.diff, r.differs ? "diff" : "");
    out += "</tr>\n";
  }
  return out;
}

std::string diagnosis_section(const std::optional<Explanation>& why) {
  if (!why) {
    return section("diagnosis", "Diagnosis",
                   "<p id=\"diagnosis-skipped\" class=\"note\">The diagnosis was skipped "
                   "(<code>--no-diagnosis</code>).</p>\n");
  }
  const Diagnosis& d = why->diagnosis;
  std::string inner =
      "<p class=\"note\">Computed from this run's numbers: each differing grid is "
      "swapped from the fake-quant path to the int8 one in model order and the "
      "experiment re-run; what remains is traced through the integer kernel.</p>\n";
  if (d.paths_agree) {
    inner +=
        "<p class=\"ok\">The paths agree: every output bin and float is identical. No cause "
        "to report.</p>\n";
  }
  for (const std::string& point : d.differing_without_effect) {
    inner += "<p class=\"note\">Note: the " + escape(point) +
             " qparams differ between the paths without changing any output.</p>\n";
  }
  inner += "<div id=\"findings\">\n";
  int number = 1;
  for (const Finding& f : d.findings) {
    inner += fmt::format("<div class=\"finding\" data-class=\"{}\" data-point=\"{}\">\n",
                         escape(to_string(f.divergence_class)), escape(f.point));
    inner += fmt::format("<h3>{}. <span class=\"badge cls\">{}</span> at the {}</h3>\n", number++,
                         escape(to_string(f.divergence_class)), escape(f.point));
    inner += "<p>" + escape(f.summary) + "</p>\n";
    inner += fmt::format(
        "<p><strong>Explains {} of {} mismatching elements</strong> ({} with "
        "different bins){}.</p>\n",
        f.explains_elements, d.mismatched_elements, f.explains_bin_mismatches,
        f.example ? "; for example " + index_text(*f.example) : "");
    inner += "<ul class=\"evidence\">\n";
    for (const std::string& e : f.evidence) inner += "<li>" + escape(e) + "</li>\n";
    inner += "</ul>\n</div>\n";
  }
  inner += "</div>\n";
  if (!d.paths_agree) {
    inner += fmt::format("<p>First point where the paths part: <strong>{}</strong>.</p>\n",
                         escape(d.first_parting_point.value_or("?")));
    if (d.unexplained_elements > 0) {
      inner += fmt::format(
          "<p class=\"warning\">WARNING: {} mismatching elements are NOT "
          "explained by any finding.</p>\n",
          d.unexplained_elements);
    } else {
      inner += "<p class=\"ok\">Every mismatching element is explained.</p>\n";
    }
  }
  return section("diagnosis", "Diagnosis", inner);
}

std::string fixes_section(const std::optional<Explanation>& why) {
  if (!why) {
    return section("fixes-section", "Fixes",
                   "<p class=\"note\">Not computed (<code>--no-diagnosis</code>).</p>\n");
  }
  std::string inner =
      "<p class=\"note\">Each change was applied and the whole experiment re-run. Only changes "
      "that reach parity are fixes.</p>\n";
  std::string good, bad;
  for (const VerifiedFix& v : why->fixes) {
    const std::string command = seed_command_line(v.candidate.options);
    const std::string change = "<strong>" + escape(v.candidate.change) +
                               "</strong><div class=\"why\">" + escape(v.candidate.rationale) +
                               "</div>";
    const std::string rerun = command_html(command);
    if (v.verified_parity) {
      good += "<tr data-verified=\"true\">" +
              td_html("<span class=\"badge fix\">FIX ✓ verified</span>") + td_html(change) +
              td(fmt::format("all bins agree; {} floats still differ", v.fp32_mismatch_count)) +
              td_html(rerun) + "</tr>\n";
    } else {
      bad += "<tr data-verified=\"false\">" +
             td_html("<span class=\"badge notfix\">✗ NOT A FIX</span>") + td_html(change) +
             td(v.error ? "refused: " + *v.error
                        : fmt::format("{} bins still differ ({} floats)", v.bin_mismatch_count,
                                      v.fp32_mismatch_count)) +
             td_html(rerun) + "</tr>\n";
    }
  }
  if (why->fixes.empty()) {
    inner += why->diagnosis.paths_agree
                 ? "<p class=\"ok\">Nothing to fix: the paths agree.</p>\n"
                 : "<p class=\"note\">No candidate change applies to these findings.</p>\n";
    return section("fixes-section", "Fixes", inner);
  }
  inner += "<h3>Verified fixes</h3>\n";
  if (good.empty()) {
    inner +=
        "<p id=\"no-fix\" class=\"warning\">None of the candidate changes brings the paths to "
        "bin parity.</p>\n";
  } else {
    inner += table("fixes", {"", "change (and why it helps)", "re-run result", "re-run it"}, good,
                   "", {12, 48, 16, 24});
  }
  if (!bad.empty()) {
    inner +=
        "<h3>Tried, not a fix</h3>\n<p class=\"note\">These changes were tried and re-run; "
        "they do not bring the paths to parity.</p>\n";
    inner += table("not-fixes", {"", "change (and why it was tried)", "re-run result", "re-run it"},
                   bad, "", {12, 48, 16, 24});
  }
  return section("fixes-section", "Fixes (each verified by a re-run)", inner);
}

std::string dq_histogram_section(const SeedResult& r) {
  std::array<int64_t, 511> counts{};
  const auto& a = r.fake_quant.run.bins;
  const auto& b = r.int8.run.bins;
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) ++counts[static_cast<size_t>(int{a[i]} - int{b[i]} + 255)];
  html::BarChart chart;
  chart.id = "dq-histogram";
  chart.label = fmt::format("Histogram of fake-quant bin minus int8 bin over all {} elements", n);
  chart.x_title = "Δq = fake-quant bin − int8 bin";
  chart.y_title = "elements";
  int64_t max_count = 0, min_count = 0;
  std::string rows;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    const int64_t dq = static_cast<int64_t>(i) - 255;
    chart.bars.push_back({dq, counts[i], dq == 0 ? "bar-agree" : "bar-diverge"});
    max_count = std::max(max_count, counts[i]);
    min_count = min_count == 0 ? counts[i] : std::min(min_count, counts[i]);
    rows += fmt::format("<tr data-dq=\"{}\" data-count=\"{}\">", dq, counts[i]) +
            td(dq == 0 ? "0" : fmt::format("{:+}", dq), "num") +
            td(std::to_string(counts[i]), "num") +
            td(fmt::format("{:.4f} %", 100.0 * static_cast<double>(counts[i]) /
                                           static_cast<double>(std::max<size_t>(n, 1))),
               "num") +
            "</tr>\n";
  }
  chart.log_y = min_count > 0 && max_count / min_count > 50;
  std::string inner = fmt::format(
      "<p class=\"note\">Over every one of the {} output elements (all rows and channels): how far "
      "the int8 bin is from the fake-quant bin. Δq = 0 (blue) agrees; red bars differ.{}</p>\n",
      n, chart.log_y ? " Counts on a log scale." : "");
  inner += "<div class=\"side\"><figure>" + html::bar_chart_svg(chart) + "</figure>\n<div>" +
           table("dq-table", {"#Δq", "#elements", "#share"}, rows, "", {},
                 chart.bars.size() > 10 ? "scroll-y short" : "") +
           "</div></div>\n";
  return section("dq", "Δq histogram", inner);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string render_seed_html(const SeedResult& r, const std::optional<Explanation>& why,
                             const RunContext& context) {
  const Comparison& c = r.compare;
  Header h;
  h.command = "seed";
  h.title = "qparity seed";
  if (c.bin_mismatch_count == 0 && c.fp32_mismatch_count == 0) {
    h.status = Status::kAgree;
    h.status_word = "AGREE";
    h.headline = fmt::format("The paths agree: all {} output bins and float outputs are identical.",
                             c.element_count);
  } else if (c.bin_mismatch_count == 0) {
    h.status = Status::kWarn;
    h.status_word = "FLOATS DIFFER";
    h.headline = fmt::format("Bins agree, but {} of {} dequantized float outputs differ.",
                             c.fp32_mismatch_count, c.element_count);
  } else {
    h.status = Status::kDiverge;
    h.status_word = "DIVERGE";
    h.headline = fmt::format(
        "{} of {} output bins differ (max |Δq| = {}); {} float outputs differ.",
        c.bin_mismatch_count, c.element_count, c.max_abs_delta_q, c.fp32_mismatch_count);
  }
  const Shape4& s = r.output_shape;
  h.facts = {fmt::format("k = {:.9g}", r.options.k),
             fmt::format("backend {} ({})", r.profile.name, engine_word(r.profile)),
             "observer " + observer_name(r.options.observer),
             fmt::format("output [{}, {}, {}, {}]", s.n, s.c, s.h, s.w),
             "qparity " + std::string(version())};
  h.nav = {{"summary", "Result"},          {"bins", "Staircase"},      {"dq", "Δq histogram"},
           {"diagnosis", "Diagnosis"},     {"fixes-section", "Fixes"}, {"trace-section", "Trace"},
           {"qparams-section", "Qparams"}, {"engine", "Engine"}};
  if (!context.budgets.empty()) h.nav.emplace_back("budgets-section", "Budgets");
  h.nav.emplace_back("reproduce", "Reproduce");

  std::string body;
  // Headline figures.
  {
    std::vector<Card> items = {
        {"bin_mismatch_count", "bins differ", std::to_string(c.bin_mismatch_count),
         fmt::format("of {} ({:.2f} %)", c.element_count,
                     100.0 * static_cast<double>(c.bin_mismatch_count) /
                         static_cast<double>(std::max<int64_t>(c.element_count, 1))),
         c.bin_mismatch_count > 0 ? "bad" : "good"},
        {"max_abs_delta_q", "max |Δq|", std::to_string(c.max_abs_delta_q), "integer steps",
         c.max_abs_delta_q > 0 ? "bad" : "good"},
        {"fp32_mismatch_count", "floats differ", std::to_string(c.fp32_mismatch_count),
         fmt::format("of {} outputs", c.element_count), ""},
        {"error_mean", "error_mean", figure(c.error_mean), fmt::format("{:.9g}", c.error_mean), ""},
        {"error_max", "error_max", figure(static_cast<double>(c.error_max)), f9(c.error_max), ""},
    };
    if (c.first_mismatch) {
      const FirstMismatch& m = *c.first_mismatch;
      items.push_back({"first_mismatch", "first mismatch [n, c, h, w]", index_text(m.index),
                       fmt::format("expected quint8 {}, int8 {}; fp32 error {:.10g}", m.expected_q,
                                   m.actual_q, static_cast<double>(m.error_fp32)),
                       "bad wide"});
    } else {
      items.push_back(
          {"first_mismatch", "first mismatch", "none", "every element agrees", "good wide"});
    }
    items.push_back({"rows_identical", "rows alike", c.rows_identical ? "yes" : "no",
                     "each row of each channel as row 0, channel 0", ""});
    std::string inner = cards("headline", items);
    if (c.first_mismatch && r.options.k != 1.0) {
      inner +=
          "<p class=\"note\">“Expected” is the fake-quant path's own output bin; the seed "
          "script's <code>(out * k*255).to(uint8)</code> truncates and equals it only for "
          "k = 1.</p>\n";
    }
    body += section("summary", "Result", inner);
  }
  // Staircase.
  {
    int64_t n = 0, ch = 0, row = 0;
    std::string intro = "Row 0 of channel 0.";
    if (c.first_mismatch) {
      n = c.first_mismatch->index.n;
      ch = c.first_mismatch->index.c;
      row = c.first_mismatch->index.h;
      if (n != 0 || ch != 0 || row != 0) {
        intro = fmt::format("Row 0 of channel 0 agrees; shown is the row of the first mismatch {}.",
                            index_text(c.first_mismatch->index));
      }
    }
    body += section("bins", "Output bins along the ramp",
                    staircase_figures(r, n, ch, row, -1, -1, intro));
  }
  body += dq_histogram_section(r);
  body += diagnosis_section(why);
  body += fixes_section(why);
  // Trace of the first mismatch.
  {
    std::string inner;
    if (why && why->trace) {
      inner += fmt::format(
          "<p class=\"note\">Element {} through both paths, stage by stage "
          "(the same table as <code>qparity explain --index {},{},{},{}</code>).</p>\n",
          index_text(why->trace->index), why->trace->index.n, why->trace->index.c,
          why->trace->index.h, why->trace->index.w);
      inner += trace_table(*why->trace);
    } else if (!why) {
      inner +=
          "<p class=\"note\">Not computed (<code>--no-diagnosis</code>); "
          "<code>qparity explain</code> traces any element.</p>\n";
    } else {
      inner += "<p class=\"ok\">No element differs: nothing to trace.</p>\n";
    }
    body += section("trace-section", "First mismatch, stage by stage", inner);
  }
  // Qparams and provenance.
  {
    std::string rows = qparams_rows(r.fake_quant.input, r.int8.input) +
                       qparams_rows(r.fake_quant.weight, r.int8.weight) +
                       qparams_rows(r.fake_quant.output, r.int8.output);
    std::string inner =
        "<p class=\"note\">The grid each path used at each quantization point, the rule that "
        "produced it and the branch it took, and where the values came from. Differing values are "
        "highlighted.</p>\n";
    inner += table("qparams", {"point", "quantity", "fake-quant path", "int8 path", "difference"},
                   rows, "grouped", {7, 11, 33, 33, 16});
    body += section("qparams-section", "Quantization parameters each path used", inner);
  }
  body += engine_section({r.profile});
  body += budgets_section(context.budgets);
  {
    std::string inner = reproduce_block(context, r.profile.name, seed_command_line(r.options));
    inner += scenario_table(r.options, r.output_shape);
    body += section("reproduce", "Reproduce", inner);
  }
  return page(h, body);
}

// ---------------------------------------------------------------------------------------------

std::string render_explain_html(const SeedResult& r, const ElementExplanation& e,
                                const RunContext& context) {
  const bool outputs_agree = e.fake_quant.output_bin == e.int8.output_bin &&
                             e.fake_quant.output_dequantized == e.int8.output_dequantized;
  Header h;
  h.command = "explain";
  h.title = "qparity explain " + index_text(e.index);
  if (!outputs_agree) {
    h.status = Status::kDiverge;
    h.status_word = "DIFFERS";
    h.headline =
        fmt::format("Element {}: fake-quant bin {} ({}), int8 bin {} ({}).", index_text(e.index),
                    e.fake_quant.output_bin, f9(e.fake_quant.output_dequantized), e.int8.output_bin,
                    f9(e.int8.output_dequantized));
  } else if (e.first_difference) {
    h.status = Status::kWarn;
    h.status_word = "AGREES";
    h.headline = fmt::format(
        "Element {}: the output is identical in both paths (bin {}), although "
        "the stages differ from “{}” on.",
        index_text(e.index), e.int8.output_bin, e.rows[*e.first_difference].stage);
  } else {
    h.status = Status::kAgree;
    h.status_word = "AGREES";
    h.headline = fmt::format("Element {} is identical in both paths at every stage (bin {}).",
                             index_text(e.index), e.int8.output_bin);
  }
  h.facts = {fmt::format("k = {:.9g}", r.options.k),
             fmt::format("backend {} ({})", r.profile.name, engine_word(r.profile)),
             "observer " + observer_name(r.options.observer), "qparity " + std::string(version())};
  h.nav = {{"summary", "Element"},
           {"trace-section", "Trace"},
           {"bins", "Staircase"},
           {"engine", "Engine"},
           {"reproduce", "Reproduce"}};

  std::string body;
  {
    std::vector<Card> items = {
        {"index", "element [n, c, h, w]", index_text(e.index), "", ""},
        {"fake_quant_bin", "fake-quant output bin", std::to_string(e.fake_quant.output_bin),
         f9(e.fake_quant.output_dequantized), ""},
        {"int8_bin", "int8 output bin", std::to_string(e.int8.output_bin),
         f9(e.int8.output_dequantized), outputs_agree ? "good" : "bad"},
        {"first_difference", "first difference",
         e.first_difference ? e.rows[*e.first_difference].stage : std::string("none"),
         e.first_difference
             ? e.rows[*e.first_difference].fake_quant + " vs " + e.rows[*e.first_difference].int8
             : std::string("every stage agrees"),
         e.first_difference ? "bad text" : "good text"},
    };
    body += section("summary", "Element", cards("headline", items));
  }
  {
    std::string inner =
        "<p class=\"note\">Each stage of the element in both paths, in real units "
        "where a stage has them. The first stage where the paths differ is "
        "highlighted in red; later differing stages in orange.</p>\n";
    inner += trace_table(e);
    body += section("trace-section", "Stage by stage", inner);
  }
  body +=
      section("bins", "The element's row",
              staircase_figures(
                  r, e.index.n, e.index.c, e.index.h, e.index.w, e.index.w,
                  fmt::format("The traced element is column w = {} (purple band).", e.index.w)));
  body += engine_section({r.profile});
  {
    std::string inner = reproduce_block(context, r.profile.name, "");
    inner += scenario_table(r.options, r.output_shape);
    body += section("reproduce", "Reproduce", inner);
  }
  return page(h, body);
}

// ---------------------------------------------------------------------------------------------

namespace {

const std::vector<std::string>& outcome_palette() {
  static const std::vector<std::string> colors = {"#d62728", "#ff7f0e", "#8e44ad", "#1f77b4",
                                                  "#8c564b", "#e377c2", "#17becf", "#b8a400",
                                                  "#5e35b1", "#00897b", "#c2185b", "#6d4c41"};
  return colors;
}

const std::vector<std::string>& series_palette() {
  static const std::vector<std::string> colors = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                  "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                                  "#bcbd22", "#17becf"};
  return colors;
}

std::string chip(const std::string& text, const std::string& color) {
  return fmt::format("<span class=\"chip\" style=\"background:{}\">{}</span>", color, escape(text));
}

std::string first_mismatch_text(const std::optional<FirstMismatch>& m) {
  if (!m) return "—";
  return fmt::format("[{},{},{},{}] {}→{}", m->index.n, m->index.c, m->index.h, m->index.w,
                     m->expected_q, m->actual_q);
}

}  // namespace

std::string render_sweep_html(const SweepSpec& spec, const SweepResult& r,
                              const RunContext& context) {
  int64_t diverging = 0, float_only = 0, refused = 0;
  for (const SweepPoint& p : r.points) {
    if (p.result.error) ++refused;
    if (p.result.bin_mismatch_count > 0) {
      ++diverging;
    } else if (p.result.fp32_mismatch_count > 0) {
      ++float_only;
    }
  }
  // Outcomes in order of first appearance, series by series; "agree" is always green.
  std::vector<std::string> outcomes;
  std::map<std::string, size_t> outcome_index;
  std::map<std::string, int64_t> outcome_points;
  for (const SweepSeries& s : r.series) {
    for (size_t i : s.points) {
      const std::string& o = r.points[i].result.outcome;
      if (outcome_index.emplace(o, outcomes.size()).second) outcomes.push_back(o);
      ++outcome_points[o];
    }
  }
  std::vector<std::string> colors;
  size_t next = 0;
  for (const std::string& o : outcomes) {
    if (o == "agree") {
      colors.push_back("#43a047");
    } else if (o == "refused") {
      colors.push_back("#9e9e9e");
    } else {
      colors.push_back(outcome_palette()[next++ % outcome_palette().size()]);
    }
  }
  const auto color_of = [&](const std::string& o) {
    const auto it = outcome_index.find(o);
    return it == outcome_index.end() ? std::string("#9e9e9e") : colors[it->second];
  };

  const std::vector<double> ks = k_values(spec.k);
  Header h;
  h.command = "sweep";
  h.title = "qparity sweep";
  const auto total = static_cast<int64_t>(r.points.size());
  if (diverging > 0) {
    h.status = Status::kDiverge;
    h.status_word = "DIVERGE";
    h.headline =
        fmt::format("{} of {} points have differing bins{}.", diverging, total,
                    float_only > 0 ? fmt::format("; {} more differ in floats only", float_only)
                                   : std::string());
  } else if (float_only > 0) {
    h.status = Status::kWarn;
    h.status_word = "FLOATS DIFFER";
    h.headline = fmt::format("Every point agrees bin for bin; {} of {} differ in floats.",
                             float_only, total);
  } else {
    h.status = Status::kAgree;
    h.status_word = "AGREE";
    h.headline = fmt::format("All {} points agree bin for bin.", total);
  }
  std::set<std::string> backend_set;
  std::vector<std::string> backends;
  for (const SweepPoint& p : r.points) {
    if (backend_set.insert(p.options.backend).second) backends.push_back(p.options.backend);
  }
  const CpuFeatures cpu = detect_cpu_features();
  std::vector<BackendProfile> profiles;
  std::string profile_names;
  bool any_emulated = false;
  for (const std::string& b : backends) {
    if (auto p = make_backend_profile(b, cpu)) {
      any_emulated = any_emulated || !p->verified_against_real_kernel;
      profile_names += (profile_names.empty() ? "" : ", ") + p->name;
      profiles.push_back(std::move(*p));
    }
  }
  h.facts = {fmt::format("{} points", total),
             fmt::format("{} series × {} k values", r.series.size(), ks.size()),
             fmt::format("k {:.9g} … {:.9g} ({})", spec.k.start, spec.k.stop,
                         spec.k.log ? "log-spaced" : "linear"),
             fmt::format("rows {}", spec.base.rows),
             fmt::format("engines {}{}", profile_names, any_emulated ? " (fbgemm EMULATED)" : ""),
             "qparity " + std::string(version())};
  h.nav = {{"summary", "Result"},
           {"outcomes", "Outcome vs k"},
           {"mismatches", "Mismatches vs k"},
           {"ranges-section", "Ranges"},
           {"boundaries-section", "Boundaries"}};
  if (!context.budgets.empty()) h.nav.emplace_back("budgets-section", "Budgets");
  h.nav.emplace_back("points-section", "Points");
  h.nav.emplace_back("engine", "Engines");
  h.nav.emplace_back("reproduce", "Reproduce");

  std::string body;
  {
    std::vector<Card> items = {
        {"points", "points", std::to_string(total),
         fmt::format("{} series × {} k", r.series.size(), ks.size()), ""},
        {"diverging", "bins differ", std::to_string(diverging), "points with a bin mismatch",
         diverging > 0 ? "bad" : "good"},
        {"float_only", "floats only", std::to_string(float_only), "bins agree, floats differ", ""},
        {"refused", "refused", std::to_string(refused), "the engine rejected the configuration",
         ""},
        {"boundaries", "boundaries", std::to_string(r.boundaries.size()),
         std::any_of(r.boundaries.begin(), r.boundaries.end(),
                     [](const Boundary& b) { return b.refined; })
             ? "refined to adjacent float32 k"
             : "between sampled k",
         ""},
        {"outcomes", "outcomes", std::to_string(outcomes.size()), "distinct", ""},
    };
    body += section("summary", "Result", cards("headline", items));
  }
  // Outcome strips.
  {
    html::StripChart chart;
    chart.id = "outcome-strip";
    chart.label = "Outcome of every point against k, one strip per series";
    chart.log_x = spec.k.log;
    chart.outcomes = outcomes;
    chart.colors = colors;
    for (const SweepSeries& s : r.series) {
      html::StripChart::Row row;
      row.label = s.label;
      for (size_t i : s.points) {
        const SweepPoint& p = r.points[i];
        row.cells.push_back(
            {p.options.k, outcome_index[p.result.outcome],
             fmt::format("{}\nk = {:.9g}\n{}\nbins differ: {}, floats differ: {}, max "
                         "|Δq| {}{}",
                         s.label, p.options.k, p.result.outcome, p.result.bin_mismatch_count,
                         p.result.fp32_mismatch_count, p.result.max_abs_delta_q,
                         p.result.error ? "\nrefused: " + *p.result.error : "")});
      }
      std::sort(row.cells.begin(), row.cells.end(),
                [](const auto& a, const auto& b) { return a.k < b.k; });
      for (const Boundary& b : r.boundaries) {
        if (b.series != s.label) continue;
        row.boundaries.push_back(
            {b.k_low, b.k_high,
             fmt::format("boundary{}: k {:.9g} → {:.9g}\n{} → {}", b.refined ? " (refined)" : "",
                         b.k_low, b.k_high, b.outcome_low, b.outcome_high)});
      }
      chart.rows.push_back(std::move(row));
    }
    std::string inner = fmt::format(
        "<p class=\"note\">Each strip is one series; each cell one sampled k, coloured by its "
        "outcome{}. Black ticks mark the boundaries{}. Hover a cell for its numbers.</p>\n",
        spec.k.log ? " (k on a log axis)" : "",
        std::any_of(r.boundaries.begin(), r.boundaries.end(),
                    [](const Boundary& b) { return b.refined; })
            ? " (refined boundaries at their exact float32 k)"
            : "");
    inner += "<figure>" + html::strip_chart_svg(chart);
    inner += "<ul class=\"legend\" id=\"outcome-legend\">";
    for (size_t i = 0; i < outcomes.size(); ++i) {
      inner += fmt::format(
          "<li data-outcome=\"{}\"><span class=\"sw\" style=\"background:{}\"></span>"
          "{} <span class=\"note\">({} points)</span></li>",
          escape(outcomes[i]), colors[i], escape(outcomes[i]), outcome_points[outcomes[i]]);
    }
    inner += "</ul></figure>\n";
    body += section("outcomes", "Outcome against k", inner);
  }
  // Bin mismatches against k.
  {
    html::LineChart chart;
    chart.id = "mismatch-plot";
    chart.label = "Bin mismatch count against k, one line per series";
    chart.y_title = "bins that differ";
    chart.log_x = spec.k.log;
    const size_t count = r.series.size();
    for (size_t si = 0; si < count; ++si) {
      const SweepSeries& s = r.series[si];
      html::LineChart::Series line;
      line.label = s.label;
      line.color = series_palette()[si % series_palette().size()];
      // Markers (with a tooltip each) while they stay apart; dense series are lines only.
      line.marker = s.points.size() <= 80 ? static_cast<int>(si % 4) : -1;
      line.dash = (si / series_palette().size()) % 2 == 1 ? "6 4" : "";
      // Earlier series drawn wider underneath, so series that coincide stay visible.
      const double layer = count <= 6 ? static_cast<double>(count - 1 - si) : 0.0;
      line.line_width = 1.8 + 1.5 * layer;
      line.marker_size = 3.4 + 1.3 * layer;
      for (size_t i : s.points) {
        const SweepPoint& p = r.points[i];
        if (p.result.error) continue;  // refused: no count
        line.points.push_back(
            {p.options.k, static_cast<double>(p.result.bin_mismatch_count),
             fmt::format("{}\nk = {:.9g}: {} bins differ ({})", s.label, p.options.k,
                         p.result.bin_mismatch_count, p.result.outcome)});
      }
      std::sort(line.points.begin(), line.points.end(),
                [](const auto& a, const auto& b) { return a.x < b.x; });
      chart.series.push_back(std::move(line));
    }
    std::string inner = fmt::format(
        "<p class=\"note\">Output elements whose bins differ at each k{}. Series that coincide "
        "are drawn on top of each other, earlier ones wider.</p>\n",
        html::line_chart_uses_log_y(chart) ? " (log scale; zero on its own baseline)" : "");
    inner += "<figure>" + html::line_chart_svg(chart);
    inner += "<ul class=\"legend\" id=\"series-legend\">";
    for (const auto& line : chart.series) {
      inner += "<li>" + html::marker_swatch(line.marker, line.color, line.dash) +
               escape(line.label) + "</li>";
    }
    inner += "</ul></figure>\n";
    body += section("mismatches", "Bin mismatches against k", inner);
  }
  // Ranges.
  {
    std::string rows;
    for (const OutcomeRange& g : r.ranges) {
      rows += fmt::format("<tr data-series=\"{}\" data-outcome=\"{}\">", escape(g.series),
                          escape(g.outcome)) +
              td(g.series, "nowrap") + td_html(chip(g.outcome, color_of(g.outcome))) +
              td(fmt::format("{:.9g}", g.k_first), "num") +
              td(fmt::format("{:.9g}", g.k_last), "num") + td(std::to_string(g.points), "num") +
              "</tr>\n";
    }
    body +=
        section("ranges-section", "Outcome by k range",
                "<p class=\"note\">For each series, the maximal runs of consecutive k with one "
                "outcome.</p>\n" +
                    table("ranges", {"series", "outcome", "#k from", "#k to", "#points"}, rows));
  }
  // Boundaries.
  {
    std::string inner;
    if (r.boundaries.empty()) {
      inner =
          "<p id=\"no-boundaries\" class=\"note\">No boundaries: every series has one outcome "
          "over the whole k range.</p>\n";
    } else {
      std::string rows;
      for (const Boundary& b : r.boundaries) {
        rows +=
            fmt::format("<tr data-series=\"{}\">", escape(b.series)) + td(b.series, "nowrap") +
            td(fmt::format("{:.9g}", b.k_low), "num") + td(fmt::format("{:.9g}", b.k_high), "num") +
            td_html(chip(b.outcome_low, color_of(b.outcome_low)) + " → " +
                    chip(b.outcome_high, color_of(b.outcome_high))) +
            td(b.refined ? fmt::format("yes ({} runs)", b.refinement_runs) : std::string("no")) +
            "</tr>\n";
      }
      inner = fmt::format(
          "<p class=\"note\">Where the outcome changes between two k values of a "
          "series.{}</p>\n",
          std::any_of(r.boundaries.begin(), r.boundaries.end(),
                      [](const Boundary& b) { return b.refined; })
              ? " Refined boundaries are exact: k low and k high are adjacent float32 values."
              : " Re-run with --refine to bisect each to adjacent float32 values.");
      inner += table("boundaries", {"series", "#k low", "#k high", "outcome low → high", "refined"},
                     rows);
    }
    body += section("boundaries-section", "Boundaries", inner);
  }
  body += budgets_section(context.budgets);
  // Points.
  {
    std::string rows;
    size_t shown = 0;
    for (const SweepSeries& s : r.series) {
      for (size_t i : s.points) {
        if (shown >= kMaxPointRows) break;
        ++shown;
        const SweepPoint& p = r.points[i];
        rows += fmt::format("<tr data-k=\"{:.9g}\" data-outcome=\"{}\">", p.options.k,
                            escape(p.result.outcome)) +
                td(s.label) + td(fmt::format("{:.9g}", p.options.k), "num") +
                td_html(chip(p.result.outcome, color_of(p.result.outcome))) +
                td(std::to_string(p.result.bin_mismatch_count), "num") +
                td(std::to_string(p.result.fp32_mismatch_count), "num") +
                td(std::to_string(p.result.max_abs_delta_q), "num") +
                td(first_mismatch_text(p.result.first_mismatch), "mono nowrap") +
                (refused > 0 ? td(p.result.error.value_or("")) : std::string()) + "</tr>\n";
      }
    }
    std::string inner;
    if (shown < r.points.size()) {
      inner += fmt::format(
          "<p id=\"points-capped\"><strong>Showing the first {} of {} "
          "points</strong>; <code>--json</code> or <code>--csv</code> write every point.</p>\n",
          shown, r.points.size());
    }
    std::vector<std::string> headers = {"series",
                                        "#k",
                                        "outcome",
                                        "#bins differ",
                                        "#floats differ",
                                        "#max |Δq|",
                                        "first mismatch (fq→int8)"};
    if (refused > 0) headers.emplace_back("refused because");
    // A long table scrolls in its own box, its header in view.
    inner += table("points", headers, rows, "", {}, r.points.size() > 40 ? "scroll-y" : "");
    body += section("points-section", "Points", inner);
  }
  body += engine_section(profiles);
  {
    std::string inner = reproduce_block(context, profile_names, "");
    std::string rows;
    const auto item = [&](const std::string& k, const std::string& v) {
      rows += "<tr>" + td(k) + td(v, "mono") + "</tr>\n";
    };
    item("k", fmt::format("{:.17g} : {:.17g} : {} ({})", spec.k.start, spec.k.stop, spec.k.count,
                          spec.k.log ? "log" : "linear"));
    item("rows", std::to_string(spec.base.rows));
    item("diagnosis", spec.diagnose ? "on (outcomes are diagnosis classes)" : "off");
    item("series", std::to_string(r.series.size()));
    body += section("reproduce", "Reproduce",
                    inner + table("scenario", {"setting", "value"}, rows, "compact"));
  }
  return page(h, body);
}

}  // namespace qparity::cli
