// Report files that appear whole or not at all, and the console text on stdout.
//
// A command names its outputs at the start (OutputFiles checks each path then, so an unwritable
// destination is reported before any long work, but creates nothing), renders every report, and
// hands them all to write_all() at the end, which:
//   1. writes every regular file to an unnamed temporary (O_TMPFILE) in its directory, or to a
//      short-named `.qparity-XXXXXX.tmp` where the filesystem has no O_TMPFILE;
//   2. writes the console text to stdout;
//   3. streams the outputs that are not regular files (a character device such as /dev/null or a
//      terminal, a FIFO, /dev/stdout) straight to them: such a node is never replaced;
//   4. links every temporary into place (straight to its name when the file is new; to a short-
//      lived name renamed over the file it replaces otherwise), all of them or none.
// Any failure (full disk, closed stdout, a pipe whose reader went away) throws, and the
// temporaries are gone: no file was replaced. SIGINT, SIGTERM and SIGHUP remove a named
// temporary before the process dies (install_output_safeguards); SIGKILL can leave nothing
// on filesystems with O_TMPFILE, as the temporaries have no name until the final link (only a
// SIGKILL in the microseconds between the link and the rename that replaces an existing file
// can leave a .qparity-XXXXXX.tmp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qparity::cli {

class OutputFiles {
 public:
  using Named = std::pair<const char*, std::optional<std::string>>;  // option, path (or absent)

  // Checks every present path; throws std::invalid_argument "<option>: cannot write '<path>':
  // <why>" for the first that cannot be written. Creates nothing.
  explicit OutputFiles(const std::vector<Named>& outputs);
  ~OutputFiles();
  OutputFiles(const OutputFiles&) = delete;
  OutputFiles& operator=(const OutputFiles&) = delete;

  // Whether `option` names an output (so its report must be rendered).
  bool wants(std::string_view option) const;
  // The content for `option`'s file; options that name no output are ignored.
  void set(std::string_view option, std::string content);
  // Steps 1-4 above. Throws std::runtime_error naming the option and the file (or stdout).
  void write_all(std::string_view console);

 private:
  struct Output;
  std::vector<std::unique_ptr<Output>> outputs_;
};

// Refuses two options naming the same regular file ("o.out", "./o.out"); outputs that stream
// into a device or FIFO (/dev/null, /dev/stdout) may be named more than once.
void check_distinct_outputs(const std::vector<OutputFiles::Named>& outputs);

// Writes all of `text` to stdout (fd 1); throws std::runtime_error "cannot write to stdout:
// <why>" on any failure (a full disk, a closed stdout, a pipe closed by its reader).
void write_stdout(std::string_view text);

// Call once at the start of main(): puts a read-only placeholder on a closed stdin, stdout or
// stderr (so no report file takes its number, and writes to it still fail), ignores SIGPIPE (a
// write to a closed pipe becomes the error EPIPE, reported with exit code 2) and, unless they
// are ignored, has SIGINT, SIGTERM and SIGHUP remove every named temporary before the process
// dies of the signal.
void install_output_safeguards();

}  // namespace qparity::cli
