// The HTML report of `qparity model` (see model_html.h). Deterministic: the same report gives
// the same bytes.
#include "model_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "../qparity/html_page.h"
#include "../qparity/html_svg.h"
#include "model_diagnosis_report.h"
#include "qparity/version.h"

namespace qparity::cli {
namespace {

using html::Card;
using html::escape;
using html::section;
using html::table;
using html::td;
using html::td_html;

constexpr size_t kMaxOutputRows = 32;  // the final outputs table; --json has every value

std::string f9(double v) { return fmt::format("{:.9g}", v); }

std::string sqnr_text(double db) {
  if (std::isnan(db)) return "nan";
  if (std::isinf(db)) return db > 0 ? "∞ (equal)" : "-∞";
  return fmt::format("{:.1f}", db);
}

double share(const diff::LayerComparison& l) {
  return l.numel == 0 ? 0.0
                      : static_cast<double>(l.bin_mismatch_count) / static_cast<double>(l.numel);
}

std::string percent(double fraction) {
  if (fraction == 0.0) return "0 %";
  const double p = 100.0 * fraction;
  return p < 0.1 ? fmt::format("{:.2g} %", p) : fmt::format("{:.1f} %", p);
}

const diff::ReferenceLayer* find(const std::optional<diff::ReferenceCheck>& check,
                                 const std::string& name) {
  if (!check) return nullptr;
  for (const auto& l : check->layers) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

// Whether each path's emulation of the layer equals libtorch's run: "exact", or what is off.
std::string exactness_html(const diff::ReferenceLayer* qat, const diff::ReferenceLayer* int8) {
  if (qat == nullptr && int8 == nullptr) return "<span class=\"note\">–</span>";
  std::string off;
  for (const auto& [label, l] : {std::pair{"QAT", qat}, std::pair{"int8", int8}}) {
    if (l == nullptr || l->elements_differing == 0) continue;
    off += fmt::format("{}{} {} off", off.empty() ? "" : ", ", label, l->elements_differing);
  }
  return off.empty() ? "<span class=\"ok\">exact</span>"
                     : "<span class=\"warning\">" + escape(off) + "</span>";
}

std::string histogram_text(const std::map<int64_t, int64_t>& h) {
  std::string out;
  for (const auto& [dq, n] : h) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{:+}: {}", dq, n);
  }
  return out;
}

std::string headline(const ModelReport& r) {
  const auto& c = r.comparison;
  if (!c.first_divergent) {
    return fmt::format("The paths agree bin for bin in all {} layers.", c.layers.size());
  }
  int64_t bins = 0, elements = 0, layers = 0;
  for (const auto& l : c.layers) {
    bins += l.bin_mismatch_count;
    elements += l.numel;
    layers += l.bin_mismatch_count > 0 ? 1 : 0;
  }
  const auto& first = c.layers[*c.first_divergent];
  const auto& worst = c.layers[*c.worst];
  return fmt::format(
      "{} of {} bins differ in {} of {} layers; first divergent layer {}, worst {} ({} of its "
      "bins, max |Δq| {}).",
      bins, elements, layers, c.layers.size(), first.name, worst.name, percent(share(worst)),
      worst.max_abs_dq);
}

std::string reference_word(const ModelReport& r) {
  if (!r.qat_reference) return "skipped (" + r.reference_skipped + ")";
  return reference_exact(r) ? "bit-exact" : "NOT exact";
}

std::string summary_section(const ModelReport& r) {
  const auto& c = r.comparison;
  int64_t bins = 0, elements = 0, layers = 0;
  for (const auto& l : c.layers) {
    bins += l.bin_mismatch_count;
    elements += l.numel;
    layers += l.bin_mismatch_count > 0 ? 1 : 0;
  }
  std::vector<Card> items = {
      {"layers", "layers", std::to_string(c.layers.size()), "compared, int8 execution order", ""},
      {"layers_differing", "layers differ", std::to_string(layers), "with at least one bin off",
       layers > 0 ? "bad" : "good"},
      {"bins_differing", "bins differ", std::to_string(bins),
       fmt::format(
           "of {} ({})", elements,
           percent(elements == 0 ? 0.0
                                 : static_cast<double>(bins) / static_cast<double>(elements))),
       bins > 0 ? "bad" : "good"},
  };
  if (c.first_divergent) {
    const auto& f = c.layers[*c.first_divergent];
    std::string sub = fmt::format("{} of {} bins", f.bin_mismatch_count, f.numel);
    if (f.first_mismatch) {
      sub += fmt::format("; first at {}: fake-quant bin {}, int8 bin {}",
                         model::to_string(unravel(f.first_mismatch->index, f.dims)),
                         f.first_mismatch->fake_quant_bin, f.first_mismatch->int8_bin);
    }
    items.push_back(
        {"first_divergent_layer", "first divergent layer", f.name, sub, "bad wide text"});
    const auto& w = c.layers[*c.worst];
    items.push_back({"worst_layer", "worst layer", w.name,
                     fmt::format("{} of its bins, max |Δq| {}", percent(share(w)), w.max_abs_dq),
                     "bad wide text"});
  } else {
    items.push_back({"first_divergent_layer", "first divergent layer", "none", "every layer agrees",
                     "good wide text"});
  }
  items.push_back({"output_max_abs_difference", "final output max |diff|",
                   fmt::format("{:.4g}", c.output_max_abs_difference),
                   model::to_string(c.output_dims), ""});
  items.push_back({"top1_agreement", "top-1 agreement",
                   fmt::format("{}/{}", c.top1_agreeing, c.top1_rows), "rows whose arg max matches",
                   c.top1_agreeing == c.top1_rows ? "good" : "bad"});
  items.push_back({"reference", "reference", reference_word(r),
                   r.qat_reference
                       ? fmt::format("{} + {} values checked against libtorch",
                                     r.qat_reference->elements,
                                     r.int8_reference ? r.int8_reference->elements : 0)
                       : "emulation not checked against libtorch",
                   r.qat_reference ? (reference_exact(r) ? "good" : "bad") : ""});
  std::string inner = html::cards("headline", items);
  inner += fmt::format(
      "<p class=\"note\">QAT model <code>{}</code> against int8 model <code>{}</code>, input {} "
      "<code>{}</code>. "
      "Bins: the int8 output's bins against the bins of the fake-quant output on its own output "
      "fake-quant grid "
      "(where QAT does not fake-quantize a layer's output, on the int8 grid).</p>\n",
      escape(r.qat_file), escape(r.int8_file), escape(r.input_description),
      escape(model::to_string(r.input_dims)));
  return section("summary", "Result", inner);
}

std::string layers_section(const ModelReport& r) {
  const auto& c = r.comparison;
  html::DepthChart chart;
  chart.id = "depth-chart";
  chart.label = fmt::format(
      "SQNR in dB and share of bins that differ for each of the {} layers, in execution order",
      c.layers.size());
  chart.first_divergent = c.first_divergent ? static_cast<int64_t>(*c.first_divergent) : -1;
  for (size_t i = 0; i < c.layers.size(); ++i) {
    const auto& l = c.layers[i];
    chart.layers.push_back(
        {l.name, l.sqnr_db, share(l),
         fmt::format("#{} {} ({}): SQNR {} dB; {} of {} bins differ ({}), max |Δq| {}", i, l.name,
                     l.op, sqnr_text(l.sqnr_db), l.bin_mismatch_count, l.numel, percent(share(l)),
                     l.max_abs_dq)});
  }
  std::string inner = "<figure>\n" + html::depth_chart_svg(chart);
  inner +=
      "<ul class=\"legend\">"
      "<li><span class=\"sw line\" style=\"background:#1f6fb4\"></span>SQNR of the int8 output "
      "against the "
      "fake-quant output (dB, higher is closer)</li>"
      "<li><span class=\"sw\" style=\"background:#fff;border:1.5px solid "
      "#1f6fb4;width:10px;height:10px;"
      "border-radius:50%\"></span>∞: the values are equal</li>"
      "<li><span class=\"sw\" style=\"background:#d32f2f\"></span>share of bins that "
      "differ</li></ul>\n";
  inner += fmt::format(
      "<figcaption>Each column is one layer, numbered as in the table below (the int8 model's "
      "execution "
      "order). Red markers and bars: layers where bins differ.{}</figcaption>\n</figure>\n",
      c.first_divergent ? " The dashed line marks the first divergent layer." : "");
  const bool ref = r.qat_reference.has_value();
  std::vector<std::string> headers = {
      "#",         "layer",    "op",           "shape", "#elements", "#bins differ",
      "#max |Δq|", "#SQNR dB", "#max abs err", "grid"};
  if (ref) headers.emplace_back("libtorch ref");
  std::string rows;
  for (size_t i = 0; i < c.layers.size(); ++i) {
    const auto& l = c.layers[i];
    const bool first = c.first_divergent && *c.first_divergent == i;
    const std::string cls = first ? "first-diff" : (l.bin_mismatch_count > 0 ? "differs" : "");
    rows += fmt::format(
        "<tr{} data-index=\"{}\" data-layer=\"{}\" data-mismatch=\"{}\" data-max-dq=\"{}\">",
        cls.empty() ? "" : " class=\"" + cls + "\"", i, escape(l.name), l.bin_mismatch_count,
        l.max_abs_dq);
    rows += td(std::to_string(i), "num") + td(l.name, "mono") + td(l.op, "mono") +
            td(model::to_string(l.dims), "mono nowrap") + td(std::to_string(l.numel), "num");
    const double s = share(l);
    rows += td_html(s > 0 ? fmt::format("<span class=\"share-bar\" style=\"width:{}px\" title=\"{} "
                                        "of the bins\"></span>{} "
                                        "<span class=\"note\">({})</span>",
                                        std::max(2L, std::lround(48.0 * s)), escape(percent(s)),
                                        l.bin_mismatch_count, escape(percent(s)))
                          : "0",
                    "num");
    rows += td(std::to_string(l.max_abs_dq), "num") + td(sqnr_text(l.sqnr_db), "num") +
            td(fmt::format("{:.4g}", l.max_abs_error), "num");
    rows += td_html(l.same_grid ? "same"
                                : fmt::format("<span class=\"warning\" title=\"fake-quant scale {} "
                                              "zp {}, int8 scale {} zp {}\">"
                                              "differs</span>",
                                              f9(static_cast<double>(l.fake_quant_grid.scale)),
                                              l.fake_quant_grid.zero_point,
                                              f9(static_cast<double>(l.int8_grid.scale)),
                                              l.int8_grid.zero_point));
    if (ref)
      rows +=
          td_html(exactness_html(find(r.qat_reference, l.name), find(r.int8_reference, l.name)));
    rows += "</tr>\n";
  }
  inner += "<h3>Per layer</h3>\n";
  inner += table("layers", headers, rows, {}, {}, c.layers.size() > 24 ? "scroll-y" : "");
  inner +=
      "<p class=\"note\">Layers are named as in the int8 model; a layer's values are its last op's "
      "output. "
      "SQNR takes the fake-quant output as the signal. <em>grid</em>: whether both paths put the "
      "output on the "
      "same scale and zero point. <em>libtorch ref</em>: whether qparity's emulation of both paths "
      "equals "
      "libtorch's own run of the real models in every value of the layer.</p>\n";
  return section("layers-section", "Layer by layer", inner);
}

std::string grids_section(const ModelReport& r) {
  std::string rows;
  for (size_t i = 0; i < r.comparison.layers.size(); ++i) {
    const auto& l = r.comparison.layers[i];
    rows += fmt::format("<tr data-layer=\"{}\" data-same-grid=\"{}\">", escape(l.name),
                        l.same_grid ? "true" : "false");
    const std::string diff_cls = l.same_grid ? "num mono" : "num mono diff";
    rows += td(std::to_string(i), "num") + td(l.name, "mono") +
            td(f9(static_cast<double>(l.fake_quant_grid.scale)), diff_cls) +
            td(std::to_string(l.fake_quant_grid.zero_point), diff_cls) +
            td(f9(static_cast<double>(l.int8_grid.scale)), diff_cls) +
            td(std::to_string(l.int8_grid.zero_point), diff_cls) + td(l.fake_quant_provenance) +
            td(l.int8_quantized ? "the int8 op's output qparams"
                                : "a float output: its quantized input's grid");
    rows += "</tr>\n";
  }
  std::string inner =
      "<p class=\"note\">The grid (scale, zero point) each path's layer output lies on, and where "
      "it came from. "
      "Differing grids are highlighted.</p>\n";
  inner += table("grids",
                 {"#", "layer", "#fake-quant scale", "#zp", "#int8 scale", "#zp",
                  "fake-quant grid from", "int8 grid from"},
                 rows, {}, {}, r.comparison.layers.size() > 24 ? "scroll-y" : "");
  return section("grids-section", "Output grids", inner);
}

std::string mismatches_section(const ModelReport& r) {
  std::string rows;
  for (const auto& l : r.comparison.layers) {
    if (!l.first_mismatch) continue;
    const auto& m = *l.first_mismatch;
    rows += fmt::format("<tr data-layer=\"{}\" data-index=\"{}\">", escape(l.name), m.index);
    rows += td(l.name, "mono") + td(model::to_string(unravel(m.index, l.dims)), "mono nowrap") +
            td(std::to_string(m.fake_quant_bin), "num") + td(std::to_string(m.int8_bin), "num") +
            td(fmt::format("{:+}", m.int8_bin - m.fake_quant_bin), "num") +
            td(f9(static_cast<double>(m.fake_quant_value)), "num mono") +
            td(f9(static_cast<double>(m.int8_value)), "num mono") +
            td(histogram_text(l.dq_histogram), "mono");
    rows += "</tr>\n";
  }
  std::string inner;
  if (rows.empty()) {
    inner = "<p class=\"ok\">No layer has a bin that differs.</p>\n";
  } else {
    inner =
        "<p class=\"note\">For each divergent layer, its first element (row-major) whose bins "
        "differ, the values "
        "the bins come from, and how many elements are off by each Δq = int8 bin − fake-quant "
        "bin.</p>\n";
    inner += table("mismatches",
                   {"layer", "position", "#fake-quant bin", "#int8 bin", "#Δq", "#fake-quant value",
                    "#int8 value", "Δq: elements"},
                   rows);
  }
  return section("mismatches-section", "First mismatch of each layer", inner);
}

std::string outputs_section(const ModelReport& r) {
  const auto& c = r.comparison;
  const size_t n = std::min(r.fake_quant_output.size(), r.int8_output.size());
  std::vector<size_t> shown(n);
  for (size_t i = 0; i < n; ++i) shown[i] = i;
  const bool all = n <= kMaxOutputRows;
  if (!all) {
    const auto diff = [&](size_t i) {
      return std::abs(static_cast<double>(r.fake_quant_output[i]) -
                      static_cast<double>(r.int8_output[i]));
    };
    std::stable_sort(shown.begin(), shown.end(),
                     [&](size_t a, size_t b) { return diff(a) > diff(b); });
    shown.resize(kMaxOutputRows);
    std::sort(shown.begin(), shown.end());
  }
  std::string rows;
  for (const size_t i : shown) {
    const double a = r.fake_quant_output[i];
    const double b = r.int8_output[i];
    rows += fmt::format("<tr data-index=\"{}\">", i);
    rows += td(model::to_string(unravel(static_cast<int64_t>(i), c.output_dims)), "mono nowrap") +
            td(f9(a), "num mono") + td(f9(b), "num mono") +
            td(f9(b - a), a == b ? "num mono" : "num mono diff");
    rows += "</tr>\n";
  }
  std::string inner = fmt::format(
      "<p>Final output {}: max |difference| {:.6g}; top-1 agreement {} of {} rows (arg max over "
      "the last "
      "dimension).</p>\n",
      escape(model::to_string(c.output_dims)), c.output_max_abs_difference, c.top1_agreeing,
      c.top1_rows);
  inner += fmt::format(
      "<p class=\"note\">{}</p>\n",
      all ? "Every output value of both paths."
          : fmt::format(
                "The {} values that differ most, of {}; <code>--json</code> has every value.",
                kMaxOutputRows, n));
  inner +=
      table("outputs", {"position", "#fake-quant", "#int8", "#int8 − fake-quant"}, rows, "compact");
  return section("outputs-section", "Final outputs", inner);
}

std::string reference_section(const ModelReport& r) {
  std::string inner;
  if (!r.qat_reference) {
    inner = "<p class=\"note\">Skipped (" + escape(r.reference_skipped) +
            "): the emulation was not checked against libtorch's run of the real models.</p>\n";
    return section("reference-section", "Reference check", inner);
  }
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& l : r.comparison.layers) {
    if (seen.insert(l.name).second) names.push_back(l.name);
  }
  // Without an INT8 file (qparity's own convert made the int8 path) only the QAT model ran.
  static const diff::ReferenceCheck kNotRun{};
  const diff::ReferenceCheck& int8_check = r.int8_reference ? *r.int8_reference : kNotRun;
  for (const auto* check : {&*r.qat_reference, &int8_check}) {
    for (const auto& l : check->layers) {
      if (seen.insert(l.name).second) names.push_back(l.name);
    }
  }
  std::string rows;
  for (const auto& name : names) {
    const auto* q = find(r.qat_reference, name);
    const auto* i = find(r.int8_reference, name);
    const bool exact = (q == nullptr || q->elements_differing == 0) &&
                       (i == nullptr || i->elements_differing == 0);
    rows += fmt::format("<tr data-layer=\"{}\" data-exact=\"{}\"{}>", escape(name),
                        exact ? "true" : "false", exact ? "" : " class=\"differs\"");
    rows += td(name, "mono");
    for (const auto* l : {q, i}) {
      rows += l == nullptr ? td("–", "num") + td("–", "num")
                           : td(std::to_string(l->elements), "num") +
                                 td(std::to_string(l->elements_differing), "num");
    }
    std::string first =
        q != nullptr && !q->first_difference.empty() ? "QAT: " + q->first_difference : "";
    if (i != nullptr && !i->first_difference.empty())
      first += (first.empty() ? "" : "; ") + std::string("int8: ") + i->first_difference;
    rows += td(first, "mono");
    rows += "</tr>\n";
  }
  inner = fmt::format(
      "<p class=\"{}\">libtorch ran both real models on the same input; qparity's emulation is {}: "
      "{} QAT and {} "
      "int8 values checked, {} and {} differ; final outputs {}.</p>\n",
      reference_exact(r) ? "ok" : "warning", reference_exact(r) ? "bit-exact" : "NOT exact",
      r.qat_reference->elements, int8_check.elements, r.qat_reference->elements_differing,
      int8_check.elements_differing,
      r.qat_reference->output_exact && (!r.int8_reference || int8_check.output_exact) ? "identical" : "differ");
  inner += table(
      "reference",
      {"layer", "#QAT values", "#QAT differ", "#int8 values", "#int8 differ", "first difference"},
      rows, {}, {}, names.size() > 24 ? "scroll-y" : "");
  return section("reference-section", "Reference check against libtorch", inner);
}

std::string budgets_section(const ModelReport& r) {
  if (r.budgets.empty()) return {};
  std::string rows;
  bool any = false;
  for (const auto& v : r.budgets) {
    any = any || v.exceeded;
    rows += fmt::format("<tr data-budget=\"{}\" data-exceeded=\"{}\">", escape(v.budget),
                        v.exceeded ? "true" : "false");
    rows += td(v.budget, "mono") + td(fmt::format("{:.9g}", v.limit), "num") +
            td(budget_measure_text(v), "num") + td(v.layer, "mono") +
            td_html(v.exceeded ? "<span class=\"badge exceeded\">EXCEEDED</span>"
                               : "<span class=\"badge held\">held</span>");
    rows += "</tr>\n";
  }
  std::string inner =
      any ? "<p class=\"warning\">At least one budget is exceeded: the run exits with code 1.</p>\n"
          : "<p class=\"ok\">Every budget holds.</p>\n";
  inner += table("budgets",
                 {"budget (--fail-on)", "#limit", "#worst layer's value", "worst layer", "verdict"},
                 rows);
  return section("budgets-section", "CI budgets", inner);
}

std::string observers_section(const ModelReport& r) {
  if (r.moved_points.empty()) return {};
  std::string items;
  for (const auto& p : r.moved_points) items += "<li><code>" + escape(p) + "</code></li>";
  return section(
      "observers-section", "Observers still enabled",
      fmt::format(
          "<p class=\"warning\">{} fake-quant points of the QAT model moved their observed range "
          "during this forward, so its qparams are not those convert() froze into the int8 "
          "model.</p>\n<ul id=\"observers\">{}</ul>\n",
          r.moved_points.size(), items));
}

std::string engine_section(const ModelReport& r) {
  std::string rows;
  rows += "<tr>" + td("engine") + td(r.profile.name, "mono") + "</tr>\n";
  rows += "<tr>" + td("int8 numerics") + td(r.profile.provenance) + "</tr>\n";
  rows += "<tr>" + td("QAT float ops") + td(r.float_kernels) + "</tr>\n";
  rows += "<tr>" + td("PyTorch threads emulated") + td(std::to_string(r.torch_threads), "mono") +
          "</tr>\n";
  return section("engine", "Engine", table("engine-table", {"setting", "value"}, rows, "compact"));
}

std::string reproduce_section(const ModelReport& r) {
  std::string inner = "<p>The exact command line of this run:</p>\n";
  inner += "<pre id=\"command-line\">" + escape(r.command_line) + "</pre>\n";
  inner += fmt::format(
      "<p>qparity version <code id=\"version\">{}</code>, engine profile <code "
      "id=\"profile\">{}</code>.</p>\n",
      escape(version()), escape(r.profile.name));
  return section("reproduce", "Reproduce", inner);
}

}  // namespace

