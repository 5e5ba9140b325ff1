/* Tensors, shapes, error records, the seeded RNG and the thread setting. */
#include "autograd.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

tq_status tq_fail(tq_error *err, tq_status status, const char *fmt, ...)
{
    if (err && err->status == TQ_STATUS_OK) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

void tq_error_clear(tq_error *err)
{
    err->status = TQ_STATUS_OK;
    err->msg[0] = '\0';
}

const char *tq_status_name(tq_status status)
{
    static const char *const names[] = {
        [TQ_STATUS_OK] = "ok",           [TQ_STATUS_ARG] = "bad argument",
        [TQ_STATUS_SHAPE] = "bad shape", [TQ_STATUS_IO] = "i/o error",
        [TQ_STATUS_FORMAT] = "bad format", [TQ_STATUS_NOMEM] = "out of memory",
        [TQ_STATUS_NUMERIC] = "non-finite value", [TQ_STATUS_INTERRUPTED] = "interrupted",
    };
    if ((unsigned)status < sizeof names / sizeof names[0]) return names[status];
    return "unknown status";
}

void tq_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "tinyqat: internal error at %s:%d: %s\n", file, line, cond);
    abort();
}

/* ---- RNG: splitmix64 seeding, xoroshiro128++ stepping. */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void tq_rng_seed(tq_rng *rng, uint64_t seed)
{
    rng->s[0] = splitmix64(&seed);
    rng->s[1] = splitmix64(&seed);
}

static uint64_t rng_next(tq_rng *rng)
{
    uint64_t s0 = rng->s[0], s1 = rng->s[1];
    uint64_t r = rotl(s0 + s1, 17) + s0;
    s1 ^= s0;
    rng->s[0] = rotl(s0, 49) ^ s1 ^ (s1 << 21);
    rng->s[1] = rotl(s1, 28);
    return r;
}

uint32_t tq_rng_u32(tq_rng *rng) { return (uint32_t)(rng_next(rng) >> 32); }

uint32_t tq_rng_below(tq_rng *rng, uint32_t n)
{
    /* Lemire's multiply-shift; the bias for n << 2^32 is negligible for our uses. */
    return (uint32_t)(((uint64_t)tq_rng_u32(rng) * n) >> 32);
}

float tq_rng_uniform(tq_rng *rng) { return (float)(tq_rng_u32(rng) >> 8) * (1.0f / 16777216.0f); }

float tq_rng_normal(tq_rng *rng)
{
    /* Box-Muller; u1 in (0, 1] so the log is finite. */
    float u1 = 1.0f - tq_rng_uniform(rng);
    float u2 = tq_rng_uniform(rng);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

/* ---- shapes and tensors */

int64_t tq_shape_numel(int32_t ndim, const int32_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

bool tq_shape_set(tq_tensor *t, int32_t ndim, const int32_t *shape)
{
    if (ndim < 1 || ndim > TQ_MAX_DIMS) return false;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 1) return false;
    t->ndim = ndim;
    for (int i = 0; i < TQ_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->numel = tq_shape_numel(ndim, shape);
    return true;
}

bool tq_same_shape(const tq_tensor *a, const tq_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *tq_shape_str(const tq_tensor *t, char *buf, size_t len)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, len - off, "(");
    for (int i = 0; i < t->ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? ",%d" : "%d", t->shape[i]);
    if (off < len) snprintf(buf + off, len - off, ")");
    return buf;
}

tq_tensor *tq_tensor_new(int32_t ndim, const int32_t *shape, bool with_grad)
{
    tq_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (!tq_shape_set(t, ndim, shape)) {
        free(t);
        return NULL;
    }
    t->data = calloc((size_t)t->numel, sizeof(float));
    t->grad = with_grad ? calloc((size_t)t->numel, sizeof(float)) : NULL;
    if (!t->data || (with_grad && !t->grad)) {
        tq_tensor_free(t);
        return NULL;
    }
    return t;
}

void tq_tensor_free(tq_tensor *t)
{
    if (!t) return;
    free(t->data);
    free(t->grad);
    free(t);
}

void tq_tensor_fill_uniform(tq_tensor *t, tq_rng *rng, float lo, float hi)
{
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = lo + (hi - lo) * tq_rng_uniform(rng);
}

/* ---- threads */

void tq_set_threads(int n)
{
    if (n < 1) n = 1;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int tq_get_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
