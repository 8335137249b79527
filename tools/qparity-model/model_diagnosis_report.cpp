#include "model_diagnosis_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "../qparity/html_page.h"
#include "../qparity/html_svg.h"

namespace qparity::cli {
namespace {

using Json = nlohmann::ordered_json;
using diagnose::ModelDiagnosis;

double share(int64_t part, int64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

// Per cause class: elements explained and layers, most elements first.
struct CauseTotal {
  std::string cause;
  int64_t elements = 0;
  std::vector<std::string> layers;
  const diagnose::ModelFinding* largest = nullptr;
};

std::vector<CauseTotal> cause_totals(const ModelDiagnosis& d) {
  std::map<std::string, CauseTotal> by_class;
  for (const auto& f : d.findings) {
    CauseTotal& t = by_class[std::string(to_string(f.cause))];
    t.cause = std::string(to_string(f.cause));
    t.elements += f.explains_elements;
    t.layers.push_back(f.layer);
    if (t.largest == nullptr || f.explains_elements > t.largest->explains_elements) t.largest = &f;
  }
  std::vector<CauseTotal> totals;
  for (auto& [name, t] : by_class) totals.push_back(std::move(t));
  std::stable_sort(totals.begin(), totals.end(), [](const CauseTotal& a, const CauseTotal& b) {
    return a.elements > b.elements;
  });
  return totals;
}

int64_t layers_creating_error(const ModelDiagnosis& d) {
  return std::count_if(d.local.begin(), d.local.end(), [](const diagnose::LocalError& l) {
    return l.measured && l.bin_mismatch_count > 0;
  });
}

Json impact_json(const diagnose::LayerImpact& i) {
  return {{"layer", i.layer},
          {"local_bin_mismatch_count", i.local_mismatches},
          {"final_sqnr_db_before", json_real(i.before.sqnr_db)},
          {"final_sqnr_db_after", json_real(i.after.sqnr_db)},
          {"final_max_abs_difference_before", json_real(i.before.max_abs_difference)},
          {"final_max_abs_difference_after", json_real(i.after.max_abs_difference)},
          {"top1_rows", i.before.top1_rows},
          {"top1_agreeing_before", i.before.top1_agreeing},
          {"top1_agreeing_after", i.after.top1_agreeing}};
}

}  // namespace

std::string trace_console(const diagnose::ModelElementTrace& t) {
  std::string position;
  for (size_t i = 0; i < t.position.size(); ++i)
    position += (i > 0 ? ", " : "") + std::to_string(t.position[i]);
  std::string out = fmt::format("\nelement [{}] of {} ({}): fake-quant bin {}, int8 bin {}\n",
                                position, t.layer, t.op, t.fake_quant_bin, t.int8_bin);
  size_t ws = 5, wf = 15;
  for (const auto& row : t.rows) {
    ws = std::max(ws, row.stage.size());
    wf = std::max(wf, row.fake_quant.size());
  }
  out += fmt::format("  {:<{}}  {:<{}}  {}\n", "stage", ws, "fake-quant path", wf, "int8 path");
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const auto& row = t.rows[i];
    out += fmt::format("{} {:<{}}  {:<{}}  {}\n",
                       t.first_difference == i ? ">" : (row.differs ? "*" : " "), row.stage, ws,
                       row.fake_quant.empty() ? "-" : row.fake_quant, wf,
                       row.int8.empty() ? "-" : row.int8);
  }
  out += t.first_difference ? "  (> the first stage where the paths differ; * later differences)\n"
                            : "  the paths agree at every stage\n";
  return out;
}

std::string render_trace_text(const ModelReport& r) {
  return r.trace ? trace_console(*r.trace) : std::string();
}

std::string render_trace_console(const ModelReport& r) {
  std::string out = fmt::format(
      "qparity explain: {} (QAT) against {} (int8), input {} {}, engine {}\n", r.qat_file,
      r.int8_file.empty() ? std::string("qparity's convert() of it") : r.int8_file,
      r.input_description, model::to_string(r.input_dims), r.profile.name);
  return out + render_trace_text(r);
}

std::string render_diagnosis_console(const ModelReport& r) {
  if (!r.diagnosis) {
    return r.diagnosis_skipped.empty() ? std::string()
                                       : "diagnosis skipped: " + r.diagnosis_skipped + "\n";
  }
  const ModelDiagnosis& d = *r.diagnosis;
  int64_t all = 0;
  for (const auto& l : r.comparison.layers) all += l.bin_mismatch_count;
  std::string out =
      "\ndiagnosis (each int8 layer re-run on the QAT path's input, then one quantization point at "
      "a "
      "time swapped to the QAT path's):\n";
  out += fmt::format(
      "  layers creating error: {} of {}; their own mismatches: {} ({:.1f}% of all {} differing "
      "bins; "
      "the rest are inherited from earlier layers)\n",
      layers_creating_error(d), d.local.size(), d.local_mismatches, share(d.local_mismatches, all),
      all);
  if (d.findings.empty()) return out + "  no layer creates error by itself\n";
  out += fmt::format("  causes (share of the layers' own mismatches; explained {:.1f}%):\n",
                     share(d.explained_elements, d.local_mismatches));
  for (const auto& t : cause_totals(d)) {
    out += fmt::format("    {:<30} {:>5.1f}%  {:>9} elements in {:>3} layer{}  largest: {}: {}\n",
                       t.cause, share(t.elements, d.local_mismatches), t.elements, t.layers.size(),
                       t.layers.size() == 1 ? " " : "s", t.largest->layer,
                       t.largest->evidence.empty() ? "" : t.largest->evidence.front());
  }
  if (!d.impact.empty()) {
    out += "  top layers by impact (final output if the layer's own error were removed):\n";
    for (size_t i = 0; i < d.impact.size() && i < 5; ++i) {
      const auto& m = d.impact[i];
      out += fmt::format(
          "    {:<32} own mismatches {:>8}  SQNR {} -> {} dB  max abs diff {:.4g} -> {:.4g}  top-1 "
          "{}/{} -> {}/{}\n",
          m.layer, m.local_mismatches, sqnr_text(m.before.sqnr_db), sqnr_text(m.after.sqnr_db),
          m.before.max_abs_difference, m.after.max_abs_difference, m.before.top1_agreeing,
          m.before.top1_rows, m.after.top1_agreeing, m.after.top1_rows);
    }
  }
  for (const auto& f : d.fixes) {
    out += fmt::format(
        "  verified fix: {}\n    bins differing {} -> {}, layers differing {} -> {}, final SQNR {} "
        "-> {} dB, "
        "top-1 {}/{} -> {}/{}\n",
        f.change, f.before.bins_differing, f.after.bins_differing, f.before.layers_differing,
        f.after.layers_differing, sqnr_text(f.before.output.sqnr_db),
        sqnr_text(f.after.output.sqnr_db), f.before.output.top1_agreeing, f.before.output.top1_rows,
        f.after.output.top1_agreeing, f.after.output.top1_rows);
    std::string python = f.python;
    for (size_t at = 0; (at = python.find('\n', at)) != std::string::npos; at += 5)
      python.replace(at, 1, "\n    | ");
    out += "    | " + python + "\n";
  }
  if (r.diagnosis_check) {
    const auto& c = *r.diagnosis_check;
    out += fmt::format(
        "  diagnosis check with {}: {} ({} ops ran on it{})\n", c.kernels,
        c.differences.empty() ? "identical" : fmt::format("{} DIFFERENCES", c.differences.size()),
        c.ops_ran,
        c.ops_declined == 0 ? std::string()
                            : fmt::format(", {} declined and ran on qparity's, first: {}",
                                          c.ops_declined, c.first_declined));
    for (size_t i = 0; i < c.differences.size() && i < 10; ++i)
      out += "    " + c.differences[i] + "\n";
  }
  return out;
}

namespace {

// One row per layer: its own mismatches (red) and inherited ones (amber) as a stacked bar.
std::string network_html(const ModelReport& r) {
  const ModelDiagnosis& d = *r.diagnosis;
  std::string rows;
  int64_t widest = 1;
  for (const auto& l : r.comparison.layers) widest = std::max(widest, l.bin_mismatch_count);
  for (size_t i = 0; i < d.local.size() && i < r.comparison.layers.size(); ++i) {
    const auto& l = r.comparison.layers[i];
    const auto& local = d.local[i];
    const int64_t own = local.bin_mismatch_count;
    const int64_t inherited = local.inherited_count;
    const auto px = [&](int64_t n) {
      return n == 0 ? 0L
                    : std::max(2L, std::lround(160.0 * static_cast<double>(n) /
                                               static_cast<double>(widest)));
    };
    const std::string cls = own > 0 ? "creates" : (l.bin_mismatch_count > 0 ? "inherits" : "");
    rows += fmt::format("<tr{} data-layer=\"{}\" data-local=\"{}\" data-inherited=\"{}\">",
                        cls.empty() ? "" : " class=\"" + cls + "\"", html::escape(l.name), own,
                        inherited);
    rows += html::td(std::to_string(i), "num") + html::td(l.name, "mono") + html::td(l.op, "mono");
    rows += html::td(local.measured ? std::to_string(own) : "–", "num") +
            html::td(local.measured ? std::to_string(inherited) : "–", "num") +
            html::td(std::to_string(l.bin_mismatch_count), "num");
    rows += html::td_html(fmt::format(
        "<span class=\"own-bar\" style=\"width:{}px\"></span><span class=\"inherited-bar\" "
        "style=\"width:{}px\"></span>",
        px(own), px(inherited)));
    rows += "</tr>\n";
  }
  return "<h3>The network, layer by layer</h3>\n" +
         html::table(
             "diagnosis-layers",
             {"#", "layer", "op", "#own", "#inherited", "#all differing", "own / inherited"}, rows,
             {}, {}, d.local.size() > 24 ? "scroll-y" : "") +
         "<p class=\"note\"><span class=\"own-bar\" style=\"width:12px\"></span>own: the layer run "
         "alone on the QAT "
         "path's input still differs; <span class=\"inherited-bar\" "
         "style=\"width:12px\"></span>inherited: differs "
         "in the full run only.</p>\n";
}

std::string causes_html(const ModelDiagnosis& d) {
  std::string rows;
  for (const auto& t : cause_totals(d)) {
    rows += "<tr>" + html::td(t.cause, "mono") +
            html::td(fmt::format("{:.1f} %", share(t.elements, d.local_mismatches)), "num") +
            html::td(std::to_string(t.elements), "num") +
            html::td(std::to_string(t.layers.size()), "num") +
            html::td(t.largest->layer + ": " +
                     (t.largest->evidence.empty() ? "" : t.largest->evidence.front())) +
            "</tr>\n";
  }
  std::string findings;
  for (const auto& f : d.findings) {
    std::string evidence;
    for (const auto& e : f.evidence) evidence += (evidence.empty() ? "" : "<br>") + html::escape(e);
    findings += "<tr>" + html::td(f.layer, "mono") +
                html::td(std::string(to_string(f.cause)), "mono") + html::td(f.point) +
                html::td(std::to_string(f.explains_elements), "num") + html::td_html(evidence) +
                "</tr>\n";
  }
  return "<h3>Causes</h3>\n" +
         html::table("diagnosis-causes",
                     {"class", "#share", "#elements", "#layers", "largest finding"}, rows) +
         "<h3>Every finding</h3>\n" +
         html::table("diagnosis-findings", {"layer", "class", "point", "#explains", "evidence"},
                     findings, {}, {}, d.findings.size() > 24 ? "scroll-y" : "");
}

// The Δq histogram of the layer that creates the most error by itself.
std::string histogram_html(const ModelReport& r) {
  const ModelDiagnosis& d = *r.diagnosis;
  size_t worst = d.local.size();
  for (size_t i = 0; i < d.local.size(); ++i) {
    if (d.local[i].bin_mismatch_count > 0 &&
        (worst == d.local.size() ||
         d.local[i].bin_mismatch_count > d.local[worst].bin_mismatch_count)) {
      worst = i;
    }
  }
  if (worst == d.local.size()) return {};
  const auto& l = r.comparison.layers[worst];
  html::BarChart chart;
  chart.id = "diagnosis-dq";
  chart.label = "Δq of " + l.name + " in the full run";
  chart.x_title = "Δq (int8 bin − fake-quant bin)";
  chart.y_title = "elements";
  for (const auto& [dq, n] : l.dq_histogram) chart.bars.push_back({dq, n, "bar-diverge"});
  chart.log_y = true;
  return "<h3>Δq of " + html::escape(l.name) +
         ", the layer that creates the most error</h3>\n<figure>\n" + html::bar_chart_svg(chart) +
         fmt::format(
             "<figcaption>{} of its {} differing bins are its own.</figcaption>\n</figure>\n",
             d.local[worst].bin_mismatch_count, l.bin_mismatch_count);
}

std::string impact_html(const ModelDiagnosis& d) {
  if (d.impact.empty()) return {};
  std::string rows;
  for (const auto& m : d.impact) {
    rows +=
        "<tr>" + html::td(m.layer, "mono") + html::td(std::to_string(m.local_mismatches), "num") +
        html::td(sqnr_text(m.before.sqnr_db) + " → " + sqnr_text(m.after.sqnr_db), "num") +
        html::td(
            fmt::format("{:.4g} → {:.4g}", m.before.max_abs_difference, m.after.max_abs_difference),
            "num") +
        html::td(fmt::format("{}/{} → {}/{}", m.before.top1_agreeing, m.before.top1_rows,
                             m.after.top1_agreeing, m.after.top1_rows),
                 "num") +
        "</tr>\n";
  }
  return "<h3>Impact on the final output</h3>\n" +
         html::table("diagnosis-impact",
                     {"layer", "#own mismatches", "#final SQNR dB", "#max abs diff", "#top-1"},
                     rows, {}, {}, d.impact.size() > 24 ? "scroll-y" : "") +
         "<p class=\"note\">The int8 path re-run from the layer on with the layer's own error "
         "taken out of its "
         "output; most SQNR gained first. A negative gain: the layer's own error cancels inherited "
         "error.</p>\n";
}

std::string fixes_html(const ModelReport& r) {
  std::string out;
  for (const auto& f : r.diagnosis->fixes) {
    out += fmt::format(
        "<h3>Verified fix</h3>\n<p>{}</p>\n<pre>{}</pre>\n<p>Applied to the model and both paths "
        "compared again: bins differing {} → {}, layers differing {} → {}, final SQNR {} → {} dB, "
        "top-1 {}/{} → {}/{}.</p>\n",
        html::escape(f.change), html::escape(f.python), f.before.bins_differing,
        f.after.bins_differing, f.before.layers_differing, f.after.layers_differing,
        sqnr_text(f.before.output.sqnr_db), sqnr_text(f.after.output.sqnr_db),
        f.before.output.top1_agreeing, f.before.output.top1_rows, f.after.output.top1_agreeing,
        f.after.output.top1_rows);
  }
  if (r.diagnosis_check) {
    const auto& c = *r.diagnosis_check;
    out +=
        fmt::format("<p class=\"note\">Checked with {}: {} ({} ops ran on it, {} declined).</p>\n",
                    html::escape(c.kernels), c.differences.empty() ? "identical" : "DIFFERENT",
                    c.ops_ran, c.ops_declined);
  }
  return out;
}

}  // namespace

std::string render_diagnosis_html(const ModelReport& r) {
  if (!r.diagnosis) return {};
  const ModelDiagnosis& d = *r.diagnosis;
  int64_t all = 0;
  for (const auto& l : r.comparison.layers) all += l.bin_mismatch_count;
  std::string inner = fmt::format(
      "<p>Each int8 layer re-run alone on the QAT path's input: {} of {} layers create error by "
      "themselves; "
      "their own mismatches are {} ({:.1f} % of all {} differing bins), the rest are inherited. "
      "The causes "
      "were found by swapping one quantization point at a time to the QAT path's and explain "
      "{:.1f} % of "
      "them.</p>\n",
      layers_creating_error(d), d.local.size(), d.local_mismatches, share(d.local_mismatches, all),
      all, share(d.explained_elements, d.local_mismatches));
  inner += network_html(r);
  if (!d.findings.empty()) inner += causes_html(d);
  inner += histogram_html(r);
  inner += impact_html(d);
  inner += fixes_html(r);
  return html::section("diagnosis-section", "Diagnosis", inner);
}

void add_trace_json(const ModelReport& r, Json& doc) {
  if (r.trace) {
    Json rows = Json::array();
    for (const auto& row : r.trace->rows) {
      rows.push_back({{"stage", row.stage},
                      {"fake_quant", row.fake_quant},
                      {"int8", row.int8},
                      {"differs", row.differs}});
    }
    doc["trace"] = {{"layer", r.trace->layer},
                    {"op", r.trace->op},
                    {"position", r.trace->position},
                    {"fake_quant_bin", r.trace->fake_quant_bin},
                    {"int8_bin", r.trace->int8_bin},
                    {"rows", rows},
                    {"first_difference",
                     r.trace->first_difference ? Json(*r.trace->first_difference) : Json()}};
  }
}

void add_diagnosis_json(const ModelReport& r, Json& doc) {
  if (!r.diagnosis) {
    if (!r.diagnosis_skipped.empty())
      doc["summary"]["diagnosis"] = {{"skipped", r.diagnosis_skipped}};
    return;
  }
  const ModelDiagnosis& d = *r.diagnosis;
  Json& layers = doc["layers"];
  for (size_t i = 0; i < d.local.size() && i < layers.size(); ++i) {
    const auto& l = d.local[i];
    layers[i]["local"] = l.measured ? Json{{"bin_mismatch_count", l.bin_mismatch_count},
                                           {"max_abs_dq", l.max_abs_dq},
                                           {"inherited_count", l.inherited_count}}
                                    : Json{{"not_measured", l.not_measured}};
  }
  Json findings = Json::array();
  for (const auto& f : d.findings) {
    findings.push_back({{"class", std::string(to_string(f.cause))},
                        {"layer", f.layer},
                        {"point", f.point},
                        {"explains_elements", f.explains_elements},
                        {"evidence", f.evidence}});
  }
  Json impact = Json::array();
  for (const auto& i : d.impact) impact.push_back(impact_json(i));
  doc["diagnosis"] = findings;
  doc["impact"] = impact;
  Json fixes = Json::array();
  for (const auto& f : d.fixes) {
    const auto figures = [](const diagnose::Divergence& v) {
      return Json{{"bins_differing", v.bins_differing},
                  {"layers_differing", v.layers_differing},
                  {"final_sqnr_db", json_real(v.output.sqnr_db)},
                  {"final_max_abs_difference", json_real(v.output.max_abs_difference)},
                  {"top1_agreeing", v.output.top1_agreeing},
                  {"top1_rows", v.output.top1_rows}};
    };
    fixes.push_back({{"change", f.change},
                     {"python", f.python},
                     {"because", f.because},
                     {"verified", f.verified},
                     {"before", figures(f.before)},
                     {"after", figures(f.after)}});
  }
  doc["fixes"] = fixes;
  Json causes = Json::array();
  for (const auto& t : cause_totals(d)) {
    causes.push_back(
        {{"class", t.cause}, {"explains_elements", t.elements}, {"layers", t.layers.size()}});
  }
  doc["summary"]["diagnosis"] = {{"layers_creating_error", layers_creating_error(d)},
                                 {"local_bin_mismatches", d.local_mismatches},
                                 {"explained_elements", d.explained_elements},
                                 {"causes", causes}};
  if (r.diagnosis_check) {
    const auto& c = *r.diagnosis_check;
    doc["summary"]["diagnosis"]["check"] = {
        {"kernels", c.kernels},           {"identical", c.differences.empty()},
        {"differences", c.differences},   {"ops_ran", c.ops_ran},
        {"ops_declined", c.ops_declined}, {"first_declined", c.first_declined}};
  }
}

}  // namespace qparity::cli
