// Inline SVG charts for the HTML reports, generated as text: deterministic (the same result
// gives the same bytes), no script, nothing fetched. Every chart is an <svg> with a viewBox,
// so it scales to the page width; every mark carries data-* attributes and a <title> tooltip.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qparity::cli::html {

// Text for HTML element content and attribute values: & < > " ' escaped.
std::string escape(std::string_view text);

// A coordinate for SVG: two decimals, locale-independent.
std::string coord(double v);

// Maps a data interval onto a pixel interval, linearly or in log10 (domain > 0).
struct Scale {
  double d0 = 0.0, d1 = 1.0;  // data domain
  double r0 = 0.0, r1 = 1.0;  // pixel range
  bool log = false;
  double operator()(double v) const;
};

// "Nice" ticks (1, 2, 5 x 10^n) covering [lo, hi], about `target` of them.
std::vector<double> linear_ticks(double lo, double hi, int target);
// Powers of ten within [lo, hi], with 2 and 5 multiples when the span is under two decades.
std::vector<double> log_ticks(double lo, double hi);
// Short label for a tick value: 0.001, 0.5, 10, 1e+04 ...
std::string tick_label(double v);

// The staircase of one output row: output bin against column (input bin) for both paths.
struct StaircaseChart {
  std::string id;                     // svg id
  std::string label;                  // aria-label
  std::vector<int> fake_quant, int8;  // the whole row (index = column w)
  int64_t w_first = 0, w_last = 255;  // the columns shown
  int64_t first_mismatch = -1;        // column of the first mismatch in this row, or -1
  int64_t highlight = -1;             // a column to mark (explain's element), or -1
  bool zoom = false;                  // inset: one grid line per bin, a marker per point
  // Main chart only: the column window the zoom inset shows, drawn as a box (-1: none).
  int64_t zoom_first = -1, zoom_last = -1;
};
std::string staircase_svg(const StaircaseChart& chart);

// Bars at integer x (a histogram of Δq), linear or log counts.
struct BarChart {
  std::string id, label, x_title, y_title;
  struct Bar {
    int64_t x = 0;
    int64_t count = 0;
    std::string css_class;  // "bar-agree" / "bar-diverge"
  };
  std::vector<Bar> bars;  // sorted by x
  bool log_y = false;
};
std::string bar_chart_svg(const BarChart& chart);

// Outcome against k: one strip per series, one cell per point coloured by its outcome.
struct StripChart {
  std::string id, label;
  bool log_x = false;
  struct Cell {
    double k = 0.0;
    size_t outcome = 0;  // index into colors / outcomes
    std::string tooltip;
  };
  struct Row {
    std::string label;
    std::vector<Cell> cells;  // k ascending
    struct Mark {
      double k_low = 0.0, k_high = 0.0;
      std::string tooltip;
    };
    std::vector<Mark> boundaries;
  };
  std::vector<Row> rows;
  std::vector<std::string> outcomes;  // names, for data attributes
  std::vector<std::string> colors;    // one per outcome
};
std::string strip_chart_svg(const StripChart& chart);

// Lines with markers: y (a count) against k, one line per series.
struct LineChart {
  std::string id, label, y_title;
  bool log_x = false;
  struct Point {
    double x = 0.0, y = 0.0;
    std::string tooltip;
  };
  struct Series {
    std::string label, color, dash;
    int marker = 0;           // 0 circle, 1 square, 2 triangle, 3 diamond; -1 none (a line only)
    double line_width = 1.8;  // earlier series drawn wider, so coinciding lines stay visible
    double marker_size = 3.6;
    std::vector<Point> points;
  };
  std::vector<Series> series;
};
std::string line_chart_svg(const LineChart& chart);
// Whether line_chart_svg draws this chart's y axis in log10 (values spread over > 2 decades).
bool line_chart_uses_log_y(const LineChart& chart);

// Along the depth of a network, one column per layer in execution order: above, each layer's
// SQNR in dB as a line with markers (layers whose two paths are equal, SQNR +inf, sit on a band
// at the top marked ∞); below, bars of the share of its bins that differ. The first divergent
// layer is marked across both panels.
struct DepthChart {
  std::string id, label;
  struct Layer {
    std::string name;
    double sqnr_db = 0.0;         // +inf when the values are equal
    double mismatch_share = 0.0;  // bins that differ / elements, 0..1
    std::string tooltip;
  };
  std::vector<Layer> layers;
  int64_t first_divergent = -1;  // index into layers, or -1
};
std::string depth_chart_svg(const DepthChart& chart);

// A marker shape (as in LineChart) for legends: a small inline SVG.
std::string marker_swatch(int marker, const std::string& color, const std::string& dash);

}  // namespace qparity::cli::html
