/* Calibration observers: a running abs max and, for the histogram calibrators, a histogram of
 * |x| whose range doubles (merging bins exactly) when a larger value arrives. */
#include "quant_internal.h"

#include <stdlib.h>

tq_status tq_observer_init(tq_observer *o, bool with_hist, tq_error *err)
{
    memset(o, 0, sizeof *o);
    if (!with_hist) return TQ_STATUS_OK;
    o->hist = calloc(TQ_HIST_BINS, sizeof *o->hist);
    if (!o->hist) return tq_fail(err, TQ_STATUS_NOMEM, "calibrator: out of memory for a histogram");
    return TQ_STATUS_OK;
}

void tq_observer_free(tq_observer *o)
{
    free(o->hist);
    o->hist = NULL;
}

/* Grows the range by a power of two so that it covers m; old bins merge f at a time. */
static void hist_grow(tq_observer *o, float m)
{
    int64_t f = 1;
    float range = o->range;
    while (range < m) {
        range *= 2.0f;
        f *= 2;
    }
    if (f == 1) return;
    for (int64_t j = 0; j < TQ_HIST_BINS; j++) {
        int64_t dst = j / f;
        if (dst != j) {
            o->hist[dst] += o->hist[j];
            o->hist[j] = 0.0;
        }
    }
    o->range = range;
}

void tq_observer_add(tq_observer *o, const float *x, int64_t runs, int64_t len, int64_t stride,
                     bool *seen_negative)
{
    float m = 0.0f, lo = 0.0f;
    int64_t seen = 0;
    for (int64_t r = 0; r < runs; r++) {
        const float *xr = x + r * stride;
        for (int64_t i = 0; i < len; i++) {
            if (!isfinite(xr[i])) continue; /* NaN and inf say nothing about the range */
            m = fmaxf(m, fabsf(xr[i]));
            lo = fminf(lo, xr[i]);
            seen++;
        }
    }
    if (lo < 0.0f && seen_negative) *seen_negative = true;
    o->count += seen;
    o->amax = fmaxf(o->amax, m);
    if (!o->hist || seen == 0) return;
    if (o->range == 0.0f) {
        if (m == 0.0f) { /* all zeros: remember them in bin 0 until a range exists */
            o->hist[0] += (double)seen;
            return;
        }
        o->range = m;
    } else if (m > o->range) {
        hist_grow(o, m);
    }
    const float per_unit = (float)TQ_HIST_BINS / o->range;
    for (int64_t r = 0; r < runs; r++) {
        const float *xr = x + r * stride;
        for (int64_t i = 0; i < len; i++) {
            if (!isfinite(xr[i])) continue;
            int64_t b = (int64_t)(fabsf(xr[i]) * per_unit);
            o->hist[b < TQ_HIST_BINS ? b : TQ_HIST_BINS - 1] += 1.0;
        }
    }
}

float tq_observer_amax(const tq_observer *o, const tq_qspec *s, tq_format f)
{
    if (s->calib == TQ_CALIB_MAX || !o->hist || o->range == 0.0f) return o->amax;
    float a = o->amax;
    switch (s->calib) {
    case TQ_CALIB_PERCENTILE:
        a = tq_calib_percentile(o->hist, TQ_HIST_BINS, o->range, s->percentile);
        break;
    case TQ_CALIB_MSE: a = tq_calib_mse(o->hist, TQ_HIST_BINS, o->range, o->amax, f); break;
    case TQ_CALIB_ENTROPY:
        a = tq_calib_entropy(o->hist, TQ_HIST_BINS, o->range, o->amax, f);
        break;
    case TQ_CALIB_MAX: break;
    }
    return fminf(a, o->amax);
}
