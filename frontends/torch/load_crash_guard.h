// libtorch 1.13.1 crashes on some malformed files instead of throwing: its TorchScript importer
// dereferences null on a class constant without a type annotation (`__parameters_  = []` in a
// model's code/, found by the torch_qat fuzz target: tests/fuzz/, docs/fuzzing.md). qparity
// cannot fix libtorch (Debian's package), so while libtorch reads one file a LoadCrashGuard
// turns a crash (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, also a stack overflow) into the
// one-line error every bad input gets:
//   qparity model: error: FILE: libtorch crashed reading it (SIGSEGV); the file is corrupt or
//   was not written by torch.jit.save / torch.save
// and exit code 2. Nothing is half-written: report files are created only after both models were
// read. A crash outside a guard, or in a thread that is not reading a file, stays a crash.
#pragma once

#include <signal.h>

#include <string>

namespace qparity::torchfe {

class LoadCrashGuard {
 public:
  // `file` is named in the message; `writer` says what should have written it.
  LoadCrashGuard(const std::string& file, const std::string& writer);
  ~LoadCrashGuard();
  LoadCrashGuard(const LoadCrashGuard&) = delete;
  LoadCrashGuard& operator=(const LoadCrashGuard&) = delete;

 private:
  std::string message_;
  std::string alternate_stack_;
  stack_t previous_stack_{};
};

}  // namespace qparity::torchfe
