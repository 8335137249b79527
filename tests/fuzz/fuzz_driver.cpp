#include "fuzz_driver.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string_view>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace qparity::fuzz {
namespace {

// splitmix64: a tiny generator whose sequence is the same on every platform and library (the
// standard distributions are not), so run R of seed S is one input everywhere.
class Rng {
 public:
  explicit Rng(uint64_t state) : state_(state) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n) for mutation choices; 0 when n is 0.
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }

 private:
  uint64_t state_;
};

// Bytes that parsers treat specially: ends of ranges, separators, signs, quotes.
constexpr unsigned char kBoundaryBytes[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '0',  '9', '-', '+', '.',
                                            ':',  ',',  '=',  ' ',  '\n', '\'', '(', ')', 'e', 'x'};
// Integers at the edges of the types a binary header holds.
constexpr uint64_t kBoundaryIntegers[] = {0,
                                          1,
                                          0x7f,
                                          0x80,
                                          0xff,
                                          0x7fff,
                                          0x8000,
                                          0xffff,
                                          0x7fffffff,
                                          0x80000000,
                                          0xffffffff,
                                          0x7fffffffffffffffULL,
                                          0x8000000000000000ULL,
                                          0xffffffffffffffffULL};

void flip_bit(std::string& s, Rng& rng) {
  if (s.empty()) return;
  s[rng.below(s.size())] ^= static_cast<char>(1u << rng.below(8));
}

void boundary_byte(std::string& s, Rng& rng) {
  if (s.empty()) return;
  s[rng.below(s.size())] = static_cast<char>(kBoundaryBytes[rng.below(std::size(kBoundaryBytes))]);
}

void boundary_integer(std::string& s, Rng& rng) {
  const size_t width = size_t{1} << rng.below(4);  // 1, 2, 4 or 8 bytes, little-endian
  if (s.size() < width) return;
  const size_t at = rng.below(s.size() - width + 1);
  uint64_t v = kBoundaryIntegers[rng.below(std::size(kBoundaryIntegers))];
  for (size_t i = 0; i < width; ++i, v >>= 8) s[at + i] = static_cast<char>(v & 0xff);
}

void erase_range(std::string& s, Rng& rng) {
  if (s.empty()) return;
  const size_t at = rng.below(s.size());
  s.erase(at, 1 + rng.below(std::min<size_t>(16, s.size() - at)));
}

void insert_random(std::string& s, Rng& rng) {
  std::string bytes(1 + rng.below(8), '\0');
  for (char& c : bytes) c = static_cast<char>(rng.below(256));
  s.insert(rng.below(s.size() + 1), bytes);
}

void insert_token(std::string& s, Rng& rng, const std::vector<std::string>& dictionary) {
  if (dictionary.empty()) return;
  s.insert(rng.below(s.size() + 1), dictionary[rng.below(dictionary.size())]);
}

// A run of digits (a number in a text input) replaced by a dictionary token.
void replace_number(std::string& s, Rng& rng, const std::vector<std::string>& dictionary) {
  if (s.empty() || dictionary.empty()) return;
  const size_t from = s.find_first_of("0123456789", rng.below(s.size()));
  if (from == std::string::npos) return;
  const size_t to = std::min(s.find_first_not_of("0123456789.eE+-", from), s.size());
  s.replace(from, to - from, dictionary[rng.below(dictionary.size())]);
}

void duplicate_range(std::string& s, Rng& rng) {
  if (s.empty()) return;
  const size_t at = rng.below(s.size());
  const std::string part = s.substr(at, 1 + rng.below(std::min<size_t>(64, s.size() - at)));
  s.insert(rng.below(s.size() + 1), part);
}

void truncate(std::string& s, Rng& rng) { s.resize(rng.below(s.size() + 1)); }

// This input's head and another seed's tail.
void splice(std::string& s, Rng& rng, const std::vector<std::string>& seeds) {
  const std::string& other = seeds[rng.below(seeds.size())];
  s = s.substr(0, rng.below(s.size() + 1)) + other.substr(rng.below(other.size() + 1));
}

void random_bytes(std::string& s, Rng& rng) {
  if (s.empty()) return;
  const size_t at = rng.below(s.size());
  const size_t n = 1 + rng.below(std::min<size_t>(32, s.size() - at));
  for (size_t i = 0; i < n; ++i) s[at + i] = static_cast<char>(rng.below(256));
}

// ---------------------------------------------------------------------------------------------
// Crash reports: the signal handler (and ASan's death callback) name the run to replay. Only
// async-signal-safe calls: write(2) of text built without allocation.

struct CrashContext {
  const char* program = "qparity_fuzz";
  const char* target = "";
  uint64_t seed = 0;
  uint64_t run = 0;
};
CrashContext g_crash;

