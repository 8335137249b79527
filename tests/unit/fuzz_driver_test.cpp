// The fuzz driver itself: its inputs replay by run number, its mutations reach far from the seed,
// and a failing property is reported (a driver that cannot fail proves nothing).
#include "fuzz_driver.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace qparity::fuzz {
namespace {

const std::vector<std::string> kSeeds = {"--k 0.5:4:8", "max-dq=0,bin-mismatch=3"};
const std::vector<std::string> kTokens = {"nan", "1e39", ","};

TEST(FuzzDriver, RunReplaysAlone) {
  for (uint64_t run : {0u, 7u, 12345u}) {
    EXPECT_EQ(mutate(kSeeds, kTokens, 64, 3, run), mutate(kSeeds, kTokens, 64, 3, run));
  }
  EXPECT_NE(mutate(kSeeds, kTokens, 64, 3, 1), mutate(kSeeds, kTokens, 64, 4, 1));
}

TEST(FuzzDriver, MutationsAreVariedAndBounded) {
  std::set<std::string> distinct;
  bool has_token = false, has_high_byte = false, shorter = false, longer = false;
  for (uint64_t run = 0; run < 2000; ++run) {
    const std::string s = mutate(kSeeds, kTokens, 16, 1, run);
    ASSERT_LE(s.size(), 16u);
    distinct.insert(s);
    has_token = has_token || s.find("1e39") != std::string::npos;
    for (char c : s) has_high_byte = has_high_byte || static_cast<unsigned char>(c) >= 0x80;
    shorter = shorter || s.size() < kSeeds[0].size();
    longer = longer || s.size() == 16;
  }
  EXPECT_GT(distinct.size(), 1500u);
  EXPECT_TRUE(has_token && has_high_byte && shorter && longer);
}

TEST(FuzzDriver, FailuresAreCountedInTheExitCode) {
  const auto driver = [](std::function<void(const std::string&)> run) {
    std::vector<Target> targets = {{"t", {"abc"}, {}, std::move(run), 8}};
    const char* argv[] = {"fuzz", "t", "--runs", "50"};
    return run_driver(4, const_cast<char**>(argv), targets);
  };
  EXPECT_EQ(driver([](const std::string&) {}), 0);
  EXPECT_EQ(driver([](const std::string& in) {
              if (in != "abc") fail("changed", in);
            }),
            1);
  EXPECT_EQ(driver([](const std::string&) { throw std::logic_error("unexpected"); }), 1);
}

TEST(FuzzDriver, EscapedIsOnePrintableLine) {
  EXPECT_EQ(escaped(std::string("a\n\xff\"", 4)), "\"a\\x0a\\xff\\x22\"");
  EXPECT_EQ(escaped("abcdef", 3), "\"abc\" (6 bytes)");
}

}  // namespace
}  // namespace qparity::fuzz
