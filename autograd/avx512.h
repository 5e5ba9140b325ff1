/* What the AVX-512 kernels (gemm.c, conv_direct.c) need to be compiled next to portable code:
 * TQ_HAVE_AVX512 where the compiler can emit them, and TQ_AVX512 to mark a function that uses
 * them (the build targets x86-64-v2; tq_sgemm_backend() decides at run time). */
#ifndef TINYQAT_AVX512_H
#define TINYQAT_AVX512_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TQ_HAVE_AVX512 1
#include <immintrin.h>
/* Optimized even in Debug builds: at -O0 the intrinsics spill every register and a sanitized
 * test run takes five times as long as with OpenBLAS. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__)
#define TQ_AVX512 \
    __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma"), optimize("O2")))
#else
#define TQ_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))
#endif
#else
#define TQ_HAVE_AVX512 0
#endif

#endif
