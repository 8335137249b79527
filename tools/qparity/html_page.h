// The page kit every HTML report shares (seed, explain, sweep, model): one self-contained
// document with inline CSS, a header with the verdict, sections, headline cards and tables. Text
// is escaped here; plots come from html_svg.h. Nothing is fetched: a Content-Security-Policy
// forbids every request.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace qparity::cli::html {

enum class Status { kAgree, kWarn, kDiverge };

// "agree", "warn", "diverge": the body's data-status and the badge's class.
const char* status_class(Status s);

struct Header {
  std::string command;  // "seed", "explain", "sweep", "model"
  std::string title;    // plain text
  Status status = Status::kAgree;
  std::string status_word;  // AGREE / DIVERGE / ...
  std::string headline;     // plain text
  std::vector<std::string> facts;
  std::vector<std::pair<std::string, std::string>> nav;  // section id, label
};

// The whole document around `body` (pre-rendered sections).
std::string page(const Header& h, const std::string& body);

// <section id=...><h2>title</h2>inner</section>
std::string section(const std::string& id, const std::string& title, const std::string& inner);

struct Card {
  std::string key, label, value, sub;
  std::string tone;  // "", "bad", "good" (and "wide", "text" to size it)
};
std::string cards(const std::string& id, const std::vector<Card>& items);

// A table: id, header cells (a leading '#' marks a numeric column), and pre-rendered rows.
// `cls` adds classes to the table; `widths` (percentages, one per column) fixes the columns;
// `wrap_cls` adds classes to its (horizontally scrolling) wrapper, e.g. "scroll-y".
std::string table(const std::string& id, const std::vector<std::string>& headers,
                  const std::string& rows, const std::string& cls = {},
                  const std::vector<int>& widths = {}, const std::string& wrap_cls = {});

// A cell with escaped text, or with ready HTML.
std::string td(const std::string& text, const std::string& cls = {});
std::string td_html(const std::string& inner, const std::string& cls = {});

// A command as code that wraps only between words (an option never breaks at its hyphens).
std::string command_html(const std::string& command);

}  // namespace qparity::cli::html
