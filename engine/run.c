/* Running the program: chunks of images through the steps in order, optionally copying out
 * each Linear/Conv2d's input codes in fake quant's layout; and the program described. */
#include "engine_internal.h"

#include <omp.h>
#include <string.h>

/* Codes of value v for images [0, n) of the chunk into dst, (C,H,W) order per image. */
static void trace_codes(const tq_workspace *ws, const tq_val *v, int64_t n, int16_t *dst)
{
    const int64_t C = v->c, HW = (int64_t)v->h * v->w;
    for (int64_t b = 0; b < n; b++) {
        const uint8_t *src = tq_val_codes(ws, v, b);
        int16_t *d = dst + b * v->numel;
        for (int64_t p = 0; p < HW; p++)
            for (int64_t c = 0; c < C; c++) d[c * HW + p] = (int16_t)(src[p * C + c] - v->zp);
    }
}

/* Images [base, base + n) through every step in workspace ws. */
static void run_chunk(const tq_engine *e, tq_workspace *ws, const uint8_t *images, int64_t base,
                      int64_t n, float *logits, int16_t *const *codes)
{
    const int64_t image_bytes = (int64_t)e->c * e->h * e->w;
    for (int t = 0; t < e->n_steps; t++) {
        const tq_step *s = &e->steps[t];
        if (codes && s->kind == TQ_STEP_QLAYER && codes[s->qlayer]) {
            const tq_val *v = &e->vals[s->in];
            trace_codes(ws, v, n, codes[s->qlayer] + base * v->numel);
        }
        tq_engine_step_run(e, ws, s, images + base * image_bytes, n, logits + base * e->classes);
    }
}

/* Chunks are independent: several go to threads at once, each in its own workspace, one
 * fork for the whole run; a single chunk runs its steps' own parallel loops instead. The
 * bits are the same either way. */
tq_status tq_engine_run_traced(tq_engine *e, const uint8_t *images, int64_t n, float *logits,
                               int16_t *const *codes, tq_error *err)
{
    if (n < 0 || (n > 0 && (!images || !logits)))
        return tq_fail(err, TQ_STATUS_ARG, "engine: run needs images and logits for %lld images",
                       (long long)n);
    const int64_t chunks = (n + e->chunk - 1) / e->chunk;
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    const int at_once = chunks < threads ? (int)chunks : threads;
    if (tq_engine_workspaces(e, at_once > 1 ? at_once : 1, threads, err)) return err->status;
    if (at_once <= 1) {
        for (int64_t k = 0; k < chunks; k++) {
            const int64_t base = k * e->chunk;
            run_chunk(e, &e->ws[0], images, base, n - base < e->chunk ? n - base : e->chunk,
                      logits, codes);
        }
        return TQ_STATUS_OK;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(at_once)
    for (int64_t k = 0; k < chunks; k++) {
        const int64_t base = k * e->chunk;
        run_chunk(e, &e->ws[omp_get_thread_num()], images, base,
                  n - base < e->chunk ? n - base : e->chunk, logits, codes);
    }
    return TQ_STATUS_OK;
}

tq_status tq_engine_run(tq_engine *e, const uint8_t *images, int64_t n, float *logits,
                        tq_error *err)
{
    return tq_engine_run_traced(e, images, n, logits, NULL, err);
}

const char *tq_engine_backend(void) { return tq_qgemm_backend(); }

static const char *val_str(const tq_engine *e, int id, char *buf, size_t len)
{
    if (id < 0) return snprintf(buf, len, "float logits"), buf;
    const tq_val *v = &e->vals[id];
    if (v->domain == TQ_VAL_CODES)
        snprintf(buf, len, "%s codes (%d,%d,%d) at scale %.6g", v->fmt, v->c, v->h, v->w, v->unit);
    else
        snprintf(buf, len, "int32 (%d,%d,%d) at unit %.6g", v->c, v->h, v->w, v->unit);
    return buf;
}

void tq_engine_describe(const tq_engine *e, FILE *out)
{
    static const char *kinds[] = {"table", "product", "to codes", "relu", "maxpool",
                                  "avgpool", "global avgpool", "batch norm", "add"};
    char a[96], b[96], c[96];
    for (int t = 0; t < e->n_steps; t++) {
        const tq_step *s = &e->steps[t];
        char kind[32];
        snprintf(kind, sizeof kind, "%s%s", kinds[s->kind], s->relu ? " + relu" : "");
        fprintf(out, "  %-18s %-16s ", s->name, kind);
        if (s->kind == TQ_STEP_INPUT)
            fprintf(out, "pixels -> %s\n", val_str(e, s->out, a, sizeof a));
        else if (s->kind == TQ_STEP_QLAYER)
            fprintf(out, "%s x %s weights (%d-bit packed)%s -> %s\n", val_str(e, s->in, a, sizeof a),
                    s->wfmt, s->wcodes.bits, s->merged_bn ? ", batch norm in the requantization" : "",
                    val_str(e, s->out, b, sizeof b));
        else if (s->kind == TQ_STEP_ADD)
            fprintf(out, "%s + %s -> %s\n", val_str(e, s->in, a, sizeof a),
                    val_str(e, s->in2, b, sizeof b), val_str(e, s->out, c, sizeof c));
        else
            fprintf(out, "%s -> %s\n", val_str(e, s->in, a, sizeof a), val_str(e, s->out, b, sizeof b));
    }
}
