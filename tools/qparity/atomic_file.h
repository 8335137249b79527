// Output files that appear whole or not at all.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qparity::cli {

// Reserves a temporary file beside `target` at construction (so an unwritable
// destination is reported before any long work), and renames it over `target` on commit.
// Destroying an uncommitted AtomicFile removes the temporary: no partial file is left.
class AtomicFile {
 public:
  // Throws std::runtime_error naming the path and the reason when it cannot be written.
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Writes `content` and moves it into place. Throws std::runtime_error on failure.
  void commit(const std::string& content);

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
};

// Reserves `path` for `option` (nullptr when absent); unwritable paths throw
// std::invalid_argument "<option>: cannot write ...".
std::unique_ptr<AtomicFile> reserve_output(const std::optional<std::string>& path,
                                           const char* option);

// Refuses two output options naming the same file.
void check_distinct_outputs(
    const std::vector<std::pair<const char*, std::optional<std::string>>>& outputs);

}  // namespace qparity::cli
