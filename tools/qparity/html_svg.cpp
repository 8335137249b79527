// Inline SVG charts of the HTML reports (see html_svg.h).
#include "html_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace qparity::cli::html {
namespace {

constexpr const char* kFakeQuantColor = "#1f6fb4";
constexpr const char* kInt8Color = "#f28e1c";
constexpr const char* kDivergeColor = "#d32f2f";
constexpr const char* kGridColor = "#e3e6eb";
constexpr const char* kAxisColor = "#8a93a3";
constexpr const char* kHighlightColor = "#5b3fd6";

std::string num(double v) { return coord(v); }

std::string open_svg(const std::string& id, double width, double height, const std::string& label,
                     const std::string& extra = {}) {
  return fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" "
      "role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"xMidYMid meet\"{}>\n",
      escape(id), num(width), num(height), escape(label), extra);
}

struct Tick {
  double position = 0.0;  // pixel
  std::string label;
};

// Tick marks, labels and optional grid lines along the bottom of a plot area.
void bottom_axis(std::string& out, double x0, double x1, double y_bottom, double y_top,
                 const std::vector<Tick>& ticks, const std::string& title, bool grid) {
  out += "<g class=\"axis axis-x\">\n";
  for (const Tick& t : ticks) {
    if (grid) {
      out += fmt::format(
          "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"{3}\" "
          "stroke-width=\"1\"/>\n",
          num(t.position), num(y_top), num(y_bottom), kGridColor);
    }
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"{3}\"/>\n",
                       num(t.position), num(y_bottom), num(y_bottom + 5), kAxisColor);
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                       num(t.position), num(y_bottom + 18), escape(t.label));
  }
  out += fmt::format("<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"{3}\"/>\n",
                     num(x0), num(x1), num(y_bottom), kAxisColor);
  out +=
      fmt::format("<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                  num((x0 + x1) / 2), num(y_bottom + 36), escape(title));
  out += "</g>\n";
}

void left_axis(std::string& out, double x_left, double x_right, double y_bottom, double y_top,
               const std::vector<Tick>& ticks, const std::string& title, bool grid) {
  out += "<g class=\"axis axis-y\">\n";
  for (const Tick& t : ticks) {
    if (grid) {
      out += fmt::format(
          "<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"{3}\" "
          "stroke-width=\"1\"/>\n",
          num(x_left), num(x_right), num(t.position), kGridColor);
    }
    out += fmt::format("<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"{3}\"/>\n",
                       num(x_left - 5), num(x_left), num(t.position), kAxisColor);
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                       num(x_left - 8), num(t.position + 4), escape(t.label));
  }
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"{3}\"/>\n",
                     num(x_left), num(y_top), num(y_bottom), kAxisColor);
  const double cy = (y_top + y_bottom) / 2;
  out += fmt::format(
      "<text class=\"axis-title\" x=\"{0}\" y=\"{1}\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 {0} {1})\">{2}</text>\n",
      num(14), num(cy), escape(title));
  out += "</g>\n";
}

// A step path through (w, bins[w]) for w in [first, last]: each bin a horizontal run.
std::string step_path(const std::vector<int>& bins, int64_t first, int64_t last, const Scale& x,
                      const Scale& y) {
  std::string d;
  for (int64_t w = first; w <= last; ++w) {
    const double v = bins[static_cast<size_t>(w)];
    const double wd = static_cast<double>(w);
    if (w == first) {
      d += fmt::format("M{} {}", num(x(wd - 0.5)), num(y(v)));
    } else {
      d += fmt::format("V{}", num(y(v)));
    }
    d += fmt::format("H{}", num(x(wd + 0.5)));
  }
  return d;
}

std::string marker_shape(int marker, double cx, double cy, double r, const std::string& color,
                         const std::string& attributes) {
  switch (marker % 4) {
    case 1:
      return fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
          "stroke=\"#fff\" stroke-width=\"0.8\"{}>",
          num(cx - r * 0.9), num(cy - r * 0.9), num(r * 1.8), num(r * 1.8), color, attributes);
    case 2:
      return fmt::format(
          "<path d=\"M{} {}L{} {}L{} {}Z\" fill=\"{}\" stroke=\"#fff\" "
          "stroke-width=\"0.8\"{}>",
          num(cx), num(cy - r * 1.15), num(cx + r * 1.1), num(cy + r * 0.85), num(cx - r * 1.1),
          num(cy + r * 0.85), color, attributes);
    case 3:
      return fmt::format(
          "<path d=\"M{} {}L{} {}L{} {}L{} {}Z\" fill=\"{}\" stroke=\"#fff\" "
          "stroke-width=\"0.8\"{}>",
          num(cx), num(cy - r * 1.2), num(cx + r * 1.2), num(cy), num(cx), num(cy + r * 1.2),
          num(cx - r * 1.2), num(cy), color, attributes);
    default:
      return fmt::format(
          "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\" stroke=\"#fff\" "
          "stroke-width=\"0.8\"{}>",
          num(cx), num(cy), num(r), color, attributes);
  }
}

std::string marker_close(int marker) {
  switch (marker % 4) {
    case 1:
      return "</rect>";
    case 2:
    case 3:
      return "</path>";
    default:
      return "</circle>";
  }
}

// The x positions of a k axis: log10(k) or k, padded by half the outer sample spacing.
struct KAxis {
  bool log = false;
  double u0 = 0.0, u1 = 1.0;
  double u(double k) const { return log ? std::log10(k) : k; }
};

