#include "atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace qparity::cli {
namespace {

std::runtime_error file_error(const std::filesystem::path& p, const std::string& what) {
  return std::runtime_error("cannot write '" + p.string() + "': " + what);
}

}  // namespace

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  if (target_.empty()) throw file_error(target_, "empty path");
  std::error_code ec;
  if (std::filesystem::is_directory(target_, ec)) throw file_error(target_, "it is a directory");
  const std::filesystem::path dir =
      target_.parent_path().empty() ? std::filesystem::path(".") : target_.parent_path();
  if (!std::filesystem::is_directory(dir, ec)) {
    throw file_error(target_, "directory '" + dir.string() + "' does not exist");
  }
  std::string pattern = (dir / ("." + target_.filename().string() + ".tmp-XXXXXX")).string();
  fd_ = ::mkstemp(pattern.data());
  if (fd_ < 0) throw file_error(target_, std::strerror(errno));
  temp_ = pattern;
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) {
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
  }
}

void AtomicFile::commit(const std::string& content) {
  const char* data = content.data();
  size_t left = content.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw file_error(target_, std::strerror(errno));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  if (::fchmod(fd_, 0644) != 0 || ::fsync(fd_) != 0 || ::close(fd_) != 0) {
    fd_ = -1;
    throw file_error(target_, std::strerror(errno));
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0) throw file_error(target_, std::strerror(errno));
  temp_.clear();
}

std::unique_ptr<AtomicFile> reserve_output(const std::optional<std::string>& path,
                                           const char* option) {
  if (!path) return nullptr;
  try {
    return std::make_unique<AtomicFile>(*path);
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(std::string(option) + ": " + e.what());
  }
}

namespace {

// Two spellings of one path ("o.out", "./o.out", "dir/../o.out") name the same file.
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ea, eb;
  // absolute() first: weakly_canonical leaves a relative path with no existing prefix as it is.
  const auto ca = std::filesystem::weakly_canonical(std::filesystem::absolute(a, ea), ea);
  const auto cb = std::filesystem::weakly_canonical(std::filesystem::absolute(b, eb), eb);
  return (!ea && !eb) ? ca == cb : a == b;
}

}  // namespace

void check_distinct_outputs(
    const std::vector<std::pair<const char*, std::optional<std::string>>>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (size_t j = i + 1; j < outputs.size(); ++j) {
      if (outputs[i].second && outputs[j].second &&
          same_file(*outputs[i].second, *outputs[j].second)) {
        throw std::invalid_argument(std::string(outputs[j].first) + ": '" + *outputs[j].second +
                                    "' is already the " + outputs[i].first + " file");
      }
    }
  }
}

}  // namespace qparity::cli
