/* What the AVX-512 kernels (gemm.c, conv_direct.c) need to be compiled next to portable code:
 * TQ_HAVE_AVX512 where the compiler can emit them, and TQ_AVX512 to mark a function that uses
 * them (the build targets x86-64-v2; tq_sgemm_backend() decides at run time); and the 16x16
 * in-register transpose both files use. */
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

/* In-register transpose of 16 vectors: v[i] lane j becomes v[j] lane i. */
static TQ_AVX512 inline __attribute__((always_inline)) void tq_transpose16(__m512 v[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) {
        const __m512d a = _mm512_castps_pd(t[g]), b = _mm512_castps_pd(t[g + 1]),
                      c = _mm512_castps_pd(t[g + 2]), d = _mm512_castps_pd(t[g + 3]);
        u[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* u[4g+k] holds column k, 4+k, 8+k, 12+k of rows 4g..4g+3, one 128-bit lane each */
    for (int k = 0; k < 4; k++) {
        const __m512 lo_a = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x88),
                     lo_b = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xdd),
                     hi_a = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x88),
                     hi_b = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xdd);
        v[k] = _mm512_shuffle_f32x4(lo_a, hi_a, 0x88);
        v[k + 8] = _mm512_shuffle_f32x4(lo_a, hi_a, 0xdd);
        v[k + 4] = _mm512_shuffle_f32x4(lo_b, hi_b, 0x88);
        v[k + 12] = _mm512_shuffle_f32x4(lo_b, hi_b, 0xdd);
    }
}
#else
#define TQ_HAVE_AVX512 0
#endif

#endif
