/* The engine's memory: activation buffers shared by values whose lives do not overlap,
 * padded images and the per-thread scratch of the convolutions, in workspaces taken at build
 * and when a run first has more chunks to run at once (or more threads) than before. Every
 * buffer has 64 bytes of slack: im2col copies whole 8-byte words. */
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

static void free_workspace(tq_workspace *ws, int n_bufs)
{
    for (int b = 0; ws->bufs && b < n_bufs; b++) free(ws->bufs[b]);
    for (int t = 0; t < ws->n_scratch; t++) {
        free(ws->scr_a[t]);
        free(ws->scr_acc[t]);
    }
    free(ws->bufs);
    free(ws->padded);
    free(ws->scr_a);
    free(ws->scr_acc);
    memset(ws, 0, sizeof *ws);
}

/* Zeroed memory of at least `bytes` plus 64 bytes of slack, 64-byte aligned. */
static void *zeroed(int64_t bytes)
{
    size_t n = (size_t)(bytes + 63) / 64 * 64 + 64;
    void *p = aligned_alloc(64, n);
    if (p) memset(p, 0, n);
    return p;
}

static tq_status init_workspace(const tq_engine *e, tq_workspace *ws, int threads, tq_error *err)
{
    memset(ws, 0, sizeof *ws);
    ws->bufs = calloc((size_t)(e->n_bufs > 0 ? e->n_bufs : 1), sizeof *ws->bufs);
    ws->scr_a = calloc((size_t)threads, sizeof *ws->scr_a);
    ws->scr_acc = calloc((size_t)threads, sizeof *ws->scr_acc);
    bool ok = ws->bufs && ws->scr_a && ws->scr_acc;
    for (int b = 0; ok && b < e->n_bufs; b++)
        ok = (ws->bufs[b] = zeroed(e->buf_cap[b] * e->chunk)) != NULL;
    if (ok && e->padded_bytes) ok = (ws->padded = zeroed(e->padded_bytes * e->chunk)) != NULL;
    for (int t = 0; ok && t < threads; t++) {
        ws->scr_a[t] = zeroed(e->scratch_a);
        ws->scr_acc[t] = zeroed(e->scratch_acc);
        ws->n_scratch = t + 1;
        ok = ws->scr_a[t] && ws->scr_acc[t];
    }
    if (ok) return TQ_STATUS_OK;
    free_workspace(ws, e->n_bufs);
    return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory for a workspace");
}

tq_status tq_engine_workspaces(tq_engine *e, int n, int threads, tq_error *err)
{
    if (n <= e->n_ws && (e->n_ws == 0 || e->ws[0].n_scratch >= threads)) return TQ_STATUS_OK;
    /* all anew, with scratch for this many threads (rare: the thread count went up) */
    if (e->n_ws && e->ws[0].n_scratch < threads) tq_engine_free_workspaces(e);
    tq_workspace *ws = realloc(e->ws, (size_t)n * sizeof *ws);
    if (!ws) return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
    e->ws = ws;
    for (; e->n_ws < n; e->n_ws++)
        if (init_workspace(e, &e->ws[e->n_ws], threads, err)) return err->status;
    return TQ_STATUS_OK;
}

void tq_engine_free_workspaces(tq_engine *e)
{
    for (int i = 0; i < e->n_ws; i++) free_workspace(&e->ws[i], e->n_bufs);
    free(e->ws);
    e->ws = NULL;
    e->n_ws = 0;
}

tq_status tq_engine_plan_buffers(tq_engine *e, tq_error *err)
{
    if (assign(e, err)) return err->status;
    int64_t per_image = 0;
    for (int b = 0; b < e->n_bufs; b++) per_image += e->buf_cap[b];
    e->chunk = TQ_ENGINE_CHUNK;
    while (e->chunk > TQ_ENGINE_MIN_CHUNK && e->chunk * per_image > TQ_ENGINE_CHUNK_BYTES) e->chunk /= 2;
    /* a thread's rows of a product: im2col bytes and int32 accumulators */
    for (int t = 0; t < e->n_steps; t++) {
        const tq_step *s = &e->steps[t];
        if (s->kind != TQ_STEP_QLAYER) continue;
        if (s->is_conv && s->pad) {
            const tq_val *in = &e->vals[s->in];
            int64_t bytes = (int64_t)(in->h + 2 * s->pad) * (in->w + 2 * s->pad) * in->c;
            if (bytes > e->padded_bytes) e->padded_bytes = bytes;
        }
        int64_t rows = s->is_conv ? TQ_ENGINE_ROW_BLOCK : TQ_ENGINE_CHUNK;
        if (s->is_conv && rows * s->w.k4 > e->scratch_a) e->scratch_a = rows * s->w.k4;
        const int64_t direct = tq_engine_direct_scratch(e, s);
        if (direct > e->scratch_a) e->scratch_a = direct;
        if (rows * s->w.n * (int64_t)sizeof(int32_t) > e->scratch_acc)
            e->scratch_acc = rows * s->w.n * (int64_t)sizeof(int32_t);
    }
    /* one workspace now, so that a model too large for memory fails at build */
    return tq_engine_workspaces(e, 1, omp_get_max_threads(), err);
}
