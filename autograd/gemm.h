/* Single-precision matrix product for the ops: an AVX-512 kernel chosen at run time, with
 * OpenBLAS's cblas_sgemm as the fallback (no AVX-512, or TQ_GEMM=openblas). Not installed. */
#ifndef TINYQAT_GEMM_H
#define TINYQAT_GEMM_H

#include <stdbool.h>

#include "autograd.h"

/* C (M,N) = alpha op(A) op(B) + beta C, row-major, with op(X) = X^T when trans_x: the meaning
 * of cblas_sgemm(CblasRowMajor, ...). beta = 0 ignores C's old contents (NaN included).
 * Outside an OpenMP parallel region a large product is split over the pool by blocks of C,
 * never over K; inside one it runs on the calling thread. Either way, and on any number of
 * threads, the bits are the same: the AVX-512 kernel's do not depend on the split at all, and
 * under OpenBLAS the blocks are fixed by the shape (tq_openblas_sgemm). */
void tq_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* tq_sgemm's OpenBLAS path: C cut into blocks of rows or columns that depend only on M, N and
 * K, each block one single-threaded cblas_sgemm call, the blocks spread over the pool (on the
 * calling thread inside a parallel region). */
void tq_openblas_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta, float *C,
                       int ldc);

/* One image's convolution as a product: input planes (C,H,W), a kh x kw kernel moved by
 * stride over the input zero-padded by pad on every side. */
typedef struct tq_conv_shape {
    int C, H, W, kh, kw, stride, pad;
} tq_conv_shape;

/* Y (M, OH*OW) = alpha A (M, C*kh*kw) cols + beta Y, rows of Y ldy floats apart, where cols is
 * im2col(x): row (c,ki,kj), column (oy,ox) holds x[c][oy*stride+ki-pad][ox*stride+kj-pad],
 * zero outside the plane, OH = (H+2pad-kh)/stride+1 and OW likewise. The column matrix is
 * never stored: each NR-column sliver of it is built in an L1-sized buffer just before use,
 * and the result is bitwise what tq_sgemm(false, false, ...) gives on the stored matrix,
 * with the same threading rules. Only the AVX-512 backend has it: under OpenBLAS it returns
 * false and leaves Y untouched (use im2col and tq_sgemm then). */
bool tq_sgemm_conv(int M, const tq_conv_shape *shape, float alpha, const float *A, int lda,
                   const float *x, float beta, float *Y, int ldy);

/* tq_sgemm_backend() is declared in autograd.h. */

#endif
