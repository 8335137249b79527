#include "qparity/version.h"

#include "common/multiversion.h"

namespace qparity {

std::string_view version() { return QPARITY_VERSION_STRING; }

namespace {
// A probe dispatched like the QPARITY_MULTIVERSION kernels: GCC resolves `target` versions and
// `target_clones` with the same ifunc resolver and priorities (__builtin_cpu_supports), so the
// version picked here is the clone every kernel runs. Built under the same condition.
#if QPARITY_MULTIVERSION_CLONES
__attribute__((target("avx2"))) std::string_view selected_clone() { return "avx2"; }
__attribute__((target("default"))) std::string_view selected_clone() { return "default"; }
#else
std::string_view selected_clone() { return "default"; }
#endif
}  // namespace

std::string_view kernel_clone() { return selected_clone(); }

}  // namespace qparity
