/* What calibration saw, for pictures and teaching: a quantizer's |x| histogram, the amax each
 * calibrator would pick from it, and the squared error of a threshold split into the part
 * clipping causes and the part rounding causes. */
#include "quant_internal.h"

bool tq_quantizer_calib_hist(const tq_quantizer *q, tq_calib_hist *out)
{
    if (!q || q->n_obs != 1 || !q->obs[0].hist || q->obs[0].range <= 0 || q->obs[0].count == 0)
        return false;
    const tq_observer *o = &q->obs[0];
    *out = (tq_calib_hist){.counts = o->hist, .nbins = TQ_HIST_BINS, .range = o->range,
                           .absmax = o->amax, .count = o->count, .negative = q->seen_negative};
    return true;
}

float tq_calib_hist_amax(const tq_calib_hist *h, tq_calib_kind k, float percentile, tq_format f)
{
    if (h->nbins != TQ_HIST_BINS) return h->absmax; /* the calibrators' histograms only */
    tq_observer o = {.amax = h->absmax, .range = h->range, .count = h->count,
                     .hist = (double *)h->counts};
    tq_qspec s = tq_qspec_default();
    s.calib = k;
    s.percentile = percentile;
    return tq_observer_amax(&o, &s, f);
}

void tq_calib_hist_error(const tq_calib_hist *h, float amax, tq_format f, double *clip,
                         double *rounding)
{
    *clip = *rounding = 0;
    if (!(amax > 0)) return;
    float width = h->range / (float)h->nbins, scale = amax / tq_format_max(f);
    for (int j = 0; j < h->nbins; j++) {
        if (h->counts[j] <= 0) continue;
        float c = ((float)j + 0.5f) * width;
        double d = (double)c - (double)(tq_format_round(f, c / scale) * scale);
        *(c > amax ? clip : rounding) += h->counts[j] * d * d;
    }
}
