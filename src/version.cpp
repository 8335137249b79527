#include "qparity/version.h"

namespace qparity {
std::string_view version() { return QPARITY_VERSION_STRING; }
}  // namespace qparity
