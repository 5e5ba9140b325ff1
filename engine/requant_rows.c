/* Requantizing a product's int32 sums, a run of outputs at a time: portable C, and the same
 * C compiled for AVX2 and chosen at run time, which the compiler vectorizes four 64-bit
 * lanes wide (the x86-64-v2 baseline has two). Integer arithmetic: both give the same bits. */
#include "engine_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The rounded value of a positive sum u at `shift` fraction bits, half to even (a tie has no
 * fraction bits left after adding the half; its odd result goes down one), less offset. */
static inline __attribute__((always_inline)) int64_t round_even(uint64_t u, int shift,
                                                                uint64_t mask, int64_t offset)
{
    const uint64_t tie = (u & mask) == 0;
    return (int64_t)((u >> shift) & ~tie) - offset;
}

/* y[j] from a[j] for j < len (len <= the period of q's arrays): the multiply-add, the shift
 * of a sum kept positive, the clamp. One body for both paths. */
static inline __attribute__((always_inline)) void codes_body(const int32_t *restrict a,
                                                             int64_t len, const tq_rowquant *q,
                                                             int64_t lo, int64_t hi, int32_t zp,
                                                             uint8_t *restrict y)
{
    const int32_t *restrict mult = q->mult, *restrict corr = q->corr;
    const int64_t *restrict bias = q->bias;
    const int shift = q->shift;
    const int64_t offset = q->offset;
    const uint64_t mask = q->mask;
    for (int64_t j = 0; j < len; j++) {
        int64_t t = (int64_t)(a[j] - corr[j]) * mult[j] + bias[j];
        int64_t v = round_even((uint64_t)t, shift, mask, offset);
        v = v < lo ? lo : v > hi ? hi : v;
        y[j] = (uint8_t)(v + zp);
    }
}

static inline __attribute__((always_inline)) void fine_body(const int32_t *restrict a,
                                                            int64_t len, const tq_rowquant *q,
                                                            int64_t lo, int32_t *restrict y)
{
    const int32_t *restrict mult = q->mult, *restrict corr = q->corr;
    const int64_t *restrict bias = q->bias;
    const int shift = q->shift;
    const int64_t offset = q->offset, hi = INT32_MAX;
    const uint64_t mask = q->mask;
    for (int64_t j = 0; j < len; j++) {
        int64_t t = (int64_t)(a[j] - corr[j]) * mult[j] + bias[j];
        int64_t v = round_even((uint64_t)t, shift, mask, offset);
        v = v < lo ? lo : v > hi ? hi : v;
        y[j] = (int32_t)v;
    }
}

static inline __attribute__((always_inline)) void add_body(const int32_t *restrict a,
                                                           const int32_t *restrict b, int64_t n,
                                                           const tq_addquant *q, int64_t lo,
                                                           int64_t hi, int32_t zp,
                                                           uint8_t *restrict codes,
                                                           int32_t *restrict fine)
{
    const int64_t ma = q->ma, mb = q->mb, bias = q->bias, offset = q->offset;
    const int shift = q->shift;
    const uint64_t mask = q->mask;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = a[i] * ma + b[i] * mb + bias;
        int64_t v = round_even((uint64_t)t, shift, mask, offset);
        v = v < lo ? lo : v > hi ? hi : v;
        if (codes) codes[i] = (uint8_t)(v + zp);
        else fine[i] = (int32_t)v;
    }
}

void tq_rowquant_codes_ref(const int32_t *a, int64_t len, const tq_rowquant *q, int64_t lo,
                           int64_t hi, int32_t zp, uint8_t *y)
{
    codes_body(a, len, q, lo, hi, zp, y);
}

void tq_rowquant_fine_ref(const int32_t *a, int64_t len, const tq_rowquant *q, int64_t lo,
                          int32_t *y)
{
    fine_body(a, len, q, lo, y);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2 1
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__)
#define TQ_AVX2 __attribute__((target("avx2"), optimize("O3")))
#else
#define TQ_AVX2 __attribute__((target("avx2")))
#endif
static TQ_AVX2 void codes_avx2(const int32_t *a, int64_t len, const tq_rowquant *q, int64_t lo,
                               int64_t hi, int32_t zp, uint8_t *y)
{
    codes_body(a, len, q, lo, hi, zp, y);
}

static TQ_AVX2 void fine_avx2(const int32_t *a, int64_t len, const tq_rowquant *q, int64_t lo,
                              int32_t *y)
{
    fine_body(a, len, q, lo, y);
}

static TQ_AVX2 void add_codes_avx2(const int32_t *a, const int32_t *b, int64_t n,
                                   const tq_addquant *q, int64_t lo, int64_t hi, int32_t zp,
                                   uint8_t *y)
{
    add_body(a, b, n, q, lo, hi, zp, y, NULL);
}

static TQ_AVX2 void add_fine_avx2(const int32_t *a, const int32_t *b, int64_t n,
                                  const tq_addquant *q, int64_t lo, int32_t *y)
{
    add_body(a, b, n, q, lo, INT32_MAX, 0, NULL, y);
}
#else
#define HAVE_AVX2 0
#endif

/* AVX2 where the CPU has it, unless TQ_QGEMM=portable asks for the portable products. */
static bool g_avx2;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
#if HAVE_AVX2
    const char *env = getenv("TQ_QGEMM");
    __builtin_cpu_init();
    g_avx2 = __builtin_cpu_supports("avx2") && !(env && strcmp(env, "portable") == 0);
#endif
}

void tq_rowquant_codes(const int32_t *a, int64_t len, const tq_rowquant *q, int64_t lo,
                       int64_t hi, int32_t zp, uint8_t *y)
{
    pthread_once(&g_once, choose);
#if HAVE_AVX2
    if (g_avx2) {
        codes_avx2(a, len, q, lo, hi, zp, y);
        return;
    }
#endif
    codes_body(a, len, q, lo, hi, zp, y);
}

void tq_rowquant_fine(const int32_t *a, int64_t len, const tq_rowquant *q, int64_t lo,
                      int32_t *y)
{
    pthread_once(&g_once, choose);
#if HAVE_AVX2
    if (g_avx2) {
        fine_avx2(a, len, q, lo, y);
        return;
    }
#endif
    fine_body(a, len, q, lo, y);
}

void tq_add_codes(const int32_t *a, const int32_t *b, int64_t n, const tq_addquant *q, int64_t lo,
                  int64_t hi, int32_t zp, uint8_t *y)
{
    pthread_once(&g_once, choose);
#if HAVE_AVX2
    if (g_avx2) {
        add_codes_avx2(a, b, n, q, lo, hi, zp, y);
        return;
    }
#endif
    add_body(a, b, n, q, lo, hi, zp, y, NULL);
}

void tq_add_fine(const int32_t *a, const int32_t *b, int64_t n, const tq_addquant *q, int64_t lo,
                 int32_t *y)
{
    pthread_once(&g_once, choose);
#if HAVE_AVX2
    if (g_avx2) {
        add_fine_avx2(a, b, n, q, lo, y);
        return;
    }
#endif
    add_body(a, b, n, q, lo, INT32_MAX, 0, NULL, y);
}
