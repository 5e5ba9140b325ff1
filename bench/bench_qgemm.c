/* tq_qgemm on the integer engine's products at batch 256 (LeNet-5 and ResNet-20 convolutions
 * as pixels x (kh kw C) x channels, the MLP's layers): GOP/s of the dispatched path (VNNI
 * where the CPU has it) and of the portable one, timed interleaved, medians of repeats; and
 * the machine's int8 peak (a register-only vpdpbusd loop) on 1 and 2 threads, of which each
 * product's rate is given as a fraction.
 * Usage: bench_qgemm [THREADS [REPEATS]]   (default 1 thread, 5 repeats)
 *   ->  one line per shape: name m n k GOP/s (dispatched, portable) ratio, GOP/s of the
 *       dispatched tq_qgemm_requant (bias, ReLU, uint8 out), fraction of peak */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_clock.h"
#include "autograd.h"
#include "qkernels.h"

typedef struct shape {
    const char *name;
    int64_t m, n, k;
} shape;

/* Batch 256. Convolutions: m = 256 x output pixels, k = kh kw C_in, n = C_out. LeNet-5 on
 * 28x28: conv1 5x5 pad 2 (28x28 out), conv2 5x5 on 6 channels at 14x14 (10x10 out), then
 * 400-120-84-10. ResNet-20 on 32x32: 3x3 convs at 16/32/64 channels on 32x32/16x16/8x8,
 * the stride-2 ones and the 1x1 projections. */
static const shape shapes[] = {
    {"lenet5 conv1", 256 * 28 * 28, 6, 25},
    {"lenet5 conv2", 256 * 10 * 10, 16, 150},
    {"lenet5 fc1", 256, 120, 400},
    {"lenet5 fc2", 256, 84, 120},
    {"lenet5 fc3", 256, 10, 84},
    {"resnet20 conv1 3->16", 256 * 32 * 32, 16, 27},
    {"resnet20 3x3 16 @32", 256 * 32 * 32, 16, 144},
    {"resnet20 3x3 16->32 s2", 256 * 16 * 16, 32, 144},
    {"resnet20 3x3 32 @16", 256 * 16 * 16, 32, 288},
    {"resnet20 1x1 16->32 s2", 256 * 16 * 16, 32, 16},
    {"resnet20 3x3 32->64 s2", 256 * 8 * 8, 64, 288},
    {"resnet20 3x3 64 @8", 256 * 8 * 8, 64, 576},
    {"resnet20 1x1 32->64 s2", 256 * 8 * 8, 64, 32},
    {"resnet20 fc", 256, 10, 64},
    {"mlp 784->256", 256, 256, 784},
    {"mlp 256->256", 256, 256, 256},
    {"mlp 256->10", 256, 10, 256},
};

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_PEAK 1
/* vpdpbusd throughput on one thread: 16 independent accumulators, nothing from memory.
 * Returns GOP/s (64 multiply-adds = 128 operations per instruction). */
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) static double peak_one(
    int64_t iters)
{
    __m512i acc[16];
    for (int r = 0; r < 16; r++) acc[r] = _mm512_set1_epi32(r);
    const __m512i x = _mm512_set1_epi32(0x01010101), b = _mm512_set1_epi32(0x01ff01ff);
    const double t0 = now();
    for (int64_t i = 0; i < iters; i++)
        for (int r = 0; r < 16; r++)
            __asm__ volatile("vpdpbusd %2, %1, %0" : "+v"(acc[r]) : "v"(x), "v"(b));
    const double t = now() - t0;
    int32_t sink[16];
    _mm512_storeu_si512(sink, acc[0]);
    if (sink[0] == 42) printf(" ");
    return 128.0 * 16.0 * (double)iters / t / 1e9;
}

/* The same on `threads` threads at once: the sum of their rates. */
static double peak(int threads)
{
    double total = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    total += peak_one(20000000);
    return total;
}
#else
#define HAVE_PEAK 0
#endif

typedef void qgemm_fn(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w,
                      int32_t *c, int64_t ldc);

/* One timed run: fn into c, or with ep the fused epilogue (dispatched) into bytes. */
static double gops(qgemm_fn *fn, const tq_qepilogue *ep, const shape *s, const uint8_t *a,
                   int64_t lda, const tq_qweights *w, int32_t *c, int iters)
{
    const double t0 = now();
    for (int i = 0; i < iters; i++) {
        if (ep)
            tq_qgemm_requant(s->m, a, lda, w, ep, c, s->n);
        else
            fn(s->m, a, lda, w, c, s->n);
    }
    return 2.0 * (double)s->m * (double)s->n * (double)s->k * iters / (now() - t0) / 1e9;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: bench_qgemm [THREADS [REPEATS (1..99)]]\n"
               "GOP/s of tq_qgemm (dispatched and portable paths) on the integer engine's\n"
               "products at batch 256, and the fraction of the int8 peak where VNNI runs.\n");
        return 0;
    }
    const int threads = argc > 1 ? atoi(argv[1]) : 1;
    const int repeats = argc > 2 ? atoi(argv[2]) : 5;
    if (argc > 3 || threads < 1 || repeats < 1 || repeats > 99) {
        fprintf(stderr, "usage: bench_qgemm [THREADS [REPEATS (1..99)]]\n");
        return 2;
    }
    tq_set_threads(threads);
    const bool vnni = strcmp(tq_qgemm_backend(), "vnni") == 0;
    double top = 0.0;