KAxis make_k_axis(bool log, const std::vector<std::vector<double>>& ks) {
  KAxis a{log, 0.0, 1.0};
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  double pad = std::numeric_limits<double>::infinity();
  for (const auto& row : ks) {
    for (size_t i = 0; i < row.size(); ++i) {
      const double u = a.u(row[i]);
      lo = std::min(lo, u);
      hi = std::max(hi, u);
      if (i > 0) {
        const double gap = u - a.u(row[i - 1]);
        if (gap > 0) pad = std::min(pad, gap);
      }
    }
  }
  if (!std::isfinite(lo)) {
    lo = log ? -1.0 : 0.0;
    hi = log ? 1.0 : 1.0;
  }
  if (!std::isfinite(pad))
    pad = hi > lo ? (hi - lo) / 20 : (log ? 0.5 : std::max(std::abs(lo) * 0.5, 0.5));
  a.u0 = lo - pad / 2;
  a.u1 = hi + pad / 2;
  if (!log && lo >= 0 && a.u0 < 0) a.u0 = std::min(0.0, lo);
  return a;
}

std::vector<Tick> k_ticks(const KAxis& a, const Scale& x) {
  std::vector<Tick> ticks;
  if (a.log) {
    const double lo = std::pow(10.0, a.u0), hi = std::pow(10.0, a.u1);
    std::vector<double> values = log_ticks(lo, hi);
    if (values.size() < 2) values = linear_ticks(lo, hi, 5);
    for (const double v : values) {
      if (v > 0) ticks.push_back({x(std::log10(v)), tick_label(v)});
    }
  } else {
    for (const double v : linear_ticks(a.u0, a.u1, 8)) ticks.push_back({x(v), tick_label(v)});
  }
  return ticks;
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (const char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // C0 controls other than tab / newline / carriage return are not allowed in HTML text.
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') {
          out += "\xEF\xBF\xBD";  // U+FFFD
        } else {
          out += ch;
        }
    }
  }
  return out;
}

std::string coord(double v) {
  if (!std::isfinite(v)) return "0";
  const double r = std::round(v * 100.0) / 100.0;
  return fmt::format("{:.2f}", r == 0.0 ? 0.0 : r);
}

double Scale::operator()(double v) const {
  double a = d0, b = d1, t = v;
  if (log) {
    a = std::log10(d0);
    b = std::log10(d1);
    t = v > 0 ? std::log10(v) : a;
  }
  const double f = b != a ? (t - a) / (b - a) : 0.5;
  return r0 + f * (r1 - r0);
}

std::vector<double> linear_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || target < 1) {
    ticks.push_back(lo);
    return ticks;
  }
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double step = (norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0) * magnitude;
  for (double i = std::ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i += 1.0) {
    double v = i * step;
    if (std::abs(v) < step * 1e-9) v = 0.0;
    ticks.push_back(v);
  }
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  if (!(lo > 0) || !(hi > lo)) return ticks;
  const int e0 = static_cast<int>(std::floor(std::log10(lo)));
  const int e1 = static_cast<int>(std::ceil(std::log10(hi)));
  const bool minor = std::log10(hi) - std::log10(lo) < 2.0;
  const int every = std::max(1, (e1 - e0) / 10);  // at most ~10 decade labels
  for (int e = e0; e <= e1; ++e) {
    const double decade = std::pow(10.0, e);
    for (const double m : {1.0, 2.0, 5.0}) {
      if (m != 1.0 && !minor) continue;
      if (m == 1.0 && (e - e0) % every != 0) continue;
      const double v = m * decade;
      if (v >= lo * (1 - 1e-12) && v <= hi * (1 + 1e-12)) ticks.push_back(v);
    }
  }
  return ticks;
}

std::string tick_label(double v) {
  if (v == 0.0) return "0";
  const double a = std::abs(v);
  if (a >= 1e-3 && a < 1e5) return fmt::format("{:.6g}", v);
  const int e = static_cast<int>(std::floor(std::log10(a)));
  const double m = v / std::pow(10.0, e);
  if (std::abs(m - std::round(m)) < 1e-9) return fmt::format("{}e{}", std::lround(m), e);
  return fmt::format("{:.3g}", v);
}

std::string marker_swatch(int marker, const std::string& color, const std::string& dash) {
  std::string out =
      "<svg class=\"swatch-svg\" viewBox=\"0 0 30 12\" width=\"30\" height=\"12\" "
      "aria-hidden=\"true\">";
  out +=
      fmt::format("<line x1=\"1\" y1=\"6\" x2=\"29\" y2=\"6\" stroke=\"{}\" stroke-width=\"2\"{}/>",
                  color, dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"");
  if (marker >= 0) out += marker_shape(marker, 15, 6, 3.6, color, "") + marker_close(marker);
  out += "</svg>";
  return out;
}

// ---------------------------------------------------------------------------------------------

