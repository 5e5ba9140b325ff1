/* u8 x s8 -> s32 matrix products over packed weights: packing, the portable path (which is
 * the reference), the run-time choice of path and the split over threads. */
#include "qgemm_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many multiply-adds (n16 * k4 per row) a product stays on the calling thread:
 * waking the pool costs tens of microseconds, a few million int8 products at VNNI speed. */
#define TQ_QGEMM_PARALLEL_MIN_MACS 8000000.0

tq_status tq_qweights_pack(const int8_t *b, int64_t n, int64_t k, tq_qweights *out,
                           tq_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 1 || k < 1) return tq_fail(err, TQ_STATUS_ARG, "qgemm: pack needs n, k >= 1");
    if (k > TQ_QGEMM_MAX_K)
        return tq_fail(err, TQ_STATUS_ARG,
                       "qgemm: k = %lld codes per output, at most %d (the int32 sums could "
                       "overflow)", (long long)k, TQ_QGEMM_MAX_K);
    int64_t k4 = (k + 3) / 4 * 4, n16 = (n + 15) / 16 * 16;
    size_t bytes = (size_t)(n16 * k4);
    out->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
    out->row_sum = malloc((size_t)n * sizeof *out->row_sum);
    if (!out->data || !out->row_sum) {
        tq_qweights_free(out);
        return tq_fail(err, TQ_STATUS_NOMEM, "qgemm: out of memory packing %lldx%lld weights",
                       (long long)n, (long long)k);
    }
    memset(out->data, 0, bytes);
    for (int64_t j = 0; j < n; j++) {
        int32_t sum = 0;
        for (int64_t kk = 0; kk < k; kk++) {
            int8_t v = b[j * k + kk];
            sum += v;
            int64_t g = j / 16, lane = j % 16, s = kk / 4;
            out->data[(g * (k4 / 4) + s) * 64 + lane * 4 + kk % 4] = v;
        }
        out->row_sum[j] = sum;
    }
    out->n = n;
    out->k = k;
    out->k4 = k4;
    out->n16 = n16;
    return TQ_STATUS_OK;
}

void tq_qweights_free(tq_qweights *w)
{
    free(w->data);
    free(w->row_sum);
    memset(w, 0, sizeof *w);
}

/* ---- the portable path: R rows of a by one group of 16 outputs, the 16 x R sums in local
 * arrays the compiler keeps in vector registers. */
enum { PR = 4 };

static inline __attribute__((always_inline)) void portable_tile(
    const int R, int64_t steps, const uint8_t *a, int64_t lda, const int8_t *wg,
    int32_t acc[PR][16])
{
    for (int r = 0; r < R; r++) memset(acc[r], 0, sizeof acc[r]);
    for (int64_t s = 0; s < steps; s++) {
        const int8_t *b = wg + s * 64;
        for (int r = 0; r < R; r++) {
            const uint8_t *x = a + r * lda + 4 * s;
            const int32_t x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
            for (int j = 0; j < 16; j++)
                acc[r][j] += x0 * b[4 * j] + x1 * b[4 * j + 1] + x2 * b[4 * j + 2] +
                             x3 * b[4 * j + 3];
        }
    }
}

static void portable_rows(int64_t i0, int64_t i1, const uint8_t *a, int64_t lda,
                          const tq_qweights *w, const tq_qepilogue *ep, void *out, int64_t ldo)
{
    const int64_t steps = w->k4 / 4, groups = w->n16 / 16;
    for (int64_t i = i0; i < i1; i += PR) {
        const int rows = i1 - i < PR ? (int)(i1 - i) : PR;
        for (int64_t g = 0; g < groups; g++) {
            int32_t acc[PR][16];
            const int8_t *wg = w->data + g * steps * 64;
            if (rows == PR)
                portable_tile(PR, steps, a + i * lda, lda, wg, acc);
            else
                portable_tile(rows, steps, a + i * lda, lda, wg, acc);
            const int64_t j0 = 16 * g, nj = w->n - j0 < 16 ? w->n - j0 : 16;
            for (int r = 0; r < rows; r++) {
                if (!ep) {
                    memcpy((int32_t *)out + (i + r) * ldo + j0, acc[r], (size_t)nj * 4);
                    continue;
                }
                uint8_t *y = (uint8_t *)out + (i + r) * ldo + j0;
                for (int64_t j = 0; j < nj; j++)
                    y[j] = (uint8_t)tq_qepilogue_value(acc[r][j], j0 + j, ep);
            }
        }
    }
}

