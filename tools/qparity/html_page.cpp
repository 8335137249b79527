// The page kit of the HTML reports (see html_page.h).
#include "html_page.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "html_svg.h"
#include "qparity/version.h"

namespace qparity::cli::html {
namespace {

const char* const kCss = R"css(
:root{--fg:#1c2230;--muted:#5d6677;--bg:#f4f6f9;--card:#fff;--line:#dfe3ea;--head:#eef1f5;
--fq:#1f6fb4;--int8:#f28e1c;--bad:#c62828;--good:#2e7d32;--warn:#a86400;--accent:#3451b2}
*{box-sizing:border-box}
html{font-size:15px;-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);line-height:1.5;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans","Liberation Sans",Arial,
sans-serif}
.wrap{max-width:1200px;margin:0 auto;padding:0 22px}
header.top{background:var(--card);border-bottom:1px solid var(--line);padding:16px 0 10px}
header.top .row{display:flex;flex-wrap:wrap;align-items:center;gap:10px 16px}
header.top h1{font-size:1.35rem;margin:0;font-weight:700;letter-spacing:-.01em}
header.top h1 .cmd{color:var(--muted);font-weight:500}
.status{display:inline-block;padding:3px 14px;border-radius:999px;font-weight:800;color:#fff;
font-size:.9rem;letter-spacing:.06em}
.status.agree{background:var(--good)}.status.diverge{background:var(--bad)}
.status.warn{background:var(--warn)}
.headline{margin:8px 0 4px;font-size:1.05rem;font-weight:600}
.headline.diverge{color:var(--bad)}.headline.agree{color:var(--good)}
.headline.warn{color:var(--warn)}
.facts{display:flex;flex-wrap:wrap;gap:4px 8px;margin:4px 0 8px;padding:0;list-style:none;
font-size:.85rem}
.facts li{background:var(--head);border-radius:5px;padding:1px 8px;color:#333}
nav.toc{display:flex;flex-wrap:wrap;gap:2px 14px;font-size:.85rem}
nav.toc a{color:var(--accent);text-decoration:none}nav.toc a:hover{text-decoration:underline}
main{padding:6px 0 30px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;
margin:16px 0;overflow:hidden}
section>h2{font-size:1.12rem;margin:0 0 8px}
h3{font-size:1rem;margin:14px 0 6px}
p{margin:6px 0}
.note{color:var(--muted);font-size:.88rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:10px;
margin:4px 0 8px}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 12px;background:#fcfdfe}
.card .v{font-size:1.3rem;font-weight:700;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.card .l{color:var(--muted);font-size:.78rem;text-transform:uppercase;letter-spacing:.04em}
.card .s{font-size:.82rem;color:#333}
.card.bad .v{color:var(--bad)}.card.good .v{color:var(--good)}
.card.wide{grid-column:span 2}
.card.text .v{font-size:1.02rem;line-height:1.3;padding-top:3px}
.plots{display:grid;grid-template-columns:minmax(0,1.9fr) minmax(0,1fr);gap:18px;align-items:start}
@media (max-width:900px){.plots{grid-template-columns:minmax(0,1fr)}}
figure{margin:0}
figcaption{font-size:.85rem;color:var(--muted);margin-top:4px}
svg.chart{width:100%;height:auto;display:block;background:#fff}
svg.chart text{font-family:inherit}
svg.chart text:not([fill]){fill:#39414f}
svg.chart text.tick{font-size:11.5px}
svg.chart text.axis-title{font-size:12.5px;fill:#4b5363}
svg.chart text.annotation{font-size:12.5px;font-weight:600}
svg.chart text.bar-label{font-size:11.5px}
svg.chart text.strip-label{font-size:12.5px;font-weight:600}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 18px;padding:0;margin:8px 0 2px;
font-size:.85rem}
.legend li{display:flex;align-items:center;gap:6px}
.sw{display:inline-block;width:22px;height:10px;border-radius:2px}
.sw.line{height:4px}
.swatch-svg{display:inline-block;vertical-align:middle}
.table-wrap{overflow-x:auto;margin:6px 0}
table{border-collapse:collapse;width:100%;font-size:.87rem}
caption{text-align:left;font-weight:600;padding:4px 0}
table.compact{width:auto;min-width:min(100%,420px)}
table.grouped tbody tr:nth-child(even) td{background:#fff}
td.nowrap{white-space:nowrap}
figure.narrow{max-width:860px}
.side{display:grid;grid-template-columns:minmax(0,2.2fr) minmax(0,1fr);gap:18px;align-items:center}
@media (max-width:900px){.side{grid-template-columns:minmax(0,1fr)}}
.scroll-y{max-height:640px;overflow-y:auto;border:1px solid var(--line);border-radius:6px}
.scroll-y.short{max-height:330px}
code.cmd{white-space:normal;overflow-wrap:normal;word-break:normal;display:inline-block}
code.cmd span{white-space:nowrap}
.why{color:var(--muted);font-size:.84rem;margin-top:2px}
details>summary{cursor:pointer;color:var(--accent);font-weight:600;margin:6px 0}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--head);font-weight:650;white-space:nowrap;position:sticky;top:0}
tbody tr:nth-child(even) td{background:#fafbfc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.mono,.mono{font-family:"DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace;
font-size:.82rem}
td.diff{background:#fff1e0 !important;font-weight:600}
td.point{font-weight:700;background:#f6f8fb !important}
tr.first-diff td{background:#fde4e4 !important;font-weight:650}
tr.differs td{background:#fff6ea !important}
tr.point-start td{border-top:2px solid #c9d0da}
.mark{color:var(--bad);font-weight:700;white-space:nowrap}
code,pre{font-family:"DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace;font-size:.84rem}
code{background:#f1f3f6;padding:1px 5px;border-radius:4px;overflow-wrap:anywhere}
pre{background:#f1f3f6;padding:10px 12px;border-radius:6px;white-space:pre-wrap;
overflow-wrap:anywhere;margin:6px 0}
.badge{display:inline-block;font-size:.72rem;font-weight:800;padding:1px 8px;border-radius:4px;
letter-spacing:.04em;white-space:nowrap;vertical-align:1px}
.badge.fix{background:#e2f3e4;color:#1b5e20;border:1px solid #9ccc9f}
.badge.notfix{background:#fdeaea;color:#b71c1c;border:1px solid #ef9a9a}
.badge.emulated{background:#fff3cd;color:#7a4f00;border:1px solid #e2c15b}
.badge.verified{background:#e2f3e4;color:#1b5e20;border:1px solid #9ccc9f}
.badge.cls{background:#eef1fb;color:#2f3f8f;border:1px solid #c3cbef}
.badge.exceeded{background:#fdeaea;color:#b71c1c;border:1px solid #ef9a9a}
.badge.held{background:#e2f3e4;color:#1b5e20;border:1px solid #9ccc9f}
.finding{border:1px solid var(--line);border-left:5px solid var(--bad);border-radius:8px;
padding:8px 14px;margin:10px 0;background:#fffdfd}
.finding h3{margin:2px 0 4px}
.finding ul{margin:4px 0 2px;padding-left:20px}
.finding li{margin:2px 0;overflow-wrap:anywhere}
.warning{color:var(--bad);font-weight:700}
.ok{color:var(--good);font-weight:600}
.chip{display:inline-block;padding:0 7px;border-radius:4px;color:#fff;font-size:.8rem;
font-weight:600;
white-space:nowrap;text-shadow:0 0 2px rgba(0,0,0,.35)}
footer{color:var(--muted);font-size:.8rem;padding:6px 0 26px}
.own-bar{display:inline-block;height:8px;background:#d32f2f;border-radius:2px 0 0 2px}
.inherited-bar{display:inline-block;height:8px;background:#f0a030;border-radius:0 2px 2px 0;margin-right:6px}
tr.creates td{background:#fde4e4 !important}
tr.inherits td{background:#fff6ea !important}
.share-bar{display:inline-block;height:8px;background:#d32f2f;border-radius:2px;margin-right:6px;
vertical-align:middle}
@media print{body{background:#fff}section{break-inside:avoid;border:none}}
)css";

}  // namespace

const char* status_class(Status s) {
  switch (s) {
    case Status::kAgree:
      return "agree";
    case Status::kWarn:
      return "warn";
    case Status::kDiverge:
      return "diverge";
  }
  return "warn";
}

std::string page(const Header& h, const std::string& body) {
  std::string out;
  out.reserve(body.size() + 12000);
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  // Nothing may be fetched: no script, font, image or style from anywhere.
  out +=
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += fmt::format("<meta name=\"generator\" content=\"qparity {}\">\n", escape(version()));
  out += fmt::format("<title>{} — {}</title>\n", escape(h.status_word), escape(h.title));
  out += "<style>" + std::string(kCss) + "</style>\n</head>\n";
  out += fmt::format("<body data-report=\"{}\" data-status=\"{}\">\n", escape(h.command),
                     status_class(h.status));
  out += "<header class=\"top\"><div class=\"wrap\">\n<div class=\"row\">";
  out += fmt::format("<h1>qparity <span class=\"cmd\">{}</span></h1>", escape(h.command));
  out += fmt::format("<span id=\"status\" class=\"status {}\">{}</span>", status_class(h.status),
                     escape(h.status_word));
  out += "</div>\n";
  out += fmt::format("<p id=\"result\" class=\"headline {}\">{}</p>\n", status_class(h.status),
                     escape(h.headline));
  out += "<ul class=\"facts\">";
  for (const std::string& f : h.facts) out += "<li>" + escape(f) + "</li>";
  out += "</ul>\n<nav class=\"toc\">";
  for (const auto& [id, label] : h.nav) {
    out += fmt::format("<a href=\"#{}\">{}</a>", escape(id), escape(label));
  }
  out += "</nav>\n</div></header>\n<main class=\"wrap\">\n";
  out += body;
  out += "</main>\n<footer class=\"wrap\">";
  out += fmt::format(
      "Written by qparity {}. A self-contained page: inline CSS, plots drawn as inline SVG by "
      "qparity itself, no script, nothing fetched. The command line under “Reproduce” "
      "re-creates it.",
      escape(version()));
  out += "</footer>\n</body>\n</html>\n";
  return out;
}

std::string section(const std::string& id, const std::string& title, const std::string& inner) {
  return fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n{}</section>\n", escape(id), escape(title),
                     inner);
}

std::string cards(const std::string& id, const std::vector<Card>& items) {
  std::string out = fmt::format("<div id=\"{}\" class=\"cards\">\n", escape(id));
  for (const Card& c : items) {
    out += fmt::format(
        "<div class=\"card{}\" data-key=\"{}\"><div class=\"l\">{}</div>"
        "<div class=\"v\">{}</div>{}</div>\n",
        c.tone.empty() ? "" : " " + c.tone, escape(c.key), escape(c.label), escape(c.value),
        c.sub.empty() ? "" : "<div class=\"s\">" + escape(c.sub) + "</div>");
  }
  return out + "</div>\n";
}

std::string table(const std::string& id, const std::vector<std::string>& headers,
                  const std::string& rows, const std::string& cls, const std::vector<int>& widths,
                  const std::string& wrap_cls) {
  std::string out = fmt::format("<div class=\"table-wrap{}\"><table id=\"{}\"{}>",
                                wrap_cls.empty() ? "" : " " + wrap_cls, escape(id),
                                cls.empty() ? "" : " class=\"" + cls + "\"");
  if (!widths.empty()) {
    out += "<colgroup>";
    for (const int w : widths) out += fmt::format("<col style=\"width:{}%\">", w);
    out += "</colgroup>";
  }
  out += "<thead><tr>";
  for (const std::string& h : headers) {
    if (!h.empty() && h[0] == '#') {
      out += "<th class=\"num\">" + escape(h.substr(1)) + "</th>";
    } else {
      out += "<th>" + escape(h) + "</th>";
    }
  }
  out += "</tr></thead>\n<tbody>\n" + rows + "</tbody></table></div>\n";
  return out;
}

std::string td(const std::string& text, const std::string& cls) {
  return (cls.empty() ? "<td>" : "<td class=\"" + cls + "\">") + escape(text) + "</td>";
}
std::string td_html(const std::string& inner, const std::string& cls) {
  return (cls.empty() ? "<td>" : "<td class=\"" + cls + "\">") + inner + "</td>";
}

std::string command_html(const std::string& command) {
  std::string out = "<code class=\"cmd\">";
  size_t start = 0;
  while (start <= command.size()) {
    const size_t space = command.find(' ', start);
    const std::string word =
        command.substr(start, space == std::string::npos ? std::string::npos : space - start);
    out += "<span>" + escape(word) + "</span>";
    if (space == std::string::npos) break;
    out += ' ';
    start = space + 1;
  }
  return out + "</code>";
}

}  // namespace qparity::cli::html
