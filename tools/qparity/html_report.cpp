// Placeholder until the HTML reporter lands: a minimal, valid, self-contained page.
#include "html_report.h"

namespace qparity::cli {
namespace {
std::string page(const std::string& title, const RunContext& context) {
  return "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + title +
         "</title></head><body><h1>" + title + "</h1><pre>" + context.command_line +
         "</pre></body></html>\n";
}
}  // namespace

std::string render_seed_html(const SeedResult&, const std::optional<Explanation>&,
                             const RunContext& context) {
  return page("qparity seed", context);
}

std::string render_explain_html(const SeedResult&, const ElementExplanation&,
                                const RunContext& context) {
  return page("qparity explain", context);
}

std::string render_sweep_html(const SweepSpec&, const SweepResult&, const RunContext& context) {
  return page("qparity sweep", context);
}

}  // namespace qparity::cli