/* ---- the choice of path */

typedef enum backend { BACKEND_PORTABLE, BACKEND_AVX2, BACKEND_VNNI } backend;
static const char *const backend_name[] = {"portable", "avx2", "vnni"};
static backend g_backend; /* written once under pthread_once, read-only afterwards */
static pthread_once_t g_backend_once = PTHREAD_ONCE_INIT;

static void choose_backend(void)
{
    const char *env = getenv("TQ_QGEMM");
    g_backend = BACKEND_PORTABLE;
    if (env && strcmp(env, "portable") == 0) return;
#if TQ_HAVE_VNNI
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        !(env && strcmp(env, "avx2") == 0))
        g_backend = BACKEND_VNNI;
    else if (__builtin_cpu_supports("avx2"))
        g_backend = BACKEND_AVX2;
#endif
}

const char *tq_qgemm_backend(void)
{
    pthread_once(&g_backend_once, choose_backend);
    return backend_name[g_backend];
}

typedef void rows_fn(int64_t i0, int64_t i1, const uint8_t *a, int64_t lda,
                     const tq_qweights *w, const tq_qepilogue *ep, void *out, int64_t ldo);

/* Splits the rows over the pool when the product is large enough; integer sums are exact,
 * so any split gives the same bits. */
static void run(rows_fn *rows, int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w,
                const tq_qepilogue *ep, void *out, int64_t ldo)
{
    if (m <= 0) return;
    TQ_ASSERT(lda >= w->k4 && ldo >= w->n);
    if (ep) {
        const int32_t min = ep->type == TQ_QOUT_U8 ? 0 : -128,
                      max = ep->type == TQ_QOUT_U8 ? 255 : 127;
        TQ_ASSERT(ep->rq && ep->lo <= ep->hi);
        TQ_ASSERT((int64_t)ep->lo + ep->offset >= min && (int64_t)ep->hi + ep->offset <= max);
    }
    int nt = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && (double)m * w->n16 * w->k4 >= TQ_QGEMM_PARALLEL_MIN_MACS)
        nt = omp_get_max_threads();
#endif
    const int64_t unit = 16, units = (m + unit - 1) / unit;
    if (nt > units) nt = (int)units;
    if (nt <= 1) {
        rows(0, m, a, lda, w, ep, out, ldo);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
#else
        const int t = 0, team = 1;
#endif
        const int64_t lo = units * t / team * unit, hi_u = units * (t + 1) / team * unit,
                      hi = hi_u < m ? hi_u : m;
        if (lo < hi) rows(lo, hi, a, lda, w, ep, out, ldo);
    }
}

static rows_fn *dispatched(void)
{
    pthread_once(&g_backend_once, choose_backend);
#if TQ_HAVE_VNNI
    if (g_backend == BACKEND_VNNI) return tq_qgemm_vnni_rows;
#endif
#if TQ_HAVE_AVX2
    if (g_backend == BACKEND_AVX2) return tq_qgemm_avx2_rows;
#endif
    return portable_rows;
}

void tq_qgemm_ref(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w, int32_t *c,
                  int64_t ldc)
{
    run(portable_rows, m, a, lda, w, NULL, c, ldc);
}

void tq_qgemm(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w, int32_t *c,
              int64_t ldc)
{
    run(dispatched(), m, a, lda, w, NULL, c, ldc);
}

void tq_qgemm_requant_ref(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w,
                          const tq_qepilogue *ep, void *out, int64_t ldo)
{
    TQ_ASSERT(ep);
    run(portable_rows, m, a, lda, w, ep, out, ldo);
}

void tq_qgemm_requant(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w,
                      const tq_qepilogue *ep, void *out, int64_t ldo)
{
    TQ_ASSERT(ep);
    run(dispatched(), m, a, lda, w, ep, out, ldo);
}
