/* tq_sgemm against cblas_sgemm on the products the models run (ResNet-20 convolutions at one
 * image, forward and backward; MLP linear layers), timed interleaved, medians of repeats.
 * Usage: bench_gemm [THREADS [REPEATS]]   (default 1 thread, 7 repeats)
 *   ->  one line per shape: name layout M N K tq_gflops blas_gflops ratio max_rel_diff */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "autograd.h"
#include "gemm.h"

typedef struct shape {
    const char *name;
    bool ta, tb;
    int M, N, K;
    float beta;
} shape;

static const shape shapes[] = {
    /* conv forward: W (O, 9C) cols (9C, HW) */
    {"conv-fwd 16x3x3x3 @32x32", false, false, 16, 1024, 27, 0.0f},
    {"conv-fwd 16x16 @32x32", false, false, 16, 1024, 144, 0.0f},
    {"conv-fwd 32x16 s2 @16x16", false, false, 32, 256, 144, 0.0f},
    {"conv-fwd 32x32 @16x16", false, false, 32, 256, 288, 0.0f},
    {"conv-fwd 64x32 s2 @8x8", false, false, 64, 64, 288, 0.0f},
    {"conv-fwd 64x64 @8x8", false, false, 64, 64, 576, 0.0f},
    /* conv input gradient: W^T (9C, O) gy (O, HW) */
    {"conv-dx 16x16 @32x32", true, false, 144, 1024, 16, 0.0f},
    {"conv-dx 32x16 s2 @16x16", true, false, 144, 256, 32, 0.0f},
    {"conv-dx 32x32 @16x16", true, false, 288, 256, 32, 0.0f},
    {"conv-dx 64x32 s2 @8x8", true, false, 288, 64, 64, 0.0f},
    {"conv-dx 64x64 @8x8", true, false, 576, 64, 64, 0.0f},
    /* conv weight gradient: gy (O, k*HW) cols^T, images grouped to K = 2048 */
    {"conv-dw 16x3x3x3 @32x32", false, true, 16, 27, 2048, 1.0f},
    {"conv-dw 16x16 @32x32", false, true, 16, 144, 2048, 1.0f},
    {"conv-dw 32x16 s2 @16x16", false, true, 32, 144, 2048, 1.0f},
    {"conv-dw 32x32 @16x16", false, true, 32, 288, 2048, 1.0f},
    {"conv-dw 64x32 s2 @8x8", false, true, 64, 288, 2048, 1.0f},
    {"conv-dw 64x64 @8x8", false, true, 64, 576, 2048, 1.0f},
    /* MLP 784-256-256-10: inference batch 256, training batch 64 */
    {"mlp-fwd b256 784->256", false, true, 256, 256, 784, 0.0f},
    {"mlp-fwd b256 256->256", false, true, 256, 256, 256, 0.0f},
    {"mlp-fwd b256 256->10", false, true, 256, 10, 256, 0.0f},
    {"mlp-fwd b64 784->256", false, true, 64, 256, 784, 0.0f},
    {"mlp-fwd b64 256->256", false, true, 64, 256, 256, 0.0f},
    {"mlp-fwd b64 256->10", false, true, 64, 10, 256, 0.0f},
    {"mlp-dx b64 256->256", false, false, 64, 256, 256, 1.0f},
    {"mlp-dx b64 256->10", false, false, 64, 256, 10, 1.0f},
    {"mlp-dw b64 784->256", true, false, 256, 784, 64, 1.0f},
    {"mlp-dw b64 256->256", true, false, 256, 256, 64, 1.0f},
    {"mlp-dw b64 256->10", true, false, 10, 256, 64, 1.0f},
    {"square 1024", false, false, 1024, 1024, 1024, 0.0f},
};

static void run(const shape *s, bool use_tq, const float *A, const float *B, float *C, int iters)
{
    const int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    for (int i = 0; i < iters; i++) {
        if (use_tq)
            tq_sgemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, s->beta, C, s->N);
        else
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                        s->tb ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f, A, lda, B,
                        ldb, s->beta, C, s->N);
    }
}

int main(int argc, char **argv)
{
    const int threads = argc > 1 ? atoi(argv[1]) : 1;
    int repeats = argc > 2 ? atoi(argv[2]) : 7;
    if (threads < 1 || repeats < 1 || repeats > 99) {
        fprintf(stderr, "usage: bench_gemm [THREADS [REPEATS (1..99)]]\n");
        return 2;
    }
    tq_set_threads(threads);
    printf("# tq_sgemm backend %s, %d thread(s), median of %d interleaved repeats\n",
           tq_sgemm_backend(), threads, repeats);
    printf("%-26s %-2s %5s %5s %5s %9s %9s %6s %9s\n", "shape", "op", "M", "N", "K", "tq_GF/s",
           "blas_GF/s", "ratio", "rel_diff");
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        const size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
        float *A = malloc(na * sizeof(float)), *B = malloc(nb * sizeof(float)),
              *C1 = calloc(nc, sizeof(float)), *C2 = calloc(nc, sizeof(float));
        if (!A || !B || !C1 || !C2) return 1;
        for (size_t i = 0; i < na; i++) A[i] = tq_rng_uniform(&rng) - 0.5f;
        for (size_t i = 0; i < nb; i++) B[i] = tq_rng_uniform(&rng) - 0.5f;
        /* agreement on one product from zero */
        const float beta_keep = s->beta;
        shape once = *s;
        once.beta = 0.0f;
        run(&once, true, A, B, C1, 1);
        run(&once, false, A, B, C2, 1);
        double diff = 0.0, mag = 0.0;
        for (size_t i = 0; i < nc; i++) {
            diff = fmax(diff, fabs((double)C1[i] - (double)C2[i]));
            mag = fmax(mag, fabs((double)C2[i]));
        }
        (void)beta_keep;
        /* about 20 ms per timed run */
        const double flops = 2.0 * s->M * s->N * (double)s->K;
        int iters = 1;
        double t0 = now();
        run(s, true, A, B, C1, 1);
        double one = now() - t0;
        iters = (int)(0.02 / (one > 1e-7 ? one : 1e-7));
        if (iters < 1) iters = 1;
        double g_tq[99], g_blas[99];
        for (int r = 0; r < repeats; r++) {
            for (int which = 0; which < 2; which++) {
                const bool tq_first = r % 2 == 0, use_tq = which == 0 ? tq_first : !tq_first;
                t0 = now();
                run(s, use_tq, A, B, use_tq ? C1 : C2, iters);
                const double g = flops * iters / (now() - t0) / 1e9;
                if (use_tq)
                    g_tq[r] = g;
                else
                    g_blas[r] = g;
            }
        }
        const double mt = median(g_tq, repeats), mb = median(g_blas, repeats);
        printf("%-26s %c%c %5d %5d %5d %9.1f %9.1f %6.2f %9.1e\n", s->name, s->ta ? 'T' : 'N',
               s->tb ? 'T' : 'N', s->M, s->N, s->K, mt, mb, mt / mb, diff / (mag > 0 ? mag : 1));
        fflush(stdout);
        free(A);
        free(B);
        free(C1);
        free(C2);
    }
    return 0;
}