std::string staircase_svg(const StaircaseChart& c) {
  const double width = c.zoom ? 400 : 760;
  const double height = 460;
  const double left = 54, right = 14, top = c.zoom ? 52 : 34, bottom = 48;
  const int64_t last_column = static_cast<int64_t>(c.fake_quant.size()) - 1;
  const int64_t first = std::clamp<int64_t>(c.w_first, 0, last_column);
  const int64_t last = std::clamp<int64_t>(c.w_last, first, last_column);
  const auto fq = [&](int64_t w) { return c.fake_quant[static_cast<size_t>(w)]; };
  const auto q8 = [&](int64_t w) { return c.int8[static_cast<size_t>(w)]; };

  int lo = 0, hi = 255;
  if (c.zoom) {
    lo = 255;
    hi = 0;
    for (int64_t w = first; w <= last; ++w) {
      lo = std::min({lo, fq(w), q8(w)});
      hi = std::max({hi, fq(w), q8(w)});
    }
    lo -= 1;
    hi += 1;
  }
  const Scale x{static_cast<double>(first) - 0.5, static_cast<double>(last) + 0.5, left,
                width - right};
  const double y_pad = c.zoom ? 0.5 : 3.0;
  const Scale y{lo - y_pad, hi + y_pad, height - bottom, top};

  int64_t divergent = 0;
  for (int64_t w = first; w <= last; ++w) divergent += fq(w) != q8(w) ? 1 : 0;
  std::string out =
      open_svg(c.id, width, height, c.label,
               fmt::format(" data-w-first=\"{}\" data-w-last=\"{}\" data-divergent=\"{}\" "
                           "data-first-mismatch-w=\"{}\"",
                           first, last, divergent, c.first_mismatch));
  out += fmt::format(
      "<rect class=\"plot-bg\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
      "fill=\"#fbfcfd\"/>\n",
      num(left), num(top), num(width - left - right), num(height - top - bottom));

  // Axes and grid.
  std::vector<Tick> xt, yt;
  if (c.zoom) {
    const int64_t columns = last - first + 1;
    const int64_t every = columns <= 17 ? 1 : 2;
    for (int64_t w = first; w <= last; ++w) {
      if ((w - first) % every == 0) xt.push_back({x(static_cast<double>(w)), std::to_string(w)});
    }
    const int every_bin = hi - lo <= 18 ? 1 : (hi - lo <= 40 ? 2 : 5);
    for (int b = std::max(lo, 0); b <= std::min(hi, 255); ++b) {
      if ((b - lo) % every_bin == 0) yt.push_back({y(b), std::to_string(b)});
    }
  } else {
    for (int v : {0, 32, 64, 96, 128, 160, 192, 224, 255}) {
      if (v >= first && v <= last) xt.push_back({x(v), std::to_string(v)});
      yt.push_back({y(v), std::to_string(v)});
    }
  }
  bottom_axis(out, left, width - right, height - bottom, top, xt, "column w (input w/255)", true);
  left_axis(out, left, width - right, height - bottom, top, yt, "output bin (quint8)", true);

  // The zoom window, drawn on the main chart as a box.
  if (!c.zoom && c.zoom_first >= first && c.zoom_last >= c.zoom_first && c.zoom_last <= last) {
    int zlo = 255, zhi = 0;
    for (int64_t w = c.zoom_first; w <= c.zoom_last; ++w) {
      zlo = std::min({zlo, fq(w), q8(w)});
      zhi = std::max({zhi, fq(w), q8(w)});
    }
    out += fmt::format(
        "<rect class=\"zoom-box\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
        "stroke=\"#555\" stroke-width=\"1\" stroke-dasharray=\"4 3\"><title>zoomed at the right: "
        "columns {} to {}</title></rect>\n",
        num(x(static_cast<double>(c.zoom_first) - 0.5)), num(y(zhi + 6)),
        num(x(static_cast<double>(c.zoom_last) + 0.5) - x(static_cast<double>(c.zoom_first) - 0.5)),
        num(y(zlo - 6) - y(zhi + 6)), c.zoom_first, c.zoom_last);
  }

  // The element explain traces.
  if (c.highlight >= first && c.highlight <= last) {
    const double hx = x(static_cast<double>(c.highlight));
    const double band = std::max(6.0, x(1) - x(0));
    out += fmt::format(
        "<rect class=\"highlight\" data-w=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" "
        "height=\"{}\" fill=\"{}\" fill-opacity=\"0.16\"><title>traced element: "
        "column {}</title></rect>\n",
        c.highlight, num(hx - band / 2), num(top), num(band), num(height - top - bottom),
        kHighlightColor, c.highlight);
  }

  // The first mismatch: a dashed line and a label.
  if (c.first_mismatch >= first && c.first_mismatch <= last) {
    const double mx = x(static_cast<double>(c.first_mismatch));
    out += fmt::format(
        "<line class=\"first-mismatch\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" "
        "stroke=\"{3}\" stroke-width=\"1\" stroke-dasharray=\"5 4\"/>\n",
        num(mx), num(top), num(height - bottom), kDivergeColor);
    if (!c.zoom) {
      const std::string text =
          fmt::format("first mismatch at w = {}: fake-quant {}, int8 {}", c.first_mismatch,
                      fq(c.first_mismatch), q8(c.first_mismatch));
      // About 0.56 em per character: keep the label inside the chart on either side of the line.
      const double text_width = 7.0 * static_cast<double>(text.size());
      double tx = mx + 6;
      const char* anchor = "start";
      if (tx + text_width > width - right) {
        tx = mx - 6;
        anchor = "end";
        if (tx - text_width < left) {
          tx = left;
          anchor = "start";
        }
      }
      out += fmt::format(
          "<text class=\"annotation\" x=\"{}\" y=\"{}\" text-anchor=\"{}\" "
          "fill=\"{}\">{}</text>\n",
          num(tx), num(top - 10), anchor, kDivergeColor, escape(text));
    }
  }

  // Zoom annotations: the first mismatch, and each run of one bin in one path (e.g. the int8
  // bin 127 twice) over which the other path steps on.
  if (c.zoom) {
    std::vector<std::pair<std::string, const char*>> notes;  // text, colour
    if (c.highlight >= first && c.highlight <= last && c.highlight != c.first_mismatch) {
      notes.emplace_back(fmt::format("traced w = {}: fake-quant {}, int8 {}", c.highlight,
                                     fq(c.highlight), q8(c.highlight)),
                         kHighlightColor);
    }
    if (c.first_mismatch >= first && c.first_mismatch <= last) {
      notes.emplace_back(fmt::format("first mismatch w = {}: fake-quant {}, int8 {}",
                                     c.first_mismatch, fq(c.first_mismatch), q8(c.first_mismatch)),
                         kDivergeColor);
    }
    for (const bool int8_path : {true, false}) {
      const auto run_path = [&](int64_t w) { return int8_path ? q8(w) : fq(w); };
      const auto other = [&](int64_t w) { return int8_path ? fq(w) : q8(w); };
      const char* path = int8_path ? "int8" : "fake-quant";
      for (int64_t a = first; a <= last;) {
        int64_t b = a;
        while (b + 1 <= last_column && run_path(b + 1) == run_path(a)) ++b;
        int64_t a_full = a;
        while (a_full > 0 && run_path(a_full - 1) == run_path(a)) --a_full;
        bool other_steps = false;
        for (int64_t w = a_full + 1; w <= b; ++w)
          other_steps = other_steps || other(w) != other(w - 1);
        if (b > a_full && other_steps) {
          const int v = run_path(a);
          const int64_t shown_last = std::min(b, last);
          const double x0 = x(static_cast<double>(a) - 0.45);
          const double x1 = x(static_cast<double>(shown_last) + 0.45);
          const int64_t times = b - a_full + 1;
          out += fmt::format(
              "<rect class=\"repeat\" data-path=\"{}\" data-bin=\"{}\" data-w-first=\"{}\" "
              "data-w-last=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"6\" "
              "fill=\"{}\" "
              "fill-opacity=\"0.16\" stroke=\"{}\" stroke-width=\"1.5\"><title>{} bin {} in {} "
              "columns (w = {} to {}) while the other path steps on</title></rect>\n",
              path, v, a_full, b, num(x0), num(y(v + 0.45)), num(x1 - x0),
              num(y(v - 0.45) - y(v + 0.45)), kDivergeColor, kDivergeColor, path, v, times, a_full,
              b);
          // "127 x2" beside it: left of it, where a rising staircase leaves the row empty, unless
          // the run starts at the edge of the window.
          const bool label_left = a - first >= 2;
          out += fmt::format(
              "<text class=\"annotation repeat-label\" x=\"{}\" y=\"{}\" "
              "text-anchor=\"{}\" fill=\"{}\">{} ×{}</text>\n",
              num(label_left ? x0 - 5 : x1 + 5), num(y(v) + 4), label_left ? "end" : "start",
              kDivergeColor, v, times);
          if (notes.size() < 3) {
            notes.emplace_back(times == 2
                                   ? fmt::format("{} bin {} twice (w = {}, {})", path, v, a_full, b)
                                   : fmt::format("{} bin {} in {} columns (w = {} to {})", path, v,
                                                 times, a_full, b),
                               kDivergeColor);
          }
        }
        a = b + 1;
      }
    }
    for (size_t i = 0; i < notes.size() && i < 3; ++i) {
      out += fmt::format("<text class=\"annotation\" x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>\n",
                         num(8), num(16 + 15 * static_cast<double>(i)), notes[i].second,
                         escape(notes[i].first));
    }
  }

  // The two staircases: fake-quant wide and light underneath, int8 narrow on top.
  out += fmt::format(
      "<path class=\"series fq\" data-series=\"fake_quant\" d=\"{}\" fill=\"none\" "
      "stroke=\"{}\" stroke-width=\"{}\" stroke-opacity=\"0.55\" "
      "stroke-linejoin=\"round\"/>\n",
      step_path(c.fake_quant, first, last, x, y), kFakeQuantColor, c.zoom ? 6 : 4);
  out += fmt::format(
      "<path class=\"series int8\" data-series=\"int8\" d=\"{}\" fill=\"none\" "
      "stroke=\"{}\" stroke-width=\"{}\" stroke-linejoin=\"round\"/>\n",
      step_path(c.int8, first, last, x, y), kInt8Color, c.zoom ? 2.2 : 1.5);

  if (c.zoom) {
    out += "<g class=\"points\">\n";
    for (int64_t w = first; w <= last; ++w) {
      const double px = x(static_cast<double>(w));
      out += fmt::format(
          "<circle class=\"pt fq\" data-w=\"{}\" data-bin=\"{}\" cx=\"{}\" cy=\"{}\" "
          "r=\"6\" fill=\"#fff\" stroke=\"{}\" stroke-width=\"2\"><title>w = {}: "
          "fake-quant bin {}</title></circle>\n",
          w, fq(w), num(px), num(y(fq(w))), kFakeQuantColor, w, fq(w));
      out += fmt::format(
          "<circle class=\"pt int8\" data-w=\"{}\" data-bin=\"{}\" cx=\"{}\" cy=\"{}\" "
          "r=\"3.6\" fill=\"{}\"><title>w = {}: int8 bin {}</title></circle>\n",
          w, q8(w), num(px), num(y(q8(w))), kInt8Color, w, q8(w));
    }
    out += "</g>\n";
  }

  // Divergent columns: a red bar from the fake-quant bin to the int8 bin, a red marker on int8.
  out += "<g class=\"divergent-marks\">\n";
  for (int64_t w = first; w <= last; ++w) {
    if (fq(w) == q8(w)) continue;
    const double px = x(static_cast<double>(w));
    out += fmt::format(
        "<g class=\"divergent\" data-w=\"{0}\" data-fq=\"{1}\" data-int8=\"{2}\"><title>w = {0}: "
        "fake-quant bin {1}, int8 bin {2} (Δq = {3:+})</title>"
        "<line x1=\"{4}\" y1=\"{5}\" x2=\"{4}\" y2=\"{6}\" stroke=\"{7}\" stroke-width=\"{8}\"/>"
        "<circle cx=\"{4}\" cy=\"{6}\" r=\"{9}\" fill=\"{10}\" stroke=\"{7}\" "
        "stroke-width=\"{11}\"/>"
        "</g>\n",
        w, fq(w), q8(w), fq(w) - q8(w), num(px), num(y(fq(w))), num(y(q8(w))), kDivergeColor,
        c.zoom ? 2 : 1.2, c.zoom ? 8.5 : 2.3, c.zoom ? "none" : kDivergeColor, c.zoom ? 2 : 0.5);
  }
  out += "</g>\n</svg>\n";
  return out;
}