void write_text(const char* s) {
  const ssize_t ignored = write(STDERR_FILENO, s, std::strlen(s));
  (void)ignored;
}

void write_number(uint64_t v) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  char out[24];
  for (size_t i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  out[n] = '\0';
  write_text(out);
}

void report_crash() {
  write_text("\nfuzz: target ");
  write_text(g_crash.target);
  write_text(" crashed at run ");
  write_number(g_crash.run);
  write_text(" of seed ");
  write_number(g_crash.seed);
  write_text("; replay: ");
  write_text(g_crash.program);
  write_text(" ");
  write_text(g_crash.target);
  write_text(" --seed ");
  write_number(g_crash.seed);
  write_text(" --from ");
  write_number(g_crash.run);
  write_text(" --runs 1 --print\n");
}

extern "C" void on_crash_signal(int signal) {
  report_crash();
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

// Installs the crash reports for the driver's lifetime and restores what was there before (the
// driver also runs inside the unit tests).
class CrashReports {
 public:
  CrashReports() {
#if defined(__SANITIZE_ADDRESS__)
    // ASan reports the fault itself; this adds the replay line before it exits.
    __sanitizer_set_death_callback(report_crash);
#else
    for (size_t i = 0; i < std::size(kSignals); ++i)
      previous_[i] = std::signal(kSignals[i], on_crash_signal);
#endif
  }
  ~CrashReports() {
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_set_death_callback(nullptr);
#else
    for (size_t i = 0; i < std::size(kSignals); ++i) std::signal(kSignals[i], previous_[i]);
#endif
  }
  CrashReports(const CrashReports&) = delete;
  CrashReports& operator=(const CrashReports&) = delete;

 private:
  static constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
  void (*previous_[std::size(kSignals)])(int) = {};
};

// ---------------------------------------------------------------------------------------------

struct DriverOptions {
  std::vector<std::string> targets;  // empty = all
  uint64_t runs = 10000;
  uint64_t from = 0;
  uint64_t seed = 1;
  double seconds = 0;  // > 0: stop after this long even if runs remain
  bool print = false;  // print each input (for replaying one run)
  std::string write;   // write each input to this file (the last run's stays)
  std::vector<std::string> corpus, inputs;
};

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool parse_u64(const char* text, uint64_t& value) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-') return false;
  value = v;
  return true;
}

constexpr const char* kUsage =
    "usage: %s [TARGET...] [--runs N] [--seconds S] [--seed S] [--from R] [--print]\n"
    "          [--write FILE] [--corpus FILE]... [--input FILE]...\n"
    "Runs seeded mutations of valid inputs through each TARGET (default: all): runs R..R+N-1 of\n"
    "seed S. --runs 0 with --seconds S runs until S seconds have passed. --write saves each input\n"
    "(the last run's stays; with --from R --runs 1, run R's). --input runs the given\n"
    "files as they are (a saved failure, a libFuzzer crash file). Targets:";

int parse_options(int argc, char** argv, const std::vector<Target>& targets, DriverOptions& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    uint64_t v = 0;
    if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, argv[0]);
      for (const Target& t : targets) std::printf(" %s", t.name.c_str());
      std::printf("\n");
      return 0;
    } else if (arg == "--print") {
      o.print = true;
    } else if ((arg == "--runs" || arg == "--from" || arg == "--seed") && has_value &&
               parse_u64(argv[i + 1], v)) {
      (arg == "--runs" ? o.runs : arg == "--from" ? o.from : o.seed) = v;
      ++i;
    } else if (arg == "--seconds" && has_value && parse_u64(argv[i + 1], v)) {
      o.seconds = static_cast<double>(v);
      ++i;
    } else if (arg == "--write" && has_value) {
      o.write = argv[++i];
    } else if ((arg == "--corpus" || arg == "--input") && has_value) {
      (arg == "--corpus" ? o.corpus : o.inputs).push_back(argv[++i]);
    } else if (!arg.empty() && arg[0] != '-') {
      bool known = false;
      for (const Target& t : targets) known = known || t.name == arg;
      if (!known) {
        std::fprintf(stderr, "%s: unknown target '%s'\n", argv[0], arg.c_str());
        return 2;
      }
      o.targets.push_back(arg);
    } else {
      std::fprintf(stderr, "%s: bad argument '%s' (see --help)\n", argv[0], arg.c_str());
      return 2;
    }
  }
  return -1;
}

// One input through the target; the failure's message, or "" when it passed.
std::string run_one(const Target& target, const std::string& input) {
  try {
    target.run(input);
    return "";
  } catch (const PropertyFailure& e) {
    return e.what();
  } catch (const std::exception& e) {
    return "unexpected exception (" + std::string(e.what()) + ") for input " + escaped(input);
  } catch (...) {
    return "unexpected non-standard exception for input " + escaped(input);
  }
}

