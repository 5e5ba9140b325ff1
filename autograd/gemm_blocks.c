/* tq_sgemm under OpenBLAS: the product cut into blocks of C's rows or columns fixed by its
 * shape alone, each block one single-threaded cblas_sgemm call, the blocks spread over the
 * pool. */
#include "gemm.h"

#include <cblas.h>

#include "internal.h"
#include "parallel.h"

/* Why blocks of our own: OpenBLAS's bits change with its thread count (measured on OpenBLAS
 * 0.3.21, Zen kernels: 496 of 795 products of model-like shapes differ between 1 thread and
 * 2, 3 or 4), and even on one thread an element's bits depend on which rows and columns share
 * its call (an edge tile sums in another order). Never splitting K keeps each dot product in
 * one call; fixing the blocks by the shape makes every element's bits a function of the
 * shape and the operands alone, whoever computes the block, inside a parallel region or not.
 * Blocks of at least BLOCK_MACS multiply-adds keep the calls' own costs (packing A or B again
 * per block, a few microseconds a call) to a few percent on one thread. */
#define BLOCK_MACS (1 << 21)
/* 12 blocks share evenly over 2, 3, 4 or 6 threads. */
#define MAX_BLOCKS 12
/* Block edges on multiples of OpenBLAS's register tiles (16 floats on the AVX2 kernels). */
#define BLOCK_ALIGN 16

typedef struct block_args {
    bool ta, tb, by_cols;
    int M, N, K, lda, ldb, ldc, block;
    float alpha, beta;
    const float *A, *B;
    float *C;
} block_args;

static void one_block(void *ctx, int piece, int slot)
{
    (void)slot;
    const block_args *a = ctx;
    const int lo = piece * a->block, len = a->by_cols ? a->N : a->M,
              n = len - lo < a->block ? len - lo : a->block;
    const CBLAS_TRANSPOSE ta = a->ta ? CblasTrans : CblasNoTrans,
                          tb = a->tb ? CblasTrans : CblasNoTrans;
    if (a->by_cols) /* columns lo .. lo+n of C: those of op(B) */
        cblas_sgemm(CblasRowMajor, ta, tb, a->M, n, a->K, a->alpha, a->A, a->lda,
                    a->B + (a->tb ? (int64_t)lo * a->ldb : lo), a->ldb, a->beta, a->C + lo,
                    a->ldc);
    else /* rows lo .. lo+n of C: those of op(A) */
        cblas_sgemm(CblasRowMajor, ta, tb, n, a->N, a->K, a->alpha,
                    a->A + (a->ta ? lo : (int64_t)lo * a->lda), a->lda, a->B, a->ldb, a->beta,
                    a->C + (int64_t)lo * a->ldc, a->ldc);
}

void tq_openblas_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta, float *C,
                       int ldc)
{
    block_args a = {.ta = trans_a, .tb = trans_b, .by_cols = N >= M, .M = M, .N = N, .K = K,
                    .lda = lda, .ldb = ldb, .ldc = ldc, .alpha = alpha, .beta = beta, .A = A,
                    .B = B, .C = C};
    const double macs = (double)M * N * (K > 0 ? K : 1);
    const int len = a.by_cols ? N : M;
    int blocks = macs / BLOCK_MACS < MAX_BLOCKS ? (int)(macs / BLOCK_MACS) : MAX_BLOCKS;
    if (blocks < 1) blocks = 1;
    a.block = (len + blocks - 1) / blocks;
    a.block = (a.block + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
    if (a.block > len) a.block = len;
    blocks = (len + a.block - 1) / a.block;
    /* OpenBLAS's OpenMP build takes its thread count from the calling task's nthreads-var at
     * every call: 1 while the blocks run, so each call stays on its thread, then restored */
    const int threads = tq_omp_max_threads();
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    tq_run_pieces(blocks, threads, one_block, &a);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
}