// ---------------------------------------------------------------------------------------------

std::string bar_chart_svg(const BarChart& c) {
  const double width = 760, height = 300;
  const double left = 72, right = 14, top = 24, bottom = 48;
  int64_t xmin = 0, xmax = 0, cmax = 1;
  for (const auto& b : c.bars) {
    xmin = std::min(xmin, b.x);
    xmax = std::max(xmax, b.x);
    cmax = std::max(cmax, b.count);
  }
  xmin -= 1;
  xmax += 1;
  const Scale x{static_cast<double>(xmin) - 0.5, static_cast<double>(xmax) + 0.5, left,
                width - right};
  std::vector<Tick> yt;
  Scale y;
  if (c.log_y) {
    const double top_decade = std::pow(10.0, std::ceil(std::log10(static_cast<double>(cmax))));
    y = Scale{1.0, std::max(10.0, top_decade), height - bottom, top, true};
    for (const double v : log_ticks(1.0, y.d1)) yt.push_back({y(v), tick_label(v)});
  } else {
    const std::vector<double> ticks = linear_ticks(0, static_cast<double>(cmax), 5);
    const double ymax = std::max(ticks.back(), static_cast<double>(cmax));
    y = Scale{0.0, ymax * 1.08, height - bottom, top, false};
    for (const double v : ticks) yt.push_back({y(v), fmt::format("{}", static_cast<int64_t>(v))});
  }
  std::vector<Tick> xt;
  const int64_t span = xmax - xmin;
  if (span <= 24) {
    for (int64_t v = xmin; v <= xmax; ++v)
      xt.push_back({x(static_cast<double>(v)), fmt::format("{:+}", v)});
  } else {
    for (const double v : linear_ticks(static_cast<double>(xmin), static_cast<double>(xmax), 10)) {
      xt.push_back({x(v), fmt::format("{:+}", static_cast<int64_t>(std::llround(v)))});
    }
  }
  for (Tick& t : xt) {
    if (t.label == "+0") t.label = "0";
  }
  std::string out = open_svg(c.id, width, height, c.label,
                             fmt::format(" data-bars=\"{}\" data-log-y=\"{}\"", c.bars.size(),
                                         c.log_y ? "true" : "false"));
  out += fmt::format(
      "<rect class=\"plot-bg\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
      "fill=\"#fbfcfd\"/>\n",
      num(left), num(top), num(width - left - right), num(height - top - bottom));
  left_axis(out, left, width - right, height - bottom, top, yt, c.y_title, true);
  bottom_axis(out, left, width - right, height - bottom, top, xt, c.x_title, false);
  const double bar_width = std::max(1.0, std::min(56.0, (x(1) - x(0)) * 0.78));
  const bool labels = c.bars.size() <= 24;
  for (const auto& b : c.bars) {
    if (b.count <= 0) continue;
    const double cx = x(static_cast<double>(b.x));
    const double base = height - bottom;
    double by = y(static_cast<double>(b.count));
    by = std::min(by, base - 2.0);  // every nonzero count stays visible
    const bool diverge = b.css_class == "bar-diverge";
    out += fmt::format(
        "<rect class=\"bar {}\" data-dq=\"{}\" data-count=\"{}\" x=\"{}\" y=\"{}\" "
        "width=\"{}\" height=\"{}\" fill=\"{}\"><title>Δq = {:+}: {} elements</title></rect>\n",
        b.css_class, b.x, b.count, num(cx - bar_width / 2), num(by), num(bar_width), num(base - by),
        diverge ? kDivergeColor : "#6b8fb8", b.x, b.count);
    if (labels) {
      out += fmt::format(
          "<text class=\"bar-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", num(cx),
          num(by - 5), b.count);
    }
  }
  out += "</svg>\n";
  return out;
}

