// `qparity model --html`: one self-contained page (the page kit of tools/qparity/html_page.h,
// plots from html_svg.h): the verdict, SQNR and the share of differing bins along the depth of
// the network next to the per-layer table, each layer's grids, first mismatches, the final
// outputs, the reference check, budgets and the command line.
#pragma once

#include <string>

#include "model_report.h"

namespace qparity::cli {

std::string render_model_html(const ModelReport& report);

}  // namespace qparity::cli
