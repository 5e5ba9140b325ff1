/* SmoothQuant and AWQ scales per input channel, and AWQ's per-block clipping search of
 * weight amax. */
#include "quant_internal.h"

#include <float.h>
#include <stdlib.h>

#define TQ_SCALE_MIN 1e-5f
#define TQ_SCALE_MAX 1e5f

static tq_status check_weight(const tq_tensor *w, const char *who, tq_error *err)
{
    if (!w || (w->ndim != 2 && w->ndim != 4))
        return tq_fail(err, TQ_STATUS_SHAPE, "%s: weights must be (O,C) or (O,C,kh,kw)", who);
    return TQ_STATUS_OK;
}

/* Elements of one (o, c) slice of the weights. */
static int64_t slice_len(const tq_tensor *w) { return w->ndim == 4 ? (int64_t)w->shape[2] * w->shape[3] : 1; }

tq_status tq_smoothquant_scales(const tq_tensor *w, const float *act_amax, float alpha,
                                float *s, tq_error *err)
{
    if (check_weight(w, "smoothquant", err)) return err->status;
    if (!(alpha >= 0.0f && alpha <= 1.0f))
        return tq_fail(err, TQ_STATUS_ARG, "smoothquant: alpha %g must be in [0, 1]", (double)alpha);
    int32_t out = w->shape[0], in = w->shape[1];
    int64_t inner = slice_len(w);
    for (int32_t c = 0; c < in; c++) {
        float wmax = 0.0f;
        for (int32_t o = 0; o < out; o++) {
            const float *p = w->data + ((int64_t)o * in + c) * inner;
            for (int64_t k = 0; k < inner; k++) wmax = fmaxf(wmax, fabsf(p[k]));
        }
        float a = act_amax[c];
        if (!(a > 0.0f) || !(wmax > 0.0f) || !isfinite(a)) {
            s[c] = 1.0f;
            continue;
        }
        double v = pow((double)a, alpha) / pow((double)wmax, 1.0 - alpha);
        s[c] = (float)fmin(fmax(v, TQ_SCALE_MIN), TQ_SCALE_MAX);
    }
    return TQ_STATUS_OK;
}

void tq_awq_scales(const float *act_mean, int32_t n, float a, float *s)
{
    float lo = FLT_MAX;
    for (int32_t c = 0; c < n; c++)
        if (act_mean[c] > 0.0f && act_mean[c] < lo) lo = act_mean[c];
    if (lo == FLT_MAX) lo = 1.0f;
    double smin = INFINITY, smax = 0.0;
    for (int32_t c = 0; c < n; c++) {
        double v = pow(act_mean[c] > 0.0f ? (double)act_mean[c] : (double)lo, a);
        s[c] = (float)v;
        smin = fmin(smin, v);
        smax = fmax(smax, v);
    }
    double norm = sqrt(smin * smax);
    for (int32_t c = 0; c < n; c++)
        s[c] = (float)fmin(fmax(s[c] / norm, TQ_SCALE_MIN), TQ_SCALE_MAX);
}

#define TQ_CLIP_STEPS 11 /* 1.0, 0.95, ..., 0.5 */

tq_status tq_awq_clip_search(tq_quantizer *q, const tq_tensor *w, const float *importance,
                             tq_error *err)
{
    if (check_weight(w, "awq clip", err)) return err->status;
    tq_layout l;
    if (!tq_layout_of(tq_quantizer_spec(q), w, &l, "awq clip", err)) return err->status;
    int64_t n = tq_quantizer_amax_count(q);
    if (n != l.count)
        return tq_fail(err, TQ_STATUS_ARG, "awq clip: quantizer has %lld amax values, the weights need %lld (calibrate it on them first)",
                       (long long)n, (long long)l.count);
    int64_t inner = slice_len(w);
    int32_t in = w->shape[1];
    float *orig = malloc((size_t)n * sizeof(float)), *trial = malloc((size_t)n * sizeof(float));
    float *best = malloc((size_t)n * sizeof(float)), *wq = malloc((size_t)w->numel * sizeof(float));
    double *e = malloc((size_t)n * sizeof(double)), *best_e = malloc((size_t)n * sizeof(double));
    tq_status st = TQ_STATUS_OK;
    if (!orig || !trial || !best || !wq || !e || !best_e)
        st = tq_fail(err, TQ_STATUS_NOMEM, "awq clip: out of memory");
    if (st == TQ_STATUS_OK) memcpy(orig, tq_quantizer_amax(q), (size_t)n * sizeof(float));
    int64_t spans = st == TQ_STATUS_OK ? tq_layout_span_count(&l) : 0;
    for (int step = 0; st == TQ_STATUS_OK && step < TQ_CLIP_STEPS; step++) {
        float f = 1.0f - 0.05f * (float)step;
        for (int64_t i = 0; i < n; i++) trial[i] = orig[i] * f;
        if ((st = tq_quantizer_set_amax(q, trial, n, err)) ||
            (st = tq_quantizer_apply(q, w, wq, err)))
            break;
        for (int64_t i = 0; i < n; i++) e[i] = 0.0;
        for (int64_t k = 0; k < spans; k++) {
            tq_span sp = tq_layout_span(&l, k);
            for (int64_t i = 0; i < sp.len; i++) {
                int64_t at = sp.start + i;
                double d = (double)w->data[at] - wq[at];
                e[sp.vec ? sp.sidx + i : sp.sidx] += importance[(at / inner) % in] * d * d;
            }
        }
        for (int64_t i = 0; i < n; i++)
            if (step == 0 || e[i] < best_e[i]) {
                best_e[i] = e[i];
                best[i] = trial[i];
            }
    }
    if (st == TQ_STATUS_OK) st = tq_quantizer_set_amax(q, best, n, err);
    else if (orig) tq_quantizer_set_amax(q, orig, n, &(tq_error){0});
    free(orig);
    free(trial);
    free(best);
    free(wq);
    free(e);
    free(best_e);
    return st;
}

tq_status tq_quantizer_amax_rows(const tq_quantizer *q, const tq_tensor *w, int32_t *rows,
                                 tq_error *err)
{
    if (check_weight(w, "amax rows", err)) return err->status;
    tq_layout l;
    if (!tq_layout_of(tq_quantizer_spec(q), w, &l, "amax rows", err)) return err->status;
    int64_t n = tq_quantizer_amax_count(q);
    if (n != l.count)
        return tq_fail(err, TQ_STATUS_ARG, "amax rows: quantizer has %lld amax values, the weights need %lld",
                       (long long)n, (long long)l.count);
    const int32_t unseen = -2;
    for (int64_t j = 0; j < n; j++) rows[j] = unseen;
    int64_t row_len = w->numel / w->shape[0], spans = tq_layout_span_count(&l);
    for (int64_t k = 0; k < spans; k++) {
        tq_span sp = tq_layout_span(&l, k);
        for (int64_t i = 0; i < sp.len; i++) {
            int64_t j = sp.vec ? sp.sidx + i : sp.sidx;
            int32_t r = (int32_t)((sp.start + i) / row_len);
            rows[j] = rows[j] == unseen || rows[j] == r ? r : -1;
        }
    }
    for (int64_t j = 0; j < n; j++)
        if (rows[j] == unseen) rows[j] = -1;
    return TQ_STATUS_OK;
}