// ---------------------------------------------------------------------------------------------

namespace {
constexpr double kKLeft = 74, kKRight = 22;  // shared by the strip and line charts so k aligns
constexpr double kKWidth = 900;
}  // namespace

std::string strip_chart_svg(const StripChart& c) {
  const double label_h = 17, bar_h = 22, gap = 12;
  const double row_h = label_h + bar_h + gap;
  const double top = 8, bottom = 48;
  const double height =
      top + row_h * static_cast<double>(std::max<size_t>(c.rows.size(), 1)) + bottom;
  std::vector<std::vector<double>> ks;
  for (const auto& r : c.rows) {
    std::vector<double> row;
    for (const auto& cell : r.cells) row.push_back(cell.k);
    ks.push_back(std::move(row));
  }
  const KAxis a = make_k_axis(c.log_x, ks);
  const Scale x{a.u0, a.u1, kKLeft, kKWidth - kKRight};
  std::string out = open_svg(c.id, kKWidth, height, c.label,
                             fmt::format(" data-rows=\"{}\" data-log-x=\"{}\"", c.rows.size(),
                                         c.log_x ? "true" : "false"));
  const double plot_bottom = height - bottom;
  const std::vector<Tick> ticks = k_ticks(a, x);
  for (const Tick& t : ticks) {
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"{3}\"/>\n",
                       num(t.position), num(top), num(plot_bottom), kGridColor);
  }
  for (size_t r = 0; r < c.rows.size(); ++r) {
    const auto& row = c.rows[r];
    const double ry = top + row_h * static_cast<double>(r);
    out += fmt::format("<g class=\"strip\" data-series=\"{}\" shape-rendering=\"crispEdges\">\n",
                       escape(row.label));
    out += fmt::format("<text class=\"strip-label\" x=\"{}\" y=\"{}\">{}</text>\n", num(kKLeft),
                       num(ry + label_h - 4), escape(row.label));
    const double by = ry + label_h;
    // Cell edges: halfway between sampled k, or at a boundary found between them (exact when
    // refined), so the colour changes where the outcome does.
    const size_t n = row.cells.size();
    std::vector<double> edges(n + 1);
    for (size_t i = 1; i < n; ++i) {
      const double k0 = row.cells[i - 1].k, k1 = row.cells[i].k;
      edges[i] = (a.u(k0) + a.u(k1)) / 2;
      for (const auto& m : row.boundaries) {
        if (m.k_low >= k0 && m.k_high <= k1) edges[i] = (a.u(m.k_low) + a.u(m.k_high)) / 2;
      }
    }
    edges[0] = a.u0;
    edges[n] = a.u1;
    if (n > 1) {
      // Outer cells reach half a sample spacing out, even when a boundary moved their inner edge.
      edges[0] = a.u(row.cells[0].k) - (a.u(row.cells[1].k) - a.u(row.cells[0].k)) / 2;
      edges[n] = a.u(row.cells[n - 1].k) + (a.u(row.cells[n - 1].k) - a.u(row.cells[n - 2].k)) / 2;
    }
    for (size_t i = 0; i < n; ++i) {
      const auto& cell = row.cells[i];
      const double ul = edges[i];
      const double ur = edges[i + 1];
      const double x0 = std::max(kKLeft, x(ul)), x1 = std::min(kKWidth - kKRight, x(ur));
      const std::string& color = c.colors[cell.outcome % c.colors.size()];
      out += fmt::format(
          "<rect class=\"cell\" data-k=\"{:.9g}\" data-outcome=\"{}\" x=\"{}\" "
          "y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>\n",
          cell.k, escape(c.outcomes[cell.outcome]), num(x0), num(by), num(std::max(0.6, x1 - x0)),
          num(bar_h), color, escape(cell.tooltip));
    }
    for (const auto& m : row.boundaries) {
      const double bx = x((a.u(m.k_low) + a.u(m.k_high)) / 2);
      out += fmt::format(
          "<line class=\"boundary\" data-k-low=\"{0:.9g}\" data-k-high=\"{1:.9g}\" "
          "x1=\"{2}\" y1=\"{3}\" x2=\"{2}\" y2=\"{4}\" stroke=\"#111\" "
          "stroke-width=\"2\"><title>{5}</title></line>\n",
          m.k_low, m.k_high, num(bx), num(by - 3), num(by + bar_h + 3), escape(m.tooltip));
    }
    out += "</g>\n";
  }
  bottom_axis(out, kKLeft, kKWidth - kKRight, plot_bottom, top, ticks,
              c.log_x ? "k (log scale)" : "k", false);
  out += "</svg>\n";
  return out;
}

