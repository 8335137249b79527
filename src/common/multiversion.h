// Hot loops are compiled twice, for baseline x86-64 and for AVX2, and the loader picks the one
// this CPU runs. Both clones come from the same source and perform the same IEEE operations
// (FMA contraction is off), so they produce the same bits; the span-kernel tests run whichever
// clone the test machine selects against the scalar references.
//
// QPARITY_FORCE_BASELINE (the CMake option of that name) compiles only the baseline code, so an
// AVX2 machine runs and tests the code a CPU without AVX2 gets (scripts/test.sh's sanitized build
// does); qparity::kernel_clone() says which one a process runs.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(QPARITY_FORCE_BASELINE)
#define QPARITY_MULTIVERSION_CLONES 1
#define QPARITY_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define QPARITY_MULTIVERSION_CLONES 0
#define QPARITY_MULTIVERSION
#endif
