/* The engine's memory, taken once at build: activation buffers shared by values whose lives
 * do not overlap, padded images, and the per-thread scratch of the convolutions (grown once
 * if a run has more threads than the build saw). Every buffer has 64 bytes of slack: im2col
 * copies whole 8-byte words. */
#include "engine_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int64_t val_bytes(const tq_val *v)
{
    return v->stride * (v->domain == TQ_VAL_CODES ? 1 : (int64_t)sizeof(int32_t));
}

/* Greedy by step: a value's buffer is free again after the last step that reads it; a new
 * output takes the smallest free buffer that fits, else grows the largest free one. */
static tq_status assign(tq_engine *e, tq_error *err)
{
    int cap = e->n_vals > 0 ? e->n_vals : 1;
    bool *busy = calloc((size_t)cap, sizeof *busy);
    bool *released = calloc((size_t)cap, sizeof *released);
    e->buf_cap = calloc((size_t)cap, sizeof *e->buf_cap);
    if (!busy || !released || !e->buf_cap) {
        free(busy);
        free(released);
        return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
    }
    for (int t = 0; t < e->n_steps; t++) {
        for (int v = 0; v < e->n_vals; v++)
            if (!released[v] && e->vals[v].first >= 0 && e->vals[v].first < t && e->vals[v].last < t) {
                busy[e->vals[v].buf] = false;
                released[v] = true;
            }
        int out = e->steps[t].out;
        if (out < 0 || e->vals[out].first != t) continue;
        int64_t need = val_bytes(&e->vals[out]);
        int best = -1;
        for (int b = 0; b < e->n_bufs; b++) {
            if (busy[b]) continue;
            bool fits = e->buf_cap[b] >= need, best_fits = best >= 0 && e->buf_cap[best] >= need;
            if (best < 0 || (fits && (!best_fits || e->buf_cap[b] < e->buf_cap[best])) ||
                (!fits && !best_fits && e->buf_cap[b] > e->buf_cap[best]))
                best = b;
        }
        if (best < 0) best = e->n_bufs++;
        if (e->buf_cap[best] < need) e->buf_cap[best] = need;
        busy[best] = true;
        e->vals[out].buf = best;
    }
    free(busy);
    free(released);
    return TQ_STATUS_OK;
}

static tq_status ensure_scratch(tq_engine *e, int threads, tq_error *err)
{
    if (threads <= e->n_scratch) return TQ_STATUS_OK;
    uint8_t **a = realloc(e->scr_a, (size_t)threads * sizeof *a);
    if (a) e->scr_a = a;
    int32_t **acc = realloc(e->scr_acc, (size_t)threads * sizeof *acc);
    if (acc) e->scr_acc = acc;
    if (!a || !acc) return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
    for (int t = e->n_scratch; t < threads; t++) {
        e->scr_a[t] = aligned_alloc(64, (size_t)((e->scratch_a + 63) / 64 * 64 + 64));
        e->scr_acc[t] = aligned_alloc(64, (size_t)((e->scratch_acc + 63) / 64 * 64));
        if (!e->scr_a[t] || !e->scr_acc[t]) {
            free(e->scr_a[t]);
            free(e->scr_acc[t]);
            return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
        }
        memset(e->scr_a[t], 0, (size_t)e->scratch_a + 64);
        e->n_scratch = t + 1;
    }
    return TQ_STATUS_OK;
}

tq_status tq_engine_scratch(tq_engine *e, tq_error *err)
{
    return ensure_scratch(e, omp_get_max_threads(), err);
}

tq_status tq_engine_alloc_buffers(tq_engine *e, tq_error *err)
{
    if (assign(e, err)) return err->status;
    if (!(e->bufs = calloc((size_t)(e->n_bufs > 0 ? e->n_bufs : 1), sizeof *e->bufs)))
        return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
    for (int b = 0; b < e->n_bufs; b++) {
        size_t bytes = (size_t)(e->buf_cap[b] * TQ_ENGINE_CHUNK + 63) / 64 * 64 + 64;
        /* zeroed: the padding of code rows is read by the product (times zero weights) */
        if (!(e->bufs[b] = aligned_alloc(64, bytes)))
            return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory for %zu bytes", bytes);
        memset(e->bufs[b], 0, bytes);
    }
    /* a thread's rows of a product: im2col bytes and int32 accumulators */
    int64_t padded = 0;
    for (int t = 0; t < e->n_steps; t++) {
        const tq_step *s = &e->steps[t];
        if (s->kind != TQ_STEP_QLAYER) continue;
        if (s->is_conv && s->pad) {
            const tq_val *in = &e->vals[s->in];
            int64_t bytes = (int64_t)(in->h + 2 * s->pad) * (in->w + 2 * s->pad) * in->c;
            if (bytes > padded) padded = bytes;
        }
        int64_t rows = s->is_conv ? TQ_ENGINE_ROW_BLOCK : TQ_ENGINE_CHUNK;
        if (s->is_conv && rows * s->w.k4 > e->scratch_a) e->scratch_a = rows * s->w.k4;
        if (rows * s->w.n * (int64_t)sizeof(int32_t) > e->scratch_acc)
            e->scratch_acc = rows * s->w.n * (int64_t)sizeof(int32_t);
    }
    if (e->scratch_a == 0) e->scratch_a = 64;
    if (padded) {
        size_t bytes = (size_t)(padded * TQ_ENGINE_CHUNK + 63) / 64 * 64 + 64;
        if (!(e->padded = aligned_alloc(64, bytes)))
            return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory for %zu bytes", bytes);
        memset(e->padded, 0, bytes);
    }
    return tq_engine_scratch(e, err);
}