#if HAVE_PEAK
    if (vnni) {
        const double p1 = peak(1), p2 = peak(2);
        printf("# int8 peak (vpdpbusd, registers only): %.0f GOP/s on 1 thread, %.0f on 2\n",
               p1, p2);
        top = threads >= 2 ? p2 : p1;
    }
#endif
    if (!vnni) printf("# no AVX-512 VNNI here (or TQ_QGEMM=portable): no int8 peak\n");
    printf("# tq_qgemm backend %s, %d thread(s), median of %d interleaved repeats\n",
           tq_qgemm_backend(), threads, repeats);
    printf("%-24s %7s %4s %4s %9s %9s %6s %9s %6s\n", "shape", "m", "n", "k", "GOP/s",
           "portable", "ratio", "requant", "peak");
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        const int64_t k4 = (s->k + 3) / 4 * 4;
        uint8_t *a = calloc((size_t)(s->m * k4), 1);
        int8_t *b = malloc((size_t)(s->n * s->k));
        int32_t *c1 = malloc((size_t)(s->m * s->n) * sizeof *c1),
                *c2 = malloc((size_t)(s->m * s->n) * sizeof *c2);
        if (!a || !b || !c1 || !c2) {
            fprintf(stderr, "bench_qgemm: %s: out of memory\n", s->name);
            return 1;
        }
        for (int64_t i = 0; i < s->m; i++)
            for (int64_t kk = 0; kk < s->k; kk++) a[i * k4 + kk] = (uint8_t)tq_rng_below(&rng, 256);
        for (int64_t i = 0; i < s->n * s->k; i++)
            b[i] = (int8_t)((int)tq_rng_below(&rng, 256) - 128);
        tq_qweights w;
        tq_error err = {0};
        if (tq_qweights_pack(b, s->n, s->k, &w, &err) != TQ_STATUS_OK) {
            fprintf(stderr, "bench_qgemm: %s: %s\n", s->name, err.msg);
            return 1;
        }
        /* the fused epilogue as a layer followed by ReLU uses it: bias, per-channel factors */
        int32_t *bias = malloc((size_t)s->n * sizeof *bias);
        tq_requant *rq = malloc((size_t)s->n * sizeof *rq);
        if (!bias || !rq) return 1;
        for (int64_t j = 0; j < s->n; j++) {
            bias[j] = (int32_t)tq_rng_below(&rng, 20001) - 10000;
            rq[j] = tq_requant_make(1.0 / (1000.0 + (double)j));
        }
        const tq_qepilogue ep = {.bias = bias, .rq = rq, .lo = 0, .hi = 255, .type = TQ_QOUT_U8};
        /* the two paths agree to the bit, then about 20 ms per timed run */
        tq_qgemm(s->m, a, k4, &w, c1, s->n);
        tq_qgemm_ref(s->m, a, k4, &w, c2, s->n);
        if (memcmp(c1, c2, (size_t)(s->m * s->n) * sizeof *c1) != 0) {
            fprintf(stderr, "bench_qgemm: %s: the dispatched and portable paths differ\n",
                    s->name);
            return 1;
        }
        double t0 = now();
        tq_qgemm_ref(s->m, a, k4, &w, c2, s->n);
        const double one = now() - t0;
        const int iters_ref = one > 0.02 ? 1 : (int)(0.02 / (one > 1e-7 ? one : 1e-7));
        t0 = now();
        tq_qgemm(s->m, a, k4, &w, c1, s->n);
        const double one_d = now() - t0;
        const int iters = one_d > 0.02 ? 1 : (int)(0.02 / (one_d > 1e-7 ? one_d : 1e-7));
        double g[99], g_ref[99], g_rq[99];
        for (int r = 0; r < repeats; r++) {
            if (r % 2) g_ref[r] = gops(tq_qgemm_ref, NULL, s, a, k4, &w, c2, iters_ref);
            g[r] = gops(tq_qgemm, NULL, s, a, k4, &w, c1, iters);
            g_rq[r] = gops(NULL, &ep, s, a, k4, &w, c1, iters);
            if (r % 2 == 0) g_ref[r] = gops(tq_qgemm_ref, NULL, s, a, k4, &w, c2, iters_ref);
        }
        const double mg = median(g, repeats), mr = median(g_ref, repeats),
                     mq = median(g_rq, repeats);
        printf("%-24s %7lld %4lld %4lld %9.1f %9.1f %6.2f %9.1f", s->name, (long long)s->m,
               (long long)s->n, (long long)s->k, mg, mr, mg / mr, mq);
        if (top > 0.0)
            printf(" %6.2f\n", mg / top);
        else
            printf(" %6s\n", "-");
        fflush(stdout);
        tq_qweights_free(&w);
        free(bias);
        free(rq);
        free(a);
        free(b);
        free(c1);
        free(c2);
    }
    return 0;
}
