/* Calibration that changes weights: per-input-channel statistics of every layer's input,
 * SmoothQuant and AWQ over a whole model, and the PTQ flow that runs them. */
#include "ptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

tq_chan_stats *tq_chan_stats_new(tq_model *m, tq_error *err)
{
    int n = tq_model_qlayer_count(m);
    tq_chan_stats *s = calloc((size_t)(n ? n : 1), sizeof *s);
    if (!s) {
        tq_fail(err, TQ_STATUS_NOMEM, "calibration statistics: out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        int32_t c = tq_model_qlayer(m, i)->weight->shape[1];
        s[i].channels = c;
        s[i].amax = calloc((size_t)c, sizeof(float));
        s[i].sum_abs = calloc((size_t)c, sizeof(double));
        s[i].sum_sq = calloc((size_t)c, sizeof(double));
        if (!s[i].amax || !s[i].sum_abs || !s[i].sum_sq) {
            tq_chan_stats_free(s, n);
            tq_fail(err, TQ_STATUS_NOMEM, "calibration statistics: out of memory");
            return NULL;
        }
    }
    return s;
}

void tq_chan_stats_free(tq_chan_stats *s, int n)
{
    if (!s) return;
    for (int i = 0; i < n; i++) {
        free(s[i].amax);
        free(s[i].sum_abs);
        free(s[i].sum_sq);
        free(s[i].awq_s);
        tq_tensor_free(s[i].sample);
    }
    free(s);
}

/* Adds x (N,C) or (N,C,H,W) to one layer's statistics; keeps the first samples. */
static tq_status add_input(tq_chan_stats *s, const tq_tensor *x, const char *layer, tq_error *err)
{
    if (x->shape[1] != s->channels)
        return tq_fail(err, TQ_STATUS_SHAPE, "%s: input has %d channels, weights %d", layer,
                       x->shape[1], s->channels);
    int32_t n = x->shape[0], c = s->channels;
    int64_t inner = x->numel / ((int64_t)n * c);
    for (int32_t b = 0; b < n; b++)
        for (int32_t ch = 0; ch < c; ch++) {
            const float *p = x->data + ((int64_t)b * c + ch) * inner;
            float amax = s->amax[ch];
            double sa = 0, sq = 0;
            for (int64_t k = 0; k < inner; k++) {
                float a = fabsf(p[k]);
                amax = fmaxf(amax, a);
                sa += a;
                sq += (double)a * a;
            }
            s->amax[ch] = amax;
            s->sum_abs[ch] += sa;
            s->sum_sq[ch] += sq;
        }
    s->count += (int64_t)n * inner;
    if (!s->sample) {
        int32_t shape[4];
        memcpy(shape, x->shape, sizeof shape);
        shape[0] = n < TQ_AWQ_SAMPLES ? n : TQ_AWQ_SAMPLES;
        if (!(s->sample = tq_tensor_new(x->ndim, shape, false)))
            return tq_fail(err, TQ_STATUS_NOMEM, "%s: out of memory keeping samples", layer);
        memcpy(s->sample->data, x->data, (size_t)s->sample->numel * sizeof(float));
    }
    return TQ_STATUS_OK;
}

tq_status tq_chan_stats_observe(tq_model *m, tq_chan_stats *s, tq_tensor *x, tq_error *err)
{
    tq_tape *tape = tq_tape_new();
    if (!tape) return tq_fail(err, TQ_STATUS_NOMEM, "calibration statistics: out of memory");
    tq_tape_set_recording(tape, false);
    tq_tape_set_training(tape, false);
    tq_status st = TQ_STATUS_OK;
    if (!tq_model_forward(m, tape, x, NULL))
        st = tq_fail(err, tq_tape_error(tape)->status, "calibration statistics: %s",
                     tq_tape_error(tape)->msg);
    for (int i = 0; st == TQ_STATUS_OK && i < tq_model_qlayer_count(m); i++)
        st = add_input(&s[i], tq_model_qlayer_input(m, i), tq_model_qlayer(m, i)->name, err);
    tq_tape_free(tape);
    return st;
}

tq_status tq_smoothquant_model(tq_model *m, const tq_chan_stats *s, float alpha, tq_error *err)
{
    for (int i = tq_model_qlayer_count(m) - 1; i >= 0; i--) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        float *sc = malloc((size_t)s[i].channels * sizeof(float));
        tq_error e = {0};
        tq_status st = !sc ? tq_fail(&e, TQ_STATUS_NOMEM, "out of memory")
                           : tq_smoothquant_scales(l->weight, s[i].amax, alpha, sc, &e);
        if (st == TQ_STATUS_OK && tq_model_scale_input(m, i, sc, &e) < 0) st = e.status;
        free(sc);
        if (st) return tq_fail(err, st, "smoothquant: %s: %s", l->name, e.msg);
    }
    return TQ_STATUS_OK;
}

