// The guard that turns a crash of libtorch while it reads a file into qparity's one-line error
// (frontends/torch/load_crash_guard.h). Death tests: each case runs in a child process.
#include "load_crash_guard.h"

#include <gtest/gtest.h>

#include <csignal>

namespace qparity::torchfe {
namespace {

// Unbounded recursion, as libtorch's type parser can do on a malformed archive.
int recurse(int depth) {
  if (depth < 0) return 0;  // never: the recursion only ends on the stack's guard page
  volatile char frame[256] = {};
  frame[0] = static_cast<char>(depth);
  return recurse(depth + 1) + frame[0];  // the add after the call keeps it from being a loop
}

TEST(LoadCrashGuard, ACrashWhileReadingIsTheOneLineError) {
  EXPECT_EXIT(
      {
        const LoadCrashGuard guard("m.pt", "torch.jit.save");
        std::raise(SIGSEGV);
      },
      testing::ExitedWithCode(2),
      "^qparity model: error: m\\.pt: libtorch crashed reading it \\(SIGSEGV\\); the file is "
      "corrupt "
      "or was not written by torch\\.jit\\.save\n$");
}

TEST(LoadCrashGuard, AStackOverflowWhileReadingToo) {
  EXPECT_EXIT(
      {
        const LoadCrashGuard guard("deep.pt", "torch.jit.save");
        recurse(0);
      },
      testing::ExitedWithCode(2), "deep\\.pt: libtorch crashed reading it \\(SIGSEGV\\)");
}

TEST(LoadCrashGuard, ACrashAfterTheGuardStaysACrash) {
  EXPECT_EXIT(
      {
        { const LoadCrashGuard guard("m.pt", "torch.save"); }
        std::raise(SIGSEGV);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

}  // namespace
}  // namespace qparity::torchfe
