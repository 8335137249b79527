#include "qparity/io/npy.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace qparity::io {
namespace {

// Header text as a message quotes it: bytes outside printable ASCII as \xNN, so a corrupt header
// cannot put a newline or invalid UTF-8 into the one-line error.
std::string printable(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    const auto b = static_cast<unsigned char>(ch);
    if (b >= 0x20 && b < 0x7f) {
      out += ch;
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      out += {'\\', 'x', kHex[b >> 4], kHex[b & 15]};
    }
  }
  return out;
}

// The value text of `key` in the header dict, e.g. 'descr': '<f4' gives "'<f4'".
std::string dict_value(const std::string& header, const std::string& key) {
  const auto at = header.find("'" + key + "'");
  if (at == std::string::npos) throw std::invalid_argument("the .npy header has no '" + key + "'");
  auto start = header.find(':', at);
  if (start == std::string::npos) throw std::invalid_argument("the .npy header is malformed");
  ++start;
  while (start < header.size() && header[start] == ' ') ++start;
  if (start >= header.size()) throw std::invalid_argument("the .npy header is malformed");
  const char open = header[start];
  const auto end = open == '(' ? header.find(')', start) + 1 : header.find_first_of(",}", start + 1);
  if (end == std::string::npos || end <= start) throw std::invalid_argument("the .npy header is malformed");
  return open == '\'' ? header.substr(start, header.find('\'', start + 1) + 1 - start) : header.substr(start, end - start);
}

// "(2, 3)", "(5,)" or "()": non-negative integers only; the element count must fit in memory
// arithmetic (no overflow), or the data size check below could be fooled.
std::vector<int64_t> parse_shape(const std::string& text) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') {
    throw std::invalid_argument("the .npy shape " + printable(text) + " is not a tuple");
  }
  std::vector<int64_t> dims;
  size_t i = 1;
  const size_t end = text.size() - 1;
  while (i < end) {
    while (i < end && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i >= end) break;
    if (text[i] < '0' || text[i] > '9')
      throw std::invalid_argument("the .npy shape " + printable(text) + " is invalid");
    int64_t v = 0;
    while (i < end && text[i] >= '0' && text[i] <= '9') {
      if (v > (INT64_MAX - 9) / 10)
        throw std::invalid_argument("the .npy shape " + printable(text) + " is too large");
      v = v * 10 + (text[i] - '0');
      ++i;
    }
    if (i < end && text[i] == 'L') ++i;  // Python 2 longs
    dims.push_back(v);
  }
  return dims;
}

}  // namespace

NpyArray parse_npy(const std::string& bytes) {
  static const char kMagic[] = "\x93NUMPY";
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) {
    throw std::invalid_argument("not a .npy file (no \\x93NUMPY magic)");
  }
  const auto major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else if ((major == 2 || major == 3) && bytes.size() >= 12) {
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + static_cast<size_t>(i)])) << (8 * i);
    offset = 12;
  } else {
    throw std::invalid_argument("unsupported .npy format version " + std::to_string(major));
  }
  if (bytes.size() < offset + header_len) throw std::invalid_argument("the .npy header is truncated");
  const std::string header = bytes.substr(offset, header_len);
  const std::string descr = dict_value(header, "descr");
  if (descr == "'>f4'") {
    throw std::invalid_argument(
        "the .npy array is big-endian float32 ('>f4'); qparity needs little-endian float32 "
        "('<f4')");
  }
  if (descr != "'<f4'")
    throw std::invalid_argument("the .npy dtype is " + printable(descr) +
                                "; qparity needs float32 ('<f4')");
  const std::string order = dict_value(header, "fortran_order");
  if (order.rfind("True", 0) == 0)
    throw std::invalid_argument("the .npy array is in Fortran order; save it in C order");
  if (order.rfind("False", 0) != 0)
    throw std::invalid_argument("the .npy header is malformed (fortran_order " +
                                printable(order) + ")");
  NpyArray array;
  array.dims = parse_shape(dict_value(header, "shape"));
  size_t count = 1;
  for (const int64_t d : array.dims) {
    const auto n = static_cast<size_t>(d);
    if (n != 0 && count > SIZE_MAX / sizeof(float) / n) {
      throw std::invalid_argument("the .npy shape has more elements than this machine can address");
    }
    count *= n;
  }
  const size_t data_at = offset + header_len;
  if (bytes.size() - data_at != count * sizeof(float)) {
    throw std::invalid_argument(
        "the .npy data holds " + std::to_string(bytes.size() - data_at) +
        " bytes, the shape needs " + std::to_string(count * sizeof(float)) +
        (bytes.size() - data_at < count * sizeof(float) ? " (truncated file?)" : ""));
  }
  array.values.resize(count);
  std::memcpy(array.values.data(), bytes.data() + data_at, count * sizeof(float));
  return array;
}

}  // namespace qparity::io
