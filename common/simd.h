// Compiling hot loops for the widest vector unit the CPU has, portably: GCC function
// multi-versioning on x86-64 (AVX-512, AVX2, plain x86-64; the loader picks one), nothing
// elsewhere. Loops inside such functions are vectorised by `#pragma omp simd` (the libraries
// that use it compile with -fopenmp or -fopenmp-simd).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DGQA_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DGQA_SIMD_CLONES
#endif

// Helpers called from such functions are forced inline so that they are compiled for the
// caller's vector width (a call from a clone into an out-of-line helper would run the helper's
// plain x86-64 code).
#if defined(__GNUC__)
#define DGQA_ALWAYS_INLINE __attribute__((always_inline))
#else
#define DGQA_ALWAYS_INLINE
#endif
