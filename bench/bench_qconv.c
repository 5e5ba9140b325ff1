/* The integer engine's direct convolutions (tq_qconv, the AVX2 path) on the convolutions and
 * Linear layers of LeNet-5 and ResNet-20, one image (one batch of rows for a Linear) at a
 * time on one thread, requantized to uint8 codes; GOP/s against the AVX2 peak of the inner
 * loop's instruction mix, measured here by register-only loops. Rates per second of the
 * process's CPU time as well as of the wall clock, so that a loaded machine still gives
 * comparable figures (the CPU-time ones).
 * Usage: bench_qconv [REPEATS]   (default 5)
 *   ->  the peaks, then one line per layer: name, outputs x channels x taps, GOP/s (wall,
 *       CPU), fraction of the vpmaddwd + vpaddd peak */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"
#include "engine_internal.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_PEAK 1
#define R12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
#define SINK(i) sink = _mm256_add_epi32(sink, a##i);
/* 12 independent accumulators: vpmaddwd alone, and vpmaddwd + vpaddd (what one pair of taps
 * against 8 channels costs in the kernel, without its loads). GOP/s per CPU second. */
#define PEAK(name, BODY)                                                                       \
    __attribute__((target("avx2"), noinline)) static double name(long iters)                 \
    {                                                                                          \
        R12(DECL)                                                                              \
        const __m256i x = _mm256_set1_epi32(0x00030001), b = _mm256_set1_epi32(0x00050007);   \
        const double t0 = cpu_now();                                                           \
        for (long i = 0; i < iters; i++) { R12(BODY) }                                         \
        const double t = cpu_now() - t0;                                                       \
        __m256i sink = _mm256_setzero_si256();                                                 \
        R12(SINK)                                                                              \
        int32_t out[8];                                                                        \
        _mm256_storeu_si256((__m256i *)out, sink);                                             \
        if (out[0] == 42) printf(" ");                                                         \
        return 32.0 * 12.0 * (double)iters / t / 1e9;                                          \
    }
#define MADD(i) __asm__ volatile("vpmaddwd %1, %2, %0" : "=x"(a##i) : "x"(x), "x"(b));
#define MADD_ADD(i)                                                                            \
    {                                                                                          \
        __m256i p;                                                                             \
        __asm__ volatile("vpmaddwd %1, %2, %0" : "=x"(p) : "x"(x), "x"(b));                   \
        __asm__ volatile("vpaddd %1, %0, %0" : "+x"(a##i) : "x"(p));                          \
    }
PEAK(peak_madd, MADD)
PEAK(peak_madd_add, MADD_ADD)
#else
#define HAVE_PEAK 0
#endif

typedef struct shape {
    const char *name;
    int64_t n, C, h, w, k, stride, pad; /* a Linear: k = 1, h = w = 1, C = inputs */
    int64_t rows;                       /* a Linear's rows (images) per call */
} shape;

/* Output channels, input channels, input size, kernel, stride, padding. */
static const shape shapes[] = {
    {"lenet5 conv1", 6, 1, 28, 28, 5, 1, 2, 0},
    {"lenet5 conv2", 16, 6, 14, 14, 5, 1, 0, 0},
    {"lenet5 fc1", 120, 400, 1, 1, 1, 1, 0, 64},
    {"lenet5 fc2", 84, 120, 1, 1, 1, 1, 0, 64},
    {"resnet20 conv1 3->16", 16, 3, 32, 32, 3, 1, 1, 0},
    {"resnet20 3x3 16 @32", 16, 16, 32, 32, 3, 1, 1, 0},
    {"resnet20 3x3 16->32 s2", 32, 16, 32, 32, 3, 2, 1, 0},
    {"resnet20 3x3 32 @16", 32, 32, 16, 16, 3, 1, 1, 0},
    {"resnet20 1x1 16->32 s2", 32, 16, 32, 32, 1, 2, 0, 0},
    {"resnet20 3x3 64 @8", 64, 64, 8, 8, 3, 1, 1, 0},
};

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: bench_qconv [REPEATS (1..99)]\n"
               "GOP/s of the integer engine's direct convolutions (tq_qconv) on LeNet-5's and\n"
               "ResNet-20's layers, one thread, against the AVX2 peak of vpmaddwd + vpaddd.\n");
        return 0;
    }
    const int repeats = argc > 1 ? atoi(argv[1]) : 5;
    if (argc > 2 || repeats < 1 || repeats > 99) {
        fprintf(stderr, "usage: bench_qconv [REPEATS (1..99)]\n");
        return 2;
    }
    double top = 0.0;
