/* Histogram calibrators: percentile and MSE (expected squared error per bin); entropy is in
 * calib_entropy.c. */
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

float tq_calib_mse(const double *hist, int nbins, float range, float cap, tq_format f)
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
    /* Candidates: the bin edges, capped at the abs max seen (a grown range reaches beyond
     * it, and the caller caps the result: a threshold is judged as it will be used).
     * A coarse pass over every 8th, then every one around the best. */
    const int coarse = 8;
    int best = nbins;
    double best_err = DBL_MAX;
    for (int i = coarse; i <= nbins; i += coarse) {
        double e = expected_sq_error(centre, count, n, fminf((float)i * width, cap), f);
        if (e < best_err) best_err = e, best = i;
    }
    int lo = best - coarse + 1 > 1 ? best - coarse + 1 : 1;
    int hi = best + coarse - 1 < nbins ? best + coarse - 1 : nbins;
    for (int i = lo; i <= hi; i++) {
        double e = expected_sq_error(centre, count, n, fminf((float)i * width, cap), f);
        if (e < best_err) best_err = e, best = i;
    }
    free(centre);
    free(count);
    return fminf((float)best * width, cap);
}