std::string render_model_html(const ModelReport& r) {
  const auto& c = r.comparison;
  html::Header h;
  h.command = "model";
  h.title = "qparity model " + r.qat_file + (r.int8_file.empty() ? std::string() : " " + r.int8_file);
  h.status = c.first_divergent ? html::Status::kDiverge : html::Status::kAgree;
  h.status_word = c.first_divergent ? "DIVERGE" : "AGREE";
  h.headline = headline(r);
  h.facts = {"engine " + r.profile.name,
             "input " + model::to_string(r.input_dims),
             "output " + model::to_string(c.output_dims),
             fmt::format("{} layers", c.layers.size()),
             "reference " + reference_word(r),
             "qparity " + std::string(version())};
  h.nav = {{"summary", "Result"},          {"layers-section", "Layers"},
           {"grids-section", "Grids"},     {"mismatches-section", "First mismatches"},
           {"outputs-section", "Outputs"}, {"reference-section", "Reference"}};
  if (r.diagnosis) h.nav.emplace_back("diagnosis-section", "Diagnosis");
  if (!r.budgets.empty()) h.nav.emplace_back("budgets-section", "Budgets");
  if (!r.moved_points.empty()) h.nav.emplace_back("observers-section", "Observers");
  h.nav.emplace_back("engine", "Engine");
  h.nav.emplace_back("reproduce", "Reproduce");
  std::string body = summary_section(r);
  body += layers_section(r);
  body += render_diagnosis_html(r);
  body += grids_section(r);
  body += mismatches_section(r);
  body += outputs_section(r);
  body += reference_section(r);
  body += budgets_section(r);
  body += observers_section(r);
  body += engine_section(r);
  body += reproduce_section(r);
  return html::page(h, body);
}

}  // namespace qparity::cli
