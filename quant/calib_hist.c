/* Histogram calibrators: percentile, MSE (expected squared error per bin) and entropy
 * (TensorRT-style KL divergence between the clipped reference and its quantized version). */
#include "quant_internal.h"

#include <float.h>
#include <stdlib.h>

float tq_calib_percentile(const double *hist, int nbins, float range, float pct)
{
    double total = 0.0;
    for (int j = 0; j < nbins; j++) total += hist[j];
    double target = (double)pct / 100.0 * total, cum = 0.0;
    float width = range / (float)nbins;
    for (int j = 0; j < nbins; j++) {
        cum += hist[j];
        if (cum >= target) return (float)(j + 1) * width;
    }
    return range;
}

/* Squared error of the values in the non-empty bins (taken at bin centres) for one amax. */
static double expected_sq_error(const float *centre, const double *count, int n, float amax,
                                tq_format f)
{
    float scale = amax / tq_format_max(f);
    double err = 0.0;
    for (int k = 0; k < n; k++) {
        double d = (double)centre[k] - (double)(tq_format_round(f, centre[k] / scale) * scale);
        err += count[k] * d * d;
    }
    return err;
}

float tq_calib_mse(const double *hist, int nbins, float range, tq_format f)
{
    float *centre = malloc((size_t)nbins * sizeof *centre);
    double *count = malloc((size_t)nbins * sizeof *count);
    if (!centre || !count) {
        free(centre);
        free(count);
        return range; /* max calibration is the safe answer without memory */
    }
    float width = range / (float)nbins;
    int n = 0;
    for (int j = 0; j < nbins; j++)
        if (hist[j] > 0.0) {
            centre[n] = ((float)j + 0.5f) * width;
            count[n++] = hist[j];
        }
    /* coarse pass over every 8th bin edge, then every edge around the best one */
    const int coarse = 8;
    int best = nbins;
    double best_err = DBL_MAX;
    for (int i = coarse; i <= nbins; i += coarse) {
        double e = expected_sq_error(centre, count, n, (float)i * width, f);
        if (e < best_err) best_err = e, best = i;
    }
    int lo = best - coarse + 1 > 1 ? best - coarse + 1 : 1;
    int hi = best + coarse - 1 < nbins ? best + coarse - 1 : nbins;
    for (int i = lo; i <= hi; i++) {
        double e = expected_sq_error(centre, count, n, (float)i * width, f);
        if (e < best_err) best_err = e, best = i;
    }
    free(centre);
    free(count);
    return (float)best * width;
}

/* KL(P||Q) for threshold i, with q[] the quantized distribution already expanded to i bins
 * (unnormalised) and p the reference: hist[0..i) with everything beyond folded into i-1. */
static double kl_divergence(const double *hist, int nbins, int i, const double *q)
{
    double p_total = 0.0, q_total = 0.0, outliers = 0.0;
    for (int j = 0; j < i; j++) p_total += hist[j], q_total += q[j];
    for (int j = i; j < nbins; j++) outliers += hist[j];
    p_total += outliers;
    if (p_total <= 0.0 || q_total <= 0.0) return INFINITY;
    double kl = 0.0;
    for (int j = 0; j < i; j++) {
        double p = hist[j] + (j == i - 1 ? outliers : 0.0);
        if (p <= 0.0) continue;
        if (q[j] <= 0.0) return INFINITY;
        p /= p_total;
        kl += p * log(p / (q[j] / q_total));
    }
    return kl;
}

/* Spreads each group's total evenly over its non-empty bins (empty bins stay empty). */
static void expand_group(const double *hist, int start, int stop, double *q)
{
    double sum = 0.0;
    int nonzero = 0;
    for (int j = start; j < stop; j++) sum += hist[j], nonzero += hist[j] > 0.0;
    for (int j = start; j < stop; j++) q[j] = hist[j] > 0.0 ? sum / nonzero : 0.0;
}

/* Integer grids: nlevels equal groups of bins (the last one takes the remainder), as in
 * TensorRT. FP grids: bins grouped by the grid value their centre rounds to. */
static void quantize_reference(const double *hist, int i, int nlevels, tq_format f, float width,
                               double *q)
{
    if (!tq_format_is_float(f)) {
        int merged = i / nlevels;
        for (int k = 0; k < nlevels; k++) {
            int start = k * merged, stop = k == nlevels - 1 ? i : start + merged;
            expand_group(hist, start, stop, q);
        }
        return;
    }
    float scale = (float)i * width / tq_format_max(f);
    int start = 0;
    float level = tq_format_round(f, 0.5f * width / scale);
    for (int j = 1; j <= i; j++) {
        float next = j < i ? tq_format_round(f, ((float)j + 0.5f) * width / scale) : NAN;
        if (j == i || next != level) {
            expand_group(hist, start, j, q);
            start = j;
            level = next;
        }
    }
}

float tq_calib_entropy(const double *hist, int nbins, float range, tq_format f)
{
    int nlevels = tq_format_nonneg_levels(f);
    if (nlevels < 2) nlevels = 2;
    if (nlevels >= nbins) return range;
    double *q = malloc((size_t)nbins * sizeof *q);
    if (!q) return range;
    float width = range / (float)nbins;
    int stride = (nbins - nlevels) / 512 > 1 ? (nbins - nlevels) / 512 : 1;
    int best = nbins;
    double best_kl = INFINITY;
    for (int i = nlevels; i <= nbins; i += stride) {
        quantize_reference(hist, i, nlevels, f, width, q);
        double kl = kl_divergence(hist, nbins, i, q);
        if (kl < best_kl) best_kl = kl, best = i;
    }
    free(q);
    return (float)best * width;
}