// ---------------------------------------------------------------------------------------------

bool line_chart_uses_log_y(const LineChart& c) {
  double min_positive = std::numeric_limits<double>::infinity(), max_value = 0;
  for (const auto& s : c.series) {
    for (const auto& p : s.points) {
      if (p.y > 0) min_positive = std::min(min_positive, p.y);
      max_value = std::max(max_value, p.y);
    }
  }
  return max_value > 0 && max_value / min_positive > 100.0;
}

std::string line_chart_svg(const LineChart& c) {
  const double height = 300, top = 16, bottom = 48;
  const double plot_bottom = height - bottom;
  std::vector<std::vector<double>> ks;
  double min_positive = std::numeric_limits<double>::infinity(), max_value = 0;
  for (const auto& s : c.series) {
    std::vector<double> row;
    for (const auto& p : s.points) {
      row.push_back(p.x);
      if (p.y > 0) min_positive = std::min(min_positive, p.y);
      max_value = std::max(max_value, p.y);
    }
    std::sort(row.begin(), row.end());
    ks.push_back(std::move(row));
  }
  const KAxis a = make_k_axis(c.log_x, ks);
  const Scale x{a.u0, a.u1, kKLeft, kKWidth - kKRight};
  const bool log_y = line_chart_uses_log_y(c);
  std::vector<Tick> yt;
  // y of a value: log10 above a separate zero baseline, or linear from zero.
  Scale y;
  const double zero_gap = 22;
  if (log_y) {
    const double d0 = std::pow(10.0, std::floor(std::log10(min_positive)));
    const double d1 = std::pow(10.0, std::ceil(std::log10(max_value)));
    y = Scale{d0, std::max(d1, d0 * 10), plot_bottom - zero_gap, top, true};
    yt.push_back({plot_bottom, "0"});
    for (const double v : log_ticks(y.d0, y.d1)) yt.push_back({y(v), tick_label(v)});
  } else {
    const std::vector<double> ticks = linear_ticks(0, std::max(1.0, max_value), 5);
    y = Scale{0.0, std::max(ticks.back(), max_value) * 1.05, plot_bottom, top, false};
    for (const double v : ticks) yt.push_back({y(v), tick_label(v)});
  }
  const auto py = [&](double v) { return log_y && v <= 0 ? plot_bottom : y(v); };

  std::string out =
      open_svg(c.id, kKWidth, height, c.label,
               fmt::format(" data-series-count=\"{}\" data-log-x=\"{}\" data-log-y=\"{}\"",
                           c.series.size(), c.log_x ? "true" : "false", log_y ? "true" : "false"));
  out += fmt::format(
      "<rect class=\"plot-bg\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
      "fill=\"#fbfcfd\"/>\n",
      num(kKLeft), num(top), num(kKWidth - kKLeft - kKRight), num(plot_bottom - top));
  left_axis(out, kKLeft, kKWidth - kKRight, plot_bottom, top, yt,
            c.y_title + (log_y ? " (log)" : ""), true);
  bottom_axis(out, kKLeft, kKWidth - kKRight, plot_bottom, top, k_ticks(a, x),
              c.log_x ? "k (log scale)" : "k", true);
  if (log_y) {
    out += fmt::format(
        "<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"{3}\" "
        "stroke-dasharray=\"2 3\"/>\n",
        num(kKLeft), num(kKWidth - kKRight), num(plot_bottom - zero_gap / 2), kAxisColor);
  }
  for (const auto& s : c.series) {
    out += fmt::format("<g class=\"line-series\" data-series=\"{}\">\n", escape(s.label));
    std::string d;
    for (const auto& p : s.points) {
      d += fmt::format("{}{} {}", d.empty() ? "M" : "L", num(x(a.u(p.x))), num(py(p.y)));
    }
    if (!d.empty()) {
      out += fmt::format(
          "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{} "
          "stroke-opacity=\"0.85\" stroke-linejoin=\"round\"/>\n",
          d, s.color, num(s.line_width),
          s.dash.empty() ? "" : " stroke-dasharray=\"" + s.dash + "\"");
    }
    for (const auto& p : s.points) {
      if (s.marker < 0) break;  // a line only: too many points for markers
      out += marker_shape(s.marker, x(a.u(p.x)), py(p.y), s.marker_size, s.color,
                          fmt::format(" class=\"pt\" data-k=\"{:.9g}\" data-y=\"{}\"", p.x,
                                      static_cast<int64_t>(p.y)));
      out += "<title>" + escape(p.tooltip) + "</title>" + marker_close(s.marker) + "\n";
    }
    out += "</g>\n";
  }
  out += "</svg>\n";
  return out;
}

