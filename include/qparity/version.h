#pragma once

#include <string_view>

namespace qparity {
// The library version (major.minor.patch).
std::string_view version();
}  // namespace qparity
