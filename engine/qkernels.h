/* Private to engine/: the integer kernels. u8 x s8 -> s32 products over packed weights and
 * requantization by a fixed-point multiplier and shift (the integer-only scheme of Jacob et
 * al. 2018). Each kernel has a portable C path, which is the reference, and on CPUs with
 * AVX-512 VNNI a vpdpbusd path chosen at run time; both give the same bits (integer sums
 * are exact and vpdpbusd does not saturate: four u8*s8 products fit an int32 easily). */
#ifndef TINYQAT_QKERNELS_H
#define TINYQAT_QKERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "autograd.h"

/* ---- weights packed for tq_qgemm
 * B is n rows (output channels) of k int8 codes. Packed: k rounded up to k4 (a multiple of
 * 4) and n to n16 (a multiple of 16), both padded with zeros; for each group of 16 rows
 * g and each step s of 4 along k, 64 bytes where bytes 4j..4j+3 are
 * b[16g + j][4s .. 4s+3]: one vpdpbusd operand. */
typedef struct tq_qweights {
    int64_t n, k, k4, n16;
    int8_t *data;     /* n16 * k4 bytes, 64-byte aligned */
    int32_t *row_sum; /* n: sum over k of b[j][k] (for inputs shifted to unsigned) */
} tq_qweights;

tq_status tq_qweights_pack(const int8_t *b, int64_t n, int64_t k, tq_qweights *out,
                           tq_error *err);
void tq_qweights_free(tq_qweights *w);

/* c[i*ldc + j] = sum over kk < k of a[i*lda + kk] * b[j][kk], for i < m and j < w->n.
 * Rows of a hold w->k4 bytes (lda >= k4), those past k zero. */
void tq_qgemm(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w, int32_t *c,
              int64_t ldc);
/* The portable path, whatever the CPU (tests compare the two). */
void tq_qgemm_ref(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w, int32_t *c,
                  int64_t ldc);
/* "vnni" or "portable": what tq_qgemm runs here (TQ_QGEMM=portable forces portable). */
const char *tq_qgemm_backend(void);

/* ---- requantization
 * A real factor r as mult * 2^-shift, |mult| in [2^30, 2^31) (sign of r), shift in
 * [0, 62]; r == 0 gives mult 0. Relative error of the representation <= 2^-30. */
typedef struct tq_requant {
    int32_t mult;
    int32_t shift;
} tq_requant;

/* For |r| in [2^-31, 2^31); smaller factors lose precision (shift is capped at 62) and
 * round to 0 eventually. */
tq_requant tq_requant_make(double r);

/* round(v * r): v * mult in 64 bits, then a rounding right shift. Ties go up (toward
 * +infinity): add 2^(shift-1), shift arithmetically. */
static inline int64_t tq_requant_apply(int32_t v, tq_requant q)
{
    int64_t p = (int64_t)v * q.mult;
    if (q.shift == 0) return p;
    return (p + ((int64_t)1 << (q.shift - 1))) >> q.shift;
}

#endif
