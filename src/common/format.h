// Number formatting shared by the explanations the library writes.
#pragma once

#include <cstdio>
#include <string>

namespace qparity::detail {

// 9 significant digits: enough to tell any two float32 values apart.
inline std::string g9(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace qparity::detail
