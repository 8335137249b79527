// Inputs the fuzz targets (tests/fuzz/) found, kept as regression tests: each broke a parser's
// promise of a one-line error naming what is wrong.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "budgets.h"
#include "qparity/io/npy.h"

namespace qparity {
namespace {

// A .npy file (format 1.0) with `dict` as its header and no data.
std::string npy_with_header(const std::string& dict) {
  std::string header = dict + "\n";
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header;
}

std::string npy_error(const std::string& bytes) {
  try {
    io::parse_npy(bytes);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// fuzz npy, seed 1 run 2574: a newline inside the dtype made a two-line message.
TEST(NpyErrors, HeaderBytesAreEscapedOnOneLine) {
  const std::string m =
      npy_error(npy_with_header("{'descr': '<f\n\xff"
                                "4', 'fortran_order': False, 'shape': (), }"));
  EXPECT_EQ(m, "the .npy dtype is '<f\\x0a\\xff4'; qparity needs float32 ('<f4')");
  EXPECT_EQ(npy_error(npy_with_header("{'descr': '<f4', 'fortran_order': Fa\nlse, 'shape': (), }")),
            "the .npy header is malformed (fortran_order Fa\\x0alse)");
  EXPECT_EQ(
      npy_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,\x01), }")),
      "the .npy shape (1,\\x01) is invalid");
}

std::string budget_error(const std::string& item) {
  std::string text = item;
  return cli::budget_item()(text);
}

// fuzz budgets, seed 1 run 657: "max\n" was quoted raw, a two-line message.
TEST(BudgetErrors, ValuesAreShellQuotedOnOneLine) {
  EXPECT_EQ(budget_error("max\n"),
            "$'max\\n' must be NAME=LIMIT (max-dq, bin-mismatch, fp32-mismatch, fp32-error-max, "
            "error-mean)");
  EXPECT_EQ(budget_error("max-dq=1\n"), "max-dq needs a limit >= 0, got $'1\\n'");
  EXPECT_EQ(budget_error("max-dq=0.5"), "max-dq counts, its limit must be an integer, got '0.5'");
  EXPECT_EQ(budget_error("bogus=1"),
            "unknown budget 'bogus' (max-dq, bin-mismatch, fp32-mismatch, fp32-error-max, "
            "error-mean)");
  EXPECT_THROW(cli::parse_budgets({"max-dq=1\n"}), std::invalid_argument);
}

}  // namespace
}  // namespace qparity