/* ||op(x, w) - op(x / s, Q(w s))||^2 on the layer's samples; w_s and x_s are scratch. */
static double awq_error(tq_model *m, int qi, tq_tape *tape, const tq_tensor *ref,
                        const tq_tensor *x, const tq_qspec *wspec, const float *s,
                        tq_tensor *w_s, tq_tensor *x_s, tq_error *err)
{
    tq_qlayer *l = tq_model_qlayer(m, qi);
    const tq_tensor *w = l->weight;
    int32_t c = w->shape[1];
    int64_t wi = w->numel / ((int64_t)w->shape[0] * c), xi = x->numel / ((int64_t)x->shape[0] * c);
    for (int64_t k = 0; k < w->numel; k++) w_s->data[k] = w->data[k] * s[(k / wi) % c];
    for (int64_t k = 0; k < x->numel; k++) x_s->data[k] = x->data[k] / s[(k / xi) % c];
    tq_quantizer *q = tq_quantizer_new(wspec, err);
    if (!q || tq_quantizer_calibrate_weight(q, w_s, err) ||
        tq_quantizer_apply(q, w_s, w_s->data, err)) {
        tq_quantizer_free(q);
        return -1;
    }
    tq_quantizer_free(q);
    tq_tape_reset(tape);
    tq_tensor *y = tq_model_qlayer_apply(m, qi, tape, x_s, w_s);
    if (!y) {
        tq_fail(err, tq_tape_error(tape)->status, "%s", tq_tape_error(tape)->msg);
        return -1;
    }
    double e = 0;
    for (int64_t k = 0; k < y->numel; k++) {
        double d = (double)y->data[k] - ref->data[k];
        e += d * d;
    }
    return e;
}

/* The exponent on 0, 0.05, ..., 1 with the least output error; its scales into best. */
static tq_status awq_layer(tq_model *m, int qi, tq_chan_stats *s, const tq_qspec *wspec,
                           float *exp_out, tq_error *err)
{
    tq_qlayer *l = tq_model_qlayer(m, qi);
    int32_t c = s->channels;
    float *mean = malloc((size_t)c * sizeof(float)), *cand = malloc((size_t)c * sizeof(float));
    s->awq_s = malloc((size_t)c * sizeof(float));
    tq_tensor *w_s = tq_tensor_new(l->weight->ndim, l->weight->shape, false);
    tq_tensor *x_s = tq_tensor_new(s->sample->ndim, s->sample->shape, false);
    tq_tensor *ref = NULL;
    tq_tape *tape = tq_tape_new();
    tq_status st = TQ_STATUS_OK;
    if (!mean || !cand || !s->awq_s || !w_s || !x_s || !tape)
        st = tq_fail(err, TQ_STATUS_NOMEM, "awq: %s: out of memory", l->name);
    if (st == TQ_STATUS_OK) {
        tq_tape_set_recording(tape, false);
        tq_tensor *y = tq_model_qlayer_apply(m, qi, tape, s->sample, l->weight);
        if (!y || !(ref = tq_tensor_new(y->ndim, y->shape, false)))
            st = tq_fail(err, TQ_STATUS_NOMEM, "awq: %s: reference output failed", l->name);
        else
            memcpy(ref->data, y->data, (size_t)y->numel * sizeof(float));
    }
    for (int32_t k = 0; st == TQ_STATUS_OK && k < c; k++)
        mean[k] = (float)(s->sum_abs[k] / (double)(s->count ? s->count : 1));
    double best = INFINITY;
    for (int g = 0; st == TQ_STATUS_OK && g <= 20; g++) {
        float a = 0.05f * (float)g;
        tq_awq_scales(mean, c, a, cand);
        tq_error e = {0};
        double er = awq_error(m, qi, tape, ref, s->sample, wspec, cand, w_s, x_s, &e);
        if (er < 0) st = tq_fail(err, e.status ? e.status : TQ_STATUS_ARG, "awq: %s: %s", l->name, e.msg);
        else if (er < best) {
            best = er;
            memcpy(s->awq_s, cand, (size_t)c * sizeof(float));
            if (exp_out) *exp_out = a;
        }
    }
    tq_error e = {0};
    if (st == TQ_STATUS_OK && tq_model_scale_input(m, qi, s->awq_s, &e) < 0)
        st = tq_fail(err, e.status, "awq: %s", e.msg);
    free(mean);
    free(cand);
    tq_tensor_free(w_s);
    tq_tensor_free(x_s);
    tq_tensor_free(ref);
    tq_tape_free(tape);
    return st;
}

