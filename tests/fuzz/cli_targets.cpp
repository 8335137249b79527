// Fuzz targets for every input parser of the qparity CLI and library that does not need libtorch:
// option values (numbers, integers, ranges, lists, index lists, budgets) through CLI11 exactly as
// the commands bind them, and .npy files. Each target states the properties it checks beyond
// "no crash, no unexpected exception".
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "budgets.h"
#include "command_line.h"
#include "explain_command.h"
#include "fuzz_driver.h"
#include "memory_check.h"
#include "option_checks.h"
#include "qparity/io/npy.h"
#include "seed_command.h"
#include "sweep_command.h"

namespace qparity::fuzz {
namespace {

// Boundary numbers and the syntax CLI11 and the validators treat specially.
const std::vector<std::string> kNumberTokens = {"0",
                                                "-0",
                                                "1",
                                                "-1",
                                                "0.5",
                                                "1e-45",
                                                "1e39",
                                                "-1e39",
                                                "1e308",
                                                "1e309",
                                                "nan",
                                                "NaN",
                                                "inf",
                                                "-inf",
                                                "infinity",
                                                "0x10",
                                                "010",
                                                "0b1",
                                                "9223372036854775807",
                                                "9223372036854775808",
                                                "-9223372036854775808",
                                                "99999999999999999999",
                                                "4294967296",
                                                "255",
                                                "256",
                                                "-128",
                                                "127",
                                                "1024",
                                                "1025",
                                                "3.4028235e38",
                                                "1.17549435e-38",
                                                " ",
                                                "\n",
                                                ",",
                                                ":",
                                                "=",
                                                "--",
                                                "-",
                                                "+",
                                                "e",
                                                ".",
                                                "\xe9",
                                                "''",
                                                "\"",
                                                "{}",
                                                "true",
                                                "ON"};

// Every message a user sees is one line naming what is wrong: never empty, never two lines.
void check_message(const std::string& message, const std::string& input) {
  if (message.empty()) fail("empty error message", input);
  if (message.find('\n') != std::string::npos)
    fail("two-line error message '" + message + "'", input);
}

// ----- numbers: each validator on one value ------------------------------------------------------

void check_number_validators(const std::string& input) {
  using cli::finite_number, cli::positive_number, cli::decimal_integer, cli::at_least,
      cli::in_range;
  std::string text = input;
  const std::string finite = finite_number()(text);
  double value = 0;
  if (finite.empty() && (!CLI::detail::lexical_cast(input, value) || !std::isfinite(value))) {
    fail("finite_number accepted a value CLI11 does not read as a finite number", input);
  }
  if (!finite.empty()) check_message(finite, input);
  text = input;
  if (const std::string m = positive_number()(text); !m.empty()) check_message(m, input);
  text = input;
  const std::string integer = decimal_integer()(text);
  int64_t parsed = 0;
  if (integer.empty() && !CLI::detail::lexical_cast(text, parsed)) {
    fail("decimal_integer passed on '" + text + "', which CLI11 cannot read as int64", input);
  }
  if (!integer.empty()) {
    check_message(integer, input);
    return;
  }
  // The transformed text is what the option's value becomes: checked once more.
  for (const std::string& m : {at_least(1)(text), in_range(-128, 126)(text)}) {
    if (!m.empty()) check_message(m, input);
  }
  if (in_range(1, 1024)(text).empty() && (parsed < 1 || parsed > 1024)) {
    fail("in_range(1, 1024) accepted " + std::to_string(parsed), input);
  }
}

// ----- options: a whole command line of seed / explain / sweep, up to the checks before any run --

// The input's lines are the arguments; its first line picks the command.
std::vector<std::string> arguments_of(const std::string& input) {
  std::vector<std::string> args;
  size_t from = 0;
  while (from <= input.size() && args.size() < 64) {
    const size_t end = std::min(input.find('\n', from), input.size());
    args.push_back(input.substr(from, end - from));
    from = end + 1;
  }
  return args;
}

// CLI11 parses a vector of arguments back to front.
void parse(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());
  app.parse(args);
}

void check_seed_line(const std::vector<std::string>& args) {
  CLI::App app;
  cli::SeedCommandOptions o;
  cli::add_seed_options(app, o);
  parse(app, args);
  cli::parse_seed_options(o);
  cli::parse_budgets(o.fail_on);
}

void check_explain_line(const std::vector<std::string>& args) {
  CLI::App app;
  cli::ExplainCommandOptions o;
  cli::add_explain_options(app, o);
  parse(app, args);
  const SeedOptions seed = cli::parse_seed_options(o.seed);
  if (!o.index.empty()) cli::check_index(o.index, {1, kSeedChannels, seed.rows, kSeedWidth});
}

void check_sweep_line(const std::vector<std::string>& args) {
  CLI::App app;
  cli::SweepCommandOptions o;
  cli::add_sweep_options(app, o);
  parse(app, args);
  cli::parse_sweep_options(o);
  cli::parse_budgets(o.fail_on);
}

void check_command_line(const std::string& input) {
  std::vector<std::string> args = arguments_of(input);
  const std::string command = args.front();
  args.erase(args.begin());
  try {
    if (command == "sweep") {
      check_sweep_line(args);
    } else if (command == "explain") {
      check_explain_line(args);
    } else {
      check_seed_line(args);
    }
  } catch (const CLI::ParseError& e) {
    // main prints these through one_line_message; CLI11's own text may hold newlines.
    check_message(cli::one_line_message(e.what()), input);
  } catch (const std::invalid_argument& e) {
    check_message(e.what(), input);
  }
}

const std::vector<std::string> kCommandLines = {
    "seed\n--k\n0.01\n--backend\nqnnpack\n--rows\n16",
    "seed\n--weight-quant-min\n-127\n--weight-observer-max\n2.5\n--output-observer-min\n-1",
    "seed\n--input-scale\n0.004\n--weight-scale\n0.01\n--output-scale\n0.02\n--observer\nplain",
    "seed\n--fail-on\nmax-dq=0,bin-mismatch=0\n--fail-on=fp32-error-max=1e-6\n--json\nx.json",
    "seed\n--weight-qscheme\nper_channel_affine\n--weight-pattern\nmixed\n--reduce-range",
    "explain\n--index\n0,1,2,3\n--rows\n8",
    "explain\n--index=0,0,0,255\n--k\n1e-3",
    "sweep\n--k\n0.001:1000:61\n--log\n--backend\nqnnpack,onednn\n--threads\n2",
    "sweep\n--k=1:2:32\n--rows\n500000\n--threads\n32\n--observer\nfused,plain",
    "sweep\n--k\n0.5:4:8\n--weight-pattern\nidentity,dense\n--reduce-range\noff,on\n--fail-on\nmax-"
    "dq=1",
};

const std::vector<std::string> kOptionTokens = {"--k",
                                                "--rows",
                                                "--threads",
                                                "--index",
                                                "--fail-on",
                                                "--backend",
                                                "--log",
                                                "--refine",
                                                "--weight-quant-min",
                                                "--weight-observer-max",
                                                "--output-observer-min",
                                                "--input-scale",
                                                "max-dq=",
                                                "bin-mismatch=",
                                                "error-mean=",
                                                "=",
                                                ",",
                                                ":",
                                                "\n",
                                                "--",
                                                "-k",
                                                "seed",
                                                "sweep",
                                                "0:0:0",
                                                "1:1:1",
                                                "1e-300:1e300:100000",
                                                "0,0,0,0",
                                                "-1,0,0,0",
                                                "1,2,3,4,5"};

// ----- budgets: --fail-on items
// -------------------------------------------------------------------

void check_budgets(const std::string& input) {
  std::vector<std::string> items;
  size_t from = 0;
  while (from <= input.size()) {
    const size_t end = std::min(input.find(',', from), input.size());
    items.push_back(input.substr(from, end - from));
    from = end + 1;
  }
  bool all_valid = true;
  for (std::string item : items) {
    const std::string m = cli::budget_item()(item);
    if (!m.empty()) check_message(m, input);
    all_valid = all_valid && m.empty();
  }
  try {
    const std::vector<cli::Budget> budgets = cli::parse_budgets(items);
    if (!all_valid) fail("parse_budgets took items the validator refused", input);
    for (const cli::Budget& b : budgets) {
      if (!std::isfinite(b.limit) || b.limit < 0)
        fail("a budget with limit " + std::to_string(b.limit), input);
    }
  } catch (const std::invalid_argument& e) {
    if (all_valid) fail("parse_budgets refused items the validator took", input);
    check_message(e.what(), input);
  }
}

// ----- memory: /proc/meminfo and /proc/self/cgroup texts
// ------------------------------------------

void check_memory_texts(const std::string& input) {
  if (const auto available = cli::parse_meminfo_available(input); available && *available < 0) {
    fail("a negative MemAvailable", input);
  }
  const cli::CgroupPaths paths = cli::parse_proc_cgroup(input);
  for (const auto& p : {paths.v2, paths.v1_memory}) {
    if (p && (p->empty() || p->front() != '/'))
      fail("a cgroup path '" + *p + "' not starting at /", input);
  }
}

// ----- npy: numpy.save files
// ----------------------------------------------------------------------

std::string npy(const std::string& dict, const std::string& data, char version = 1) {
  std::string header = dict;
  const size_t prefix = version == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + version + '\0';
  const size_t n = header.size();
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  if (version != 1) out += std::string(2, '\0');
  return out + header + data;
}

void check_npy(const std::string& input) {
  try {
    const io::NpyArray a = io::parse_npy(input);
    size_t count = 1;
    for (int64_t d : a.dims) {
      if (d < 0) fail("a negative dimension", input);
      count *= static_cast<size_t>(d);
    }
    if (count != a.values.size()) fail("the values do not fill the shape", input);
    if (a.values.size() * sizeof(float) > input.size()) fail("more values than bytes", input);
  } catch (const std::invalid_argument& e) {
    check_message(e.what(), input);
  }
}

std::vector<Target> targets() {
  const std::string floats(24, '\x3f');
  return {
      {"numbers",
       {"1", "0.01", "-128", "1e-3", "256", "007", "+5", "1024"},
       kNumberTokens,
       check_number_validators,
       64},
      {"options", kCommandLines, kOptionTokens, check_command_line, 512},
      {"budgets",
       {"max-dq=0", "bin-mismatch=3,fp32-error-max=1e-6", "error-mean=0.5,fp32-mismatch=0"},
       kNumberTokens,
       check_budgets,
       256},
      {"memory",
       {"MemTotal:       24000000 kB\nMemFree:  1000 kB\nMemAvailable:   23000000 kB\n",
        "0::/user.slice/qp\n", "4:memory:/process_api/abc\n0::/\n", "12:cpu,memory:/a:b/c\n"},
       kNumberTokens,
       check_memory_texts,
       512},
      {"npy",
       {npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", floats),
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", floats),
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", floats.substr(0, 4)),
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", floats, 2)},
       {"'descr'", "'shape'", "'fortran_order'", "(", ")", ",", "'<f4'", "'>f4'", "True", "False",
        "9223372036854775807", "4611686018427387904", "0", "L"},
       check_npy,
       1024},
  };
}

}  // namespace
}  // namespace qparity::fuzz

int main(int argc, char** argv) {
  return qparity::fuzz::run_driver(argc, argv, qparity::fuzz::targets());
}
