/* The integer engine against fake quant on the same images: predicted classes, logits, and
 * the input codes of every Linear/Conv2d (fake quant's from the quantizer on its float input,
 * the engine's as it computed them). */
#include "eval_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cmp_bufs {
    float *x, *logits, *fq, *scaled;
    int32_t *labels;
    int16_t **codes;
    bool *clean, *dirty; /* per image of the batch: all codes so far agree; some in this layer differ */
} cmp_bufs;

static int32_t argmax(const float *z, int32_t k)
{
    int32_t best = 0;
    for (int32_t j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    return best;
}

/* Fake quant's input codes of qlayer qi in the forward just run, against the engine's. */
static tq_status compare_codes(tq_model *m, int qi, const int16_t *engine_codes, int64_t n,
                               int64_t numel, cmp_bufs *b, tq_int_compare *out, tq_error *err)
{
    const tq_qlayer *l = tq_model_qlayer(m, qi);
    tq_tensor *x = tq_model_qlayer_input(m, qi);
    if (!x || x->numel != n * numel)
        return tq_fail(err, TQ_STATUS_SHAPE, "compare: layer %s: fake quant's input has %lld "
                       "values, the engine's %lld", l->name, x ? (long long)x->numel : 0LL,
                       (long long)(n * numel));
    tq_tensor t = *x;
    if (l->input_mul) { /* as the layer does: x * mul[c] (channel = dimension 1), then codes */
        const int64_t C = x->shape[1], inner = numel / C;
        for (int64_t i = 0; i < x->numel; i++)
            b->scaled[i] = x->data[i] * l->input_mul->data[(i / inner) % C];
        t.data = b->scaled;
    }
    float scale;
    if (tq_quantizer_codes(l->input_q, &t, b->fq, &scale, err)) return err->status;
    memset(b->dirty, 0, (size_t)n * sizeof *b->dirty);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t d = llabs((int64_t)engine_codes[i] - (int64_t)b->fq[i]), img = i / numel;
        b->dirty[img] |= d != 0;
        out->codes_one_step += d == 1;
        out->codes_more += d > 1 && b->clean[img];
        out->codes_propagated += d > 1 && !b->clean[img];
    }
    for (int64_t i = 0; i < n; i++) b->clean[i] = b->clean[i] && !b->dirty[i];
    out->codes += x->numel;
    return TQ_STATUS_OK;
}

static tq_status compare_batch(tq_engine *e, tq_model *m, const uint8_t *images, int64_t n,
                               tq_tape *tape, cmp_bufs *b, tq_int_compare *out, tq_error *err)
{
    int32_t c, h, w, k;
    tq_model_input(m, &c, &h, &w, &k);
    tq_tensor view = {.data = b->x, .ndim = 4, .shape = {(int32_t)n, c, h, w},
                      .numel = n * c * h * w};
    tq_tape_reset(tape);
    tq_tape_set_recording(tape, false);
    tq_tape_set_training(tape, false);
    tq_tensor *fq = tq_model_forward(m, tape, &view, NULL);
    if (!fq) return tq_fail(err, tq_tape_error(tape)->status, "%s", tq_tape_error(tape)->msg);
    if (tq_engine_run_traced(e, images, n, b->logits, b->codes, err)) return err->status;
    for (int64_t i = 0; i < n; i++) {
        const float *zi = b->logits + i * k, *zf = fq->data + i * k;
        int32_t pi = argmax(zi, k), pf = argmax(zf, k);
        out->differ += pi != pf;
        out->correct_int += pi == b->labels[i];
        out->correct_fq += pf == b->labels[i];
        out->loss_int += tq_cross_entropy_of(zi, k, b->labels[i]);
        for (int32_t j = 0; j < k; j++) {
            double d = fabs((double)zi[j] - (double)zf[j]);
            if (d > out->max_logit_diff) out->max_logit_diff = d;
        }
    }
    out->images += n;
    for (int64_t i = 0; i < n; i++) b->clean[i] = true;
    for (int qi = 0; qi < tq_engine_qlayer_count(e); qi++)
        if (b->codes[qi] &&
            compare_codes(m, qi, b->codes[qi], n, tq_engine_qlayer_input_numel(e, qi), b, out, err))
            return err->status;
    return TQ_STATUS_OK;
}

static void bufs_free(cmp_bufs *b, int nq)
{
    free(b->x);
    free(b->logits);
    free(b->fq);
    free(b->scaled);
    free(b->labels);
    free(b->clean);
    free(b->dirty);
    for (int q = 0; b->codes && q < nq; q++) free(b->codes[q]);
    free(b->codes);
}

tq_status tq_int_compare_run(tq_engine *e, tq_model *m, const tq_dataset *d, const float *mean,
                             const float *std, int32_t batch, tq_int_compare *out,
                             tq_error *err)
{
    memset(out, 0, sizeof *out);
    const int nq = tq_engine_qlayer_count(e);
    const int64_t image = (int64_t)d->c * d->h * d->w;
    int64_t most = 0;
    for (int q = 0; q < nq; q++)
        if (tq_engine_qlayer_input_numel(e, q) > most) most = tq_engine_qlayer_input_numel(e, q);
    cmp_bufs b = {0};
    b.x = malloc((size_t)(batch * image) * sizeof *b.x);
    b.logits = malloc((size_t)batch * (size_t)tq_engine_classes(e) * sizeof *b.logits);
    b.fq = malloc((size_t)(batch * most + 1) * sizeof *b.fq);
    b.scaled = malloc((size_t)(batch * most + 1) * sizeof *b.scaled);
    b.labels = malloc((size_t)batch * sizeof *b.labels);
    b.clean = malloc((size_t)batch * sizeof *b.clean);
    b.dirty = malloc((size_t)batch * sizeof *b.dirty);
    b.codes = calloc((size_t)nq + 1, sizeof *b.codes);
    bool ok = b.x && b.logits && b.fq && b.scaled && b.labels && b.codes && b.clean && b.dirty;
    for (int q = 0; ok && q < nq; q++) {
        int64_t numel = tq_engine_qlayer_input_numel(e, q);
        if (numel > 0) ok = (b.codes[q] = malloc((size_t)(batch * numel) * sizeof **b.codes)) != NULL;
    }
    tq_loader_config cfg = {.batch = batch};
    memcpy(cfg.mean, mean, sizeof cfg.mean);
    memcpy(cfg.std, std, sizeof cfg.std);
    tq_loader *loader = ok ? tq_loader_new(d, &cfg, err) : NULL;
    tq_tape *tape = tq_tape_new();
    tq_status st = TQ_STATUS_OK;
    if (!ok || !tape) st = tq_fail(err, TQ_STATUS_NOMEM, "compare: out of memory");
    else if (!loader) st = err->status;
    if (!st) {
        tq_loader_start_epoch(loader, 0);
        for (int64_t i = 0; !st && i < tq_loader_batch_count(loader); i++) {
            int32_t n = tq_loader_fill(loader, i, b.x, b.labels);
            st = compare_batch(e, m, d->images + i * batch * image, n, tape, &b, out, err);
        }
    }
    tq_tape_free(tape);
    tq_loader_free(loader);
    bufs_free(&b, nq);
    return st;
}