tq_status tq_awq_model(tq_model *m, tq_chan_stats *s, const tq_qspec *wspec, float *exps,
                       tq_error *err)
{
    for (int i = tq_model_qlayer_count(m) - 1; i >= 0; i--) {
        if (!s[i].sample)
            return tq_fail(err, TQ_STATUS_ARG, "awq: %s: no calibration inputs seen",
                           tq_model_qlayer(m, i)->name);
        if (awq_layer(m, i, &s[i], wspec, exps ? &exps[i] : NULL, err)) return err->status;
    }
    return TQ_STATUS_OK;
}

/* Squared output error of qlayer qi per output channel (into e[O]) on inputs x, with its
 * weights quantized by q as they are now, against ref, the float output; wq is scratch. */
static tq_status channel_errors(tq_model *m, int qi, tq_tape *tape, const tq_tensor *x,
                                const tq_tensor *ref, tq_tensor *wq, double *e, tq_error *err)
{
    tq_qlayer *l = tq_model_qlayer(m, qi);
    if (tq_quantizer_apply(l->weight_q, l->weight, wq->data, err)) return err->status;
    tq_tape_reset(tape);
    tq_tensor *y = tq_model_qlayer_apply(m, qi, tape, (tq_tensor *)x, wq);
    if (!y) return tq_fail(err, tq_tape_error(tape)->status, "%s", tq_tape_error(tape)->msg);
    int32_t out = l->weight->shape[0];
    int64_t inner = y->numel / ((int64_t)y->shape[0] * out); /* (N,O) or (N,O,H,W) */
    for (int32_t o = 0; o < out; o++) e[o] = 0;
    for (int64_t k = 0; k < y->numel; k++) {
        double d = (double)y->data[k] - ref->data[k];
        e[(k / inner) % out] += d * d;
    }
    return TQ_STATUS_OK;
}

/* The clip search weighs each weight's error by its input's mean square, as if inputs were
 * uncorrelated across channels; real ones are not, and a clip can then raise the output
 * error it was meant to lower. On the kept samples (as the layer now sees them: x / s), an
 * output channel whose error the clipped amax raise goes back to the unclipped amax (orig);
 * one amax shared by several output channels, if the layer's total error rose. So clipping
 * never raises the output error on those samples. */