// ---------------------------------------------------------------------------------------------

std::string depth_chart_svg(const DepthChart& c) {
  const double width = 1000, left = 74, right = 22;
  const double top = 34, sqnr_bottom = 232, share_top = 266, share_bottom = 394, height = 442;
  const double inf_band = top + 8;  // where SQNR +inf (equal values) is drawn
  const double finite_top = top + 26;
  const auto n = static_cast<int64_t>(c.layers.size());
  const Scale x{-0.5, static_cast<double>(std::max<int64_t>(n, 1)) - 0.5, left, width - right};

  // SQNR axis over the finite values (0 dB always shown).
  double lo = 0.0, hi = 0.0, max_share = 0.0;
  bool any_finite = false;
  for (const auto& l : c.layers) {
    if (std::isfinite(l.sqnr_db)) {
      lo = any_finite ? std::min(lo, l.sqnr_db) : std::min(0.0, l.sqnr_db);
      hi = any_finite ? std::max(hi, l.sqnr_db) : std::max(0.0, l.sqnr_db);
      any_finite = true;
    }
    max_share = std::max(max_share, l.mismatch_share);
  }
  if (!(hi > lo)) hi = lo + 10.0;
  std::vector<double> sqnr_values = linear_ticks(lo, hi, 5);
  const Scale ys{std::min(lo, sqnr_values.front()), std::max(hi, sqnr_values.back()), sqnr_bottom,
                 finite_top};
  std::vector<Tick> yt;
  for (const double v : sqnr_values) yt.push_back({ys(v), tick_label(v)});
  yt.push_back({inf_band, "∞"});
  const auto sqnr_y = [&](double v) {
    if (std::isnan(v)) return sqnr_bottom;
    if (std::isinf(v)) return v > 0 ? inf_band : sqnr_bottom;
    return ys(v);
  };

  // Mismatch share axis, in percent.
  const double share_hi = std::max(100.0 * max_share, 1.0);
  std::vector<double> share_values = linear_ticks(0.0, share_hi, 3);
  const Scale yb{0.0, std::max(share_hi, share_values.back()), share_bottom, share_top};
  std::vector<Tick> bt;
  for (const double v : share_values) bt.push_back({yb(v), tick_label(v)});

  std::vector<Tick> xt;
  if (n <= 30) {
    for (int64_t i = 0; i < n; ++i) xt.push_back({x(static_cast<double>(i)), std::to_string(i)});
  } else {
    for (const double v : linear_ticks(0.0, static_cast<double>(n - 1), 12)) {
      xt.push_back({x(v), std::to_string(std::llround(v))});
    }
  }

  std::string out = open_svg(
      c.id, width, height, c.label,
      fmt::format(" data-layers=\"{}\" data-first-divergent=\"{}\"", n, c.first_divergent));
  for (const auto& [y0, y1] : {std::pair{top, sqnr_bottom}, std::pair{share_top, share_bottom}}) {
    out += fmt::format(
        "<rect class=\"plot-bg\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fbfcfd\"/>\n",
        num(left), num(y0), num(width - left - right), num(y1 - y0));
  }
  left_axis(out, left, width - right, sqnr_bottom, top, yt, "SQNR (dB)", true);
  left_axis(out, left, width - right, share_bottom, share_top, bt, "bins differ (%)", true);
  bottom_axis(out, left, width - right, share_bottom, share_top, xt,
              "layer # (execution order of the int8 model)", false);
  out += fmt::format(
      "<line class=\"inf-band\" x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"{3}\" "
      "stroke-dasharray=\"2 3\"/>\n",
      num(left), num(width - right), num((inf_band + finite_top) / 2), kAxisColor);

  if (c.first_divergent >= 0 && c.first_divergent < n) {
    const double fx = x(static_cast<double>(c.first_divergent));
    out += fmt::format(
        "<line class=\"first-divergent\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" "
        "stroke=\"{3}\" "
        "stroke-width=\"1\" stroke-dasharray=\"5 4\"/>\n",
        num(fx), num(top), num(share_bottom), kDivergeColor);
    const std::string text =
        "first divergent layer: " + c.layers[static_cast<size_t>(c.first_divergent)].name;
    const double text_width = 7.0 * static_cast<double>(text.size());
    const bool to_left = fx + 6 + text_width > width - right && fx - 6 - text_width >= left;
    out += fmt::format(
        "<text class=\"annotation\" x=\"{}\" y=\"{}\" text-anchor=\"{}\" fill=\"{}\">{}</text>\n",
        num(to_left ? fx - 6 : std::min(fx + 6, std::max(left, width - right - text_width))),
        num(top - 10), to_left ? "end" : "start", kDivergeColor, escape(text));
  }

  // The SQNR line, broken where a layer's SQNR is not finite.
  std::string d;
  bool pen_down = false;
  for (int64_t i = 0; i < n; ++i) {
    const double v = c.layers[static_cast<size_t>(i)].sqnr_db;
    if (!std::isfinite(v)) {
      pen_down = false;
      continue;
    }
    d += fmt::format("{}{} {}", pen_down ? "L" : "M", num(x(static_cast<double>(i))), num(ys(v)));
    pen_down = true;
  }
  if (!d.empty()) {
    out += fmt::format(
        "<path class=\"sqnr-line\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" "
        "stroke-opacity=\"0.8\" stroke-linejoin=\"round\"/>\n",
        d, kFakeQuantColor);
  }
  const double bar_width = std::max(1.0, std::min(28.0, (x(1) - x(0)) * 0.7));
  const double marker = std::clamp((x(1) - x(0)) * 0.3, 1.8, 4.0);
  for (int64_t i = 0; i < n; ++i) {
    const auto& l = c.layers[static_cast<size_t>(i)];
    const double cx = x(static_cast<double>(i));
    const bool differs = l.mismatch_share > 0;
    const std::string sqnr = std::isfinite(l.sqnr_db) ? fmt::format("{:.3f}", l.sqnr_db)
                             : std::isnan(l.sqnr_db)  ? "nan"
                                                      : (l.sqnr_db > 0 ? "inf" : "-inf");
    out += fmt::format(
        "<g class=\"layer{}\" data-index=\"{}\" data-layer=\"{}\" data-sqnr=\"{}\" "
        "data-share=\"{:.6g}\">",
        differs ? " differs" : "", i, escape(l.name), sqnr, l.mismatch_share);
    out += fmt::format("<title>{}</title>", escape(l.tooltip));
    out += fmt::format(
        "<circle class=\"pt sqnr\" cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\" stroke=\"{}\" "
        "stroke-width=\"1\"/>",
        num(cx), num(sqnr_y(l.sqnr_db)), num(marker),
        std::isinf(l.sqnr_db) ? "#fff" : (differs ? kDivergeColor : kFakeQuantColor),
        differs ? kDivergeColor : kFakeQuantColor);
    if (differs) {
      const double by = std::min(yb(100.0 * l.mismatch_share), share_bottom - 2.0);
      out += fmt::format(
          "<rect class=\"bar share\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
          num(cx - bar_width / 2), num(by), num(bar_width), num(share_bottom - by), kDivergeColor);
    }
    out += "</g>\n";
  }
  out += "</svg>\n";
  return out;
}

}  // namespace qparity::cli::html