#if HAVE_PEAK
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        double p1[99], p2[99];
        for (int r = 0; r < repeats; r++) {
            p1[r] = peak_madd(20000000);
            p2[r] = peak_madd_add(20000000);
        }
        top = median(p2, repeats);
        printf("# AVX2 peak per CPU second (registers only, 12 accumulators): vpmaddwd %.0f GOP/s, "
               "vpmaddwd + vpaddd %.0f GOP/s\n", median(p1, repeats), top);
    }
#endif
    printf("# tq_qconv: %s path, 1 thread, median of %d\n",
           tq_qconv_available() ? "AVX2" : "plain C", repeats);
    printf("%-24s %14s %9s %9s %6s\n", "layer", "rows x n x K", "GOP/s", "cpu GOP/s", "peak");
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        const bool linear = s->rows > 0;
        const int64_t hp = s->h + 2 * s->pad, wp = s->w + 2 * s->pad;
        const int64_t oh = (hp - s->k) / s->stride + 1, ow = (wp - s->k) / s->stride + 1;
        const int64_t K = s->k * s->k * s->C, K2 = (K + 1) / 2 * 2;
        const int64_t rows = linear ? s->rows : oh * ow;
        const int64_t xs = (linear ? rows * K2 : hp * wp * s->C) + 16;
        int16_t *x = calloc((size_t)xs, sizeof *x);
        int8_t *codes = malloc((size_t)(s->n * K));
        uint8_t *out = malloc((size_t)(rows * s->n) + 64);
        int32_t *mult = calloc((size_t)(s->n + 8), sizeof *mult);
        int64_t *bias = calloc((size_t)(s->n + 8), sizeof *bias);
        if (!x || !codes || !out || !mult || !bias) {
            fprintf(stderr, "bench_qconv: %s: out of memory\n", s->name);
            return 1;
        }
        for (int64_t i = 0; i < xs - 16; i++) x[i] = (int16_t)tq_rng_below(&rng, 256);
        for (int64_t i = 0; i < s->n * K; i++) codes[i] = (int8_t)((int)tq_rng_below(&rng, 255) - 127);
        tq_qconv_weights w;
        tq_error err = {0};
        if (tq_qconv_weights_pack(codes, s->n, linear ? 1 : (int32_t)s->k, linear ? K : s->k * s->C,
                                  &w, &err)) {
            fprintf(stderr, "bench_qconv: %s: %s\n", s->name, err.msg);
            return 1;
        }
        /* a layer followed by a ReLU, to uint8 codes: factors about 2^-12 at shift 42 */
        for (int64_t o = 0; o < s->n; o++) {
            mult[o] = (1 << 30) - (int32_t)o * 977;
            bias[o] = ((int64_t)1 << 62) + ((int64_t)1 << 41);
        }
        const tq_qconv_epilogue ep = {.kind = TQ_QCONV_CODES, .mult = mult, .bias = bias,
                                      .shift = 42, .offset = ((int64_t)1 << 62) >> 42,
                                      .mask = ((uint64_t)1 << 42) - 1, .lo = 0, .hi = 255};
        const tq_qconv_geom g = linear
            ? (tq_qconv_geom){.rows = rows, .out_w = 1, .line_step = K2, .out_stride = s->n}
            : (tq_qconv_geom){.rows = rows, .out_w = (int32_t)ow, .pixel_step = s->stride * s->C,
                              .line_step = s->stride * wp * s->C, .tap_row_step = wp * s->C,
                              .out_stride = s->n};
        /* about 20 ms of work per timed run */
        double t0 = now();
        tq_qconv_run(&w, &ep, x, &g, out);
        const double one = now() - t0;
        const int iters = one > 0.02 ? 1 : (int)(0.02 / (one > 1e-7 ? one : 1e-7));
        const double ops = 2.0 * (double)rows * (double)s->n * (double)K * iters;
        double gw[99], gc[99];
        for (int r = 0; r < repeats; r++) {
            const double w0 = now(), c0 = cpu_now();
            for (int i = 0; i < iters; i++) tq_qconv_run(&w, &ep, x, &g, out);
            gc[r] = ops / (cpu_now() - c0) / 1e9;
            gw[r] = ops / (now() - w0) / 1e9;
        }
        const double mc = median(gc, repeats);
        char dims[32];
        snprintf(dims, sizeof dims, "%lldx%lldx%lld", (long long)rows, (long long)s->n, (long long)K);
        printf("%-24s %14s %9.1f %9.1f", s->name, dims, median(gw, repeats), mc);
        if (top > 0.0) printf(" %6.2f\n", mc / top);
        else printf(" %6s\n", "-");
        fflush(stdout);
        tq_qconv_weights_free(&w);
        free(x);
        free(codes);
        free(out);
        free(mult);
        free(bias);
    }
    return 0;
}
