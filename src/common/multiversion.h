// Hot loops are compiled twice, for baseline x86-64 and for AVX2, and the loader picks the one
// this CPU runs. Both clones come from the same source and perform the same IEEE operations
// (FMA contraction is off), so they produce the same bits; the span-kernel tests run whichever
// clone the test machine selects against the scalar references.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define QPARITY_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define QPARITY_MULTIVERSION
#endif
