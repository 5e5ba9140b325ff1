/* tq_engine_build: plans the program, then fills in each step's numbers (tables, weights,
 * multipliers, biases) and allocates the buffers; tq_engine_free and the accessors. */
#include "engine_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pixel p of channel c is (p / 255 - mean[c]) / std[c] in float exactly as the data loader
 * computes it; its code is the input quantizer's code of that value, so the table gives
 * fake quant's codes to the bit. Fine integers when no single quantizer reads the input. */
static tq_status build_input(tq_engine *e, tq_step *s, tq_model *m, const float *mean,
                             const float *std, tq_error *err)
{
    const tq_val *v = &e->vals[s->out];
    if (!(s->lut = malloc((size_t)e->c * 256 * sizeof *s->lut)))
        return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
    float x[256], codes[256], scale;
    tq_tensor t = {.data = x, .ndim = 1, .shape = {256}, .numel = 256};
    for (int32_t c = 0; c < e->c; c++) {
        if (!(std[c] > 0.0f) || !isfinite(mean[c]))
            return tq_fail(err, TQ_STATUS_ARG, "engine: input channel %d: mean %g, std %g "
                           "(expected a finite mean and std > 0)", c, (double)mean[c], (double)std[c]);
        for (int p = 0; p < 256; p++) x[p] = ((float)p / 255.0f - mean[c]) / std[c];
        int32_t *lut = s->lut + c * 256;
        if (v->domain == TQ_VAL_CODES) {
            if (tq_quantizer_codes(tq_model_qlayer(m, v->q)->input_q, &t, codes, &scale, err))
                return err->status;
            for (int p = 0; p < 256; p++) lut[p] = (int32_t)codes[p] + v->zp;
        } else {
            for (int p = 0; p < 256; p++) lut[p] = tq_sat32(llround((double)x[p] / v->unit));
        }
    }
    return TQ_STATUS_OK;
}

/* Fine integers to a quantizer's codes, with the layer's input multiplier (SmoothQuant, AWQ)
 * folded in: per channel, or per input position of a Linear that reads a flattened (H,W,C). */
static tq_status build_to_codes(tq_engine *e, tq_step *s, tq_model *m, tq_error *err)
{
    const tq_val *in = &e->vals[s->in], *out = &e->vals[s->out];
    const tq_qlayer *l = tq_model_qlayer(m, s->qlayer);
    const bool per_position = !l->is_conv && (int64_t)in->h * in->w > 1;
    s->n_chan = per_position ? in->numel : in->c;
    double *mul = malloc((size_t)s->n_chan * sizeof *mul);
    double *zero = calloc((size_t)s->n_chan, sizeof *zero);
    if (!mul || !zero) {
        free(mul);
        free(zero);
        return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
    }
    const int64_t HW = (int64_t)in->h * in->w;
    for (int64_t j = 0; j < s->n_chan; j++) {
        /* position j of (H,W,C) is feature (c, y, x) of the flattened (C,H,W) */
        int64_t feature = per_position ? (j % in->c) * HW + j / in->c : j;
        double m_j = l->input_mul ? l->input_mul->data[feature] : 1.0;
        mul[j] = out->unit > 0 ? in->unit * m_j / out->unit : 0.0;
    }
    tq_status st = tq_rowquant_make(&s->rq, mul, zero, NULL, 0, s->n_chan, err);
    free(mul);
    free(zero);
    return st;
}

/* A batch norm on fine integers: per channel k = gamma / sqrt(var + eps) as the multiplier,
 * beta - k mean as the bias, straight to the output's unit (codes: their scale). */
static tq_status build_bn(tq_engine *e, tq_step *s, tq_model *m, tq_error *err)
{
    tq_layer_info bn;
    tq_model_layer(m, s->layer, &bn);
    const tq_val *in = &e->vals[s->in];
    const double u = e->vals[s->out].unit;
    s->n_chan = in->c;
    double *k = calloc((size_t)in->c, sizeof *k), *c = calloc((size_t)in->c, sizeof *c);
    if (!k || !c) {
        free(k);
        free(c);
        return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
    }
    for (int32_t j = 0; j < in->c && u > 0; j++) {
        double kj = bn.gamma[j] / sqrt((double)bn.running_var[j] + bn.eps);
        k[j] = kj * in->unit / u;
        c[j] = (bn.beta[j] - kj * bn.running_mean[j]) / u;
    }
    tq_status st = tq_rowquant_make(&s->rq, k, c, NULL, 0, in->c, err);
    free(k);
    free(c);
    return st;
}

