/* Running the program: chunks of images through the steps in order, optionally copying out
 * each Linear/Conv2d's input codes in fake quant's layout; and the program described. */
#include "engine_internal.h"

#include <string.h>

/* Codes of value v for images [0, n) of the chunk into dst, (C,H,W) order per image. */
static void trace_codes(const tq_engine *e, const tq_val *v, int64_t n, int16_t *dst)
{
    const int64_t C = v->c, HW = (int64_t)v->h * v->w;
    for (int64_t b = 0; b < n; b++) {
        const uint8_t *src = tq_val_codes(e, v, b);
        int16_t *d = dst + b * v->numel;
        for (int64_t p = 0; p < HW; p++)
            for (int64_t c = 0; c < C; c++) d[c * HW + p] = (int16_t)(src[p * C + c] - v->zp);
    }
}

tq_status tq_engine_run_traced(tq_engine *e, const uint8_t *images, int64_t n, float *logits,
                               int16_t *const *codes, tq_error *err)
{
    if (n < 0 || (n > 0 && (!images || !logits)))
        return tq_fail(err, TQ_STATUS_ARG, "engine: run needs images and logits for %lld images",
                       (long long)n);
    if (tq_engine_scratch(e, err)) return err->status;
    const int64_t image_bytes = (int64_t)e->c * e->h * e->w;
    for (int64_t base = 0; base < n; base += TQ_ENGINE_CHUNK) {
        const int64_t nb = n - base < TQ_ENGINE_CHUNK ? n - base : TQ_ENGINE_CHUNK;
        for (int t = 0; t < e->n_steps; t++) {
            const tq_step *s = &e->steps[t];
            if (codes && s->kind == TQ_STEP_QLAYER && codes[s->qlayer]) {
                const tq_val *v = &e->vals[s->in];
                trace_codes(e, v, nb, codes[s->qlayer] + base * v->numel);
            }
            tq_engine_step_run(e, s, images + base * image_bytes, nb, logits + base * e->classes);
        }
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
