/* Single-precision matrix product for the ops: an AVX-512 kernel chosen at run time, with
 * OpenBLAS's cblas_sgemm as the fallback (no AVX-512, or TQ_GEMM=openblas). Not installed. */
#ifndef TINYQAT_GEMM_H
#define TINYQAT_GEMM_H

#include <stdbool.h>

/* C (M,N) = alpha op(A) op(B) + beta C, row-major, with op(X) = X^T when trans_x: the meaning
 * of cblas_sgemm(CblasRowMajor, ...). beta = 0 ignores C's old contents (NaN included).
 * Outside an OpenMP parallel region a large product is split over the pool by blocks of C,
 * never over K, so the bits do not depend on the thread count; inside one it runs on the
 * calling thread. */
void tq_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* "avx512" or "openblas": which one tq_sgemm uses in this process (decided once, from the
 * CPU and the environment variable TQ_GEMM). */
const char *tq_sgemm_backend(void);

#endif