// Runs one target; returns its failure count.
uint64_t fuzz_target(const Target& target, const DriverOptions& o) {
  g_crash.target = target.name.c_str();
  g_crash.seed = o.seed;
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  uint64_t runs = 0, failures = 0;
  const auto report = [&](const std::string& what, const std::string& replay) {
    if (what.empty()) return;
    if (++failures <= 10) std::cerr << "fuzz " << target.name << ": " << what << replay << "\n";
  };
  for (const std::string& file : o.inputs) {
    const std::optional<std::string> input = read_file(file);
    if (!input) throw std::invalid_argument("cannot read --input " + file);
    ++runs;
    report(run_one(target, *input), " (--input " + file + ")");
  }
  for (uint64_t r = o.from; o.inputs.empty(); ++r) {
    if (o.runs > 0 && r - o.from >= o.runs) break;
    if (o.seconds > 0 && (r - o.from) % 64 == 0 && elapsed() >= o.seconds) break;
    if (o.runs == 0 && o.seconds <= 0) break;
    g_crash.run = r;
    const std::string input = mutate(target.seeds, target.dictionary, target.max_size, o.seed, r);
    if (o.print) std::cout << "run " << r << ": " << escaped(input, 1 << 20) << std::endl;
    if (!o.write.empty()) std::ofstream(o.write, std::ios::binary) << input;
    ++runs;
    report(run_one(target, input), " (replay: --seed " + std::to_string(o.seed) + " --from " +
                                       std::to_string(r) + " --runs 1 --print)");
  }
  std::cout << "fuzz " << target.name << ": " << runs << " runs, " << failures << " failures, "
            << static_cast<int>(elapsed() * 1000) << " ms (seed " << o.seed << ")\n";
  return failures;
}

}  // namespace

std::string mutate(const std::vector<std::string>& seeds,
                   const std::vector<std::string>& dictionary, size_t max_size, uint64_t seed,
                   uint64_t run) {
  // Each run has its own generator, so any run replays alone.
  Rng rng(seed * 0x100000001B3ULL ^ (run + 1) * 0x9E3779B97F4A7C15ULL);
  std::string s = seeds[rng.below(seeds.size())];
  const size_t count = 1 + rng.below(4);
  for (size_t i = 0; i < count; ++i) {
    switch (rng.below(11)) {
      case 0:
        flip_bit(s, rng);
        break;
      case 1:
        boundary_byte(s, rng);
        break;
      case 2:
        boundary_integer(s, rng);
        break;
      case 3:
        erase_range(s, rng);
        break;
      case 4:
        insert_random(s, rng);
        break;
      case 5:
        insert_token(s, rng, dictionary);
        break;
      case 6:
        replace_number(s, rng, dictionary);
        break;
      case 7:
        duplicate_range(s, rng);
        break;
      case 8:
        truncate(s, rng);
        break;
      case 9:
        splice(s, rng, seeds);
        break;
      default:
        random_bytes(s, rng);
        break;
    }
  }
  if (s.size() > max_size) s.resize(max_size);
  return s;
}

std::string escaped(const std::string& input, size_t max_shown) {
  std::string out = "\"";
  for (size_t i = 0; i < input.size() && i < max_shown; ++i) {
    const auto c = static_cast<unsigned char>(input[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  out += "\"";
  if (input.size() > max_shown) out += " (" + std::to_string(input.size()) + " bytes)";
  return out;
}

void fail(const std::string& what, const std::string& input) {
  throw PropertyFailure(what + " for input " + escaped(input));
}

int run_driver(int argc, char** argv, std::vector<Target> targets) {
  DriverOptions o;
  const int parsed = parse_options(argc, argv, targets, o);
  if (parsed >= 0) return parsed;
  g_crash.program = argv[0];
  const CrashReports crash_reports;
  for (const std::string& file : o.corpus) {
    const std::optional<std::string> bytes = read_file(file);
    if (!bytes) {
      std::fprintf(stderr, "%s: cannot read --corpus %s\n", argv[0], file.c_str());
      return 2;
    }
    for (Target& t : targets) t.seeds.push_back(*bytes);
  }
  uint64_t failures = 0;
  for (const Target& t : targets) {
    bool chosen = o.targets.empty();
    for (const std::string& name : o.targets) chosen = chosen || name == t.name;
    if (!chosen) continue;
    if (t.seeds.empty()) {
      std::fprintf(stderr, "%s: target %s has no seed input (give --corpus FILE)\n", argv[0],
                   t.name.c_str());
      return 2;
    }
    failures += fuzz_target(t, o);
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace qparity::fuzz
