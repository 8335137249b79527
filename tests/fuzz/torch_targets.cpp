// Fuzz targets for the TorchScript frontend (links libtorch): mutated copies of a small valid QAT
// model, its int8 twin and its input (.pt and .npy) loaded as `qparity model` loads them. Each
// run must succeed or end in std::invalid_argument with a one-line message naming the file; a
// crash, a hang or any other exception is a failure. The bytes live in a memfd, read through
// /proc/self/fd/N, so no run can leave a file behind.
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_driver.h"
#include "torchscript_frontend.h"

namespace qparity::fuzz {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// An anonymous in-memory file whose contents each run replaces.
class MemoryFile {
 public:
  MemoryFile() : fd_(memfd_create("qparity-fuzz", 0)) {
    if (fd_ < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
  }
  ~MemoryFile() { close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  // The path that reads `bytes`.
  std::string hold(const std::string& bytes) {
    if (ftruncate(fd_, 0) != 0 ||
        pwrite(fd_, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
      throw std::runtime_error(std::string("memfd write: ") + std::strerror(errno));
    }
    return "/proc/self/fd/" + std::to_string(fd_);
  }

 private:
  int fd_;
};

// A clean error: std::invalid_argument naming the file, or (the model ran and libtorch refused
// the input) a std::runtime_error that `qparity model` prefixes with the file and the input;
// either in one line.
template <typename Load>
void expect_clean(const std::string& input, const std::string& path, Load load) {
  try {
    load(path);
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    if (m.find('\n') != std::string::npos) fail("two-line error '" + m + "'", input);
    if (m.find(path) == std::string::npos) fail("error not naming the file: '" + m + "'", input);
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    if (m.empty() || m.find('\n') != std::string::npos)
      fail("libtorch error not one line: '" + m + "'", input);
  }
}

std::vector<Target> targets(const std::string& models) {
  static MemoryFile file;
  static const run::Tensor input = torchfe::load_input(models + "/input.npy");
  static const torchfe::LoadOptions options{"qnnpack", 1};
  const std::vector<std::string> keys = {"PK\x03\x04", "data.pkl", "constants.pkl",    "version",
                                         "code/",      "\x80\x02", "\xff\xff\xff\xff", "\0\0\0\0"};
  const auto load_input = [](const std::string& in) {
    expect_clean(in, file.hold(in), [](const std::string& p) { torchfe::load_input(p); });
  };
  const auto load_qat = [](const std::string& in) {
    expect_clean(in, file.hold(in),
                 [](const std::string& p) { torchfe::load_qat_model(p, input, options); });
  };
  const auto load_int8 = [](const std::string& in) {
    expect_clean(in, file.hold(in),
                 [](const std::string& p) { torchfe::load_int8_model(p, input, options); });
  };
  constexpr size_t kModelBytes = 1 << 20;
  return {
      {"torch_input",
       {read_file(models + "/input.pt"), read_file(models + "/input.npy")},
       keys,
       load_input,
       kModelBytes},
      {"torch_qat", {read_file(models + "/qat.pt")}, keys, load_qat, kModelBytes},
      {"torch_int8", {read_file(models + "/int8.pt")}, keys, load_int8, kModelBytes},
  };
}

}  // namespace
}  // namespace qparity::fuzz

// `--models DIR` (a folder with qat.pt, int8.pt, input.pt and input.npy) first, then the driver's
// arguments.
int main(int argc, char** argv) {
  if (argc < 3 || std::string(argv[1]) != "--models") {
    std::fprintf(stderr, "usage: %s --models DIR [TARGET...] [driver options; --help]\n", argv[0]);
    return 2;
  }
  const std::string models = argv[2];
  argv[2] = argv[0];
  return qparity::fuzz::run_driver(argc - 2, argv + 2, qparity::fuzz::targets(models));
}