static tq_status keep_clips_that_help(tq_model *m, int qi, const tq_chan_stats *s,
                                      const float *orig, tq_error *err)
{
    tq_qlayer *l = tq_model_qlayer(m, qi);
    tq_quantizer *q = l->weight_q;
    int64_t n = tq_quantizer_amax_count(q);
    int32_t out = l->weight->shape[0], c = s->channels;
    tq_tensor *x = tq_tensor_new(s->sample->ndim, s->sample->shape, false);
    tq_tensor *wq = tq_tensor_new(l->weight->ndim, l->weight->shape, false), *ref = NULL;
    float *clipped = malloc((size_t)n * sizeof(float));
    int32_t *rows = malloc((size_t)n * sizeof(int32_t));
    double *e_orig = malloc((size_t)out * sizeof(double)), *e_clip = malloc((size_t)out * sizeof(double));
    tq_tape *tape = tq_tape_new();
    tq_status st = TQ_STATUS_OK;
    if (!x || !wq || !clipped || !rows || !e_orig || !e_clip || !tape)
        st = tq_fail(err, TQ_STATUS_NOMEM, "out of memory");
    if (st == TQ_STATUS_OK) {
        int64_t xi = x->numel / ((int64_t)x->shape[0] * c);
        for (int64_t k = 0; k < x->numel; k++)
            x->data[k] = s->sample->data[k] / (s->awq_s ? s->awq_s[(k / xi) % c] : 1.0f);
        memcpy(clipped, tq_quantizer_amax(q), (size_t)n * sizeof(float));
        tq_tape_set_recording(tape, false);
        tq_tensor *y = tq_model_qlayer_apply(m, qi, tape, x, l->weight);
        if (!y || !(ref = tq_tensor_new(y->ndim, y->shape, false)))
            st = tq_fail(err, TQ_STATUS_NOMEM, "reference output failed");
        else
            memcpy(ref->data, y->data, (size_t)y->numel * sizeof(float));
    }
    if (st == TQ_STATUS_OK) st = tq_quantizer_amax_rows(q, l->weight, rows, err);
    if (st == TQ_STATUS_OK) st = channel_errors(m, qi, tape, x, ref, wq, e_clip, err);
    if (st == TQ_STATUS_OK && !(st = tq_quantizer_set_amax(q, orig, n, err)))
        st = channel_errors(m, qi, tape, x, ref, wq, e_orig, err);
    if (st == TQ_STATUS_OK) {
        double total_orig = 0, total_clip = 0;
        for (int32_t o = 0; o < out; o++) total_orig += e_orig[o], total_clip += e_clip[o];
        for (int64_t j = 0; j < n; j++) {
            bool worse = rows[j] >= 0 ? e_clip[rows[j]] > e_orig[rows[j]] : total_clip > total_orig;
            if (worse) clipped[j] = orig[j];
        }
        st = tq_quantizer_set_amax(q, clipped, n, err);
    }
    tq_tensor_free(x);
    tq_tensor_free(wq);
    tq_tensor_free(ref);
    free(clipped);
    free(rows);
    free(e_orig);
    free(e_clip);
    tq_tape_free(tape);
    return st;
}

tq_status tq_awq_clip_model(tq_model *m, const tq_chan_stats *s, tq_error *err)
{
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        if (!l->weight_q) continue;
        int32_t c = s[i].channels;
        int64_t n = tq_quantizer_amax_count(l->weight_q);
        float *imp = malloc((size_t)c * sizeof(float)), *orig = malloc((size_t)n * sizeof(float));
        if (!imp || !orig) {
            free(imp);
            free(orig);
            return tq_fail(err, TQ_STATUS_NOMEM, "awq clip: out of memory");
        }
        memcpy(orig, tq_quantizer_amax(l->weight_q), (size_t)n * sizeof(float));
        /* The layer now sees x / s. */
        for (int32_t k = 0; k < c; k++) {
            float sk = s[i].awq_s ? s[i].awq_s[k] : 1.0f;
            imp[k] = (float)(s[i].sum_sq[k] / (double)(s[i].count ? s[i].count : 1) / ((double)sk * sk));
        }
        tq_error e = {0};
        tq_status st = tq_awq_clip_search(l->weight_q, l->weight, imp, &e);
        if (st == TQ_STATUS_OK && s[i].sample) st = keep_clips_that_help(m, i, &s[i], orig, &e);
        free(imp);
        free(orig);
        if (st) return tq_fail(err, st, "awq clip: %s: %s", l->name, e.msg);
    }
    return TQ_STATUS_OK;
}
