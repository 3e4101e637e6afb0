// Build the CPU loops for several instruction sets: a function marked
// DYNAMO_CLONES is compiled for AVX-512, AVX2 and baseline x86-64 and the
// loader picks one (GCC target_clones); everything it calls must be inlined
// into it (DYNAMO_INLINE) to be compiled for each set.
#pragma once

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define DYNAMO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DYNAMO_CLONES
#endif

#define DYNAMO_INLINE inline __attribute__((always_inline))
