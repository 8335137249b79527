// Reading a float32 array saved by numpy.save (.npy format 1.0-3.0, '<f4', C order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qparity::io {

struct NpyArray {
  std::vector<int64_t> dims;
  std::vector<float> values;
};

// Parses the bytes of a .npy file; throws std::invalid_argument saying what is wrong (not a
// .npy file, a dtype other than little-endian float32, Fortran order, truncated data).
NpyArray parse_npy(const std::string& bytes);

}  // namespace qparity::io