/* A residual add: each side rescaled to the output's unit (codes: their scale) in one
 * rounding of the sum. */
static tq_status build_add(tq_engine *e, tq_step *s)
{
    const double u = e->vals[s->out].unit;
    s->add = tq_addquant_make(u > 0 ? e->vals[s->in].unit / u : 0.0,
                              u > 0 ? e->vals[s->in2].unit / u : 0.0);
    return TQ_STATUS_OK;
}

static tq_status build_step(tq_engine *e, tq_step *s, tq_model *m, const float *mean,
                            const float *std, tq_error *err)
{
    switch (s->kind) {
    case TQ_STEP_INPUT: return build_input(e, s, m, mean, std, err);
    case TQ_STEP_QLAYER: return tq_engine_build_qlayer(e, s, m, err);
    case TQ_STEP_TO_CODES: return build_to_codes(e, s, m, err);
    case TQ_STEP_BN: return build_bn(e, s, m, err);
    case TQ_STEP_ADD: return build_add(e, s);
    case TQ_STEP_RELU:
    case TQ_STEP_MAXPOOL:
    case TQ_STEP_AVGPOOL:
    case TQ_STEP_GAP: return TQ_STATUS_OK;
    }
    return TQ_STATUS_OK;
}

/* Marks the max pools the direct path runs inside the convolution before them. */
static void fuse_pools(tq_engine *e)
{
    for (int t = 0; t + 1 < e->n_steps; t++) {
        tq_step *s = &e->steps[t], *p = &e->steps[t + 1];
        if (s->kind != TQ_STEP_QLAYER || !s->is_conv || s->out < 0 || p->kind != TQ_STEP_MAXPOOL ||
            p->in != s->out || p->kernel != 2 || p->stride != 2 || e->vals[s->out].last != t + 1)
            continue;
        const tq_val *a = &e->vals[s->out], *b = &e->vals[p->out];
        if (a->domain != b->domain || a->zp != b->zp || a->lo != b->lo || a->hi != b->hi) continue;
        bool increasing = true;
        for (int64_t o = 0; o < s->w.n; o++) increasing = increasing && s->cw_mult[o] >= 0;
        if (!increasing) continue;
        s->fuse_pool = p->pool_fused = true;
        s->pool_out = p->out;
        /* the convolution writes the pool's output: its input must not share that buffer */
        if (e->vals[s->in].last < t + 1) e->vals[s->in].last = t + 1;
    }
}

tq_engine *tq_engine_build(tq_model *m, const float *mean, const float *std, tq_error *err)
{
    tq_engine *e = calloc(1, sizeof *e);
    if (!e) {
        tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
        return NULL;
    }
    tq_model_input(m, &e->c, &e->h, &e->w, &e->classes);
    e->n_qlayers = tq_model_qlayer_count(m);
    e->direct = tq_qconv_available();
    tq_status st = tq_engine_plan(e, m, err);
    for (int t = 0; !st && t < e->n_steps; t++) st = build_step(e, &e->steps[t], m, mean, std, err);
    if (!st) fuse_pools(e);
    if (!st) st = tq_engine_plan_buffers(e, err);
    if (st) {
        tq_engine_free(e);
        return NULL;
    }
    return e;
}

void tq_engine_free(tq_engine *e)
{
    if (!e) return;
    for (int t = 0; t < e->n_steps; t++) {
        tq_step *s = &e->steps[t];
        tq_rowquant_free(&s->rq);
        free(s->deq_scale);
        free(s->deq_bias);
        free(s->lut);
        tq_packed_free(&s->wcodes);
        tq_qweights_free(&s->w);
        tq_qconv_weights_free(&s->cw);
        free(s->cw_mult);
        free(s->cw_bias);
    }
    tq_engine_free_workspaces(e);
    free(e->buf_cap);
    free(e->vals);
    free(e->steps);
    free(e->qlayer_input);
    free(e);
}

int tq_engine_qlayer_count(const tq_engine *e) { return e->n_qlayers; }

int64_t tq_engine_qlayer_input_numel(const tq_engine *e, int qi)
{
    TQ_ASSERT(qi >= 0 && qi < e->n_qlayers);
    int v = e->qlayer_input[qi];
    return v >= 0 ? e->vals[v].numel : 0;
}

int32_t tq_engine_classes(const tq_engine *e) { return e->classes; }
