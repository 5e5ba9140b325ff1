/* The entropy calibrator: the threshold minimising the KL divergence between the clipped
 * histogram and its quantized version, over every threshold, as TensorRT does (Migacz, "8-bit
 * Inference with TensorRT", GTC 2017). */
#include "quant_internal.h"

#include <stdlib.h>

/* Prefix sums over the histogram that make one threshold's divergence cost O(groups). */
typedef struct kl_sums {
    double *count;  /* count[k]: counts of bins < k */
    double *hlogh;  /* hlogh[k]: sum of h log h over the non-empty bins < k */
    double *nonempty; /* nonempty[k]: non-empty bins < k */
} kl_sums;

/* KL(P || Q) for threshold i (bins kept), where P is hist[0..i) with everything beyond
 * folded into bin i-1 and Q spreads each group's total evenly over its non-empty bins
 * (groups start at start[0..ngroups), the last one ends at i). With p, q unnormalised,
 * P and Q their totals,
 *     KL = (sum p log p - sum p log q) / P + log(Q / P),
 * and q is S_g / n_g on group g's n_g non-empty bins, so the bins below i-1 contribute
 * sum h log h (a prefix sum) and S_g log(S_g / n_g) per group; bin i-1 adds the outliers. */
static double kl_divergence(const double *hist, const kl_sums *k, int nbins, int i,
                            const int *start, int ngroups)
{
    double p_total = k->count[nbins], q_total = k->count[i], outliers = p_total - q_total;
    double last = hist[i - 1] + outliers;
    if (p_total <= 0.0 || q_total <= 0.0) return INFINITY;
    if (last > 0.0 && hist[i - 1] <= 0.0) return INFINITY; /* P has mass where Q has none */
    double p_log_q = 0.0, log_q_last = 0.0;
    for (int g = 0; g < ngroups; g++) {
        int stop = g + 1 < ngroups ? start[g + 1] : i;
        double sum = k->count[stop] - k->count[start[g]];
        double n = k->nonempty[stop] - k->nonempty[start[g]];
        if (n <= 0.0) continue;
        double log_q = log(sum / n);
        p_log_q += sum * log_q;
        if (g == ngroups - 1) log_q_last = log_q;
    }
    p_log_q += outliers * log_q_last; /* bin i-1 holds the outliers too */
    double p_log_p = k->hlogh[i - 1] + (last > 0.0 ? last * log(last) : 0.0);
    return (p_log_p - p_log_q) / p_total + log(q_total / p_total);
}

/* Group starts for threshold i. Integer grids: nlevels equal groups of i / nlevels bins,
 * the last one taking the remainder, as in TensorRT. FP grids: bins grouped by the grid
 * value their centre rounds to at scale i * width / max. Returns the number of groups. */
static int group_starts(int i, int nlevels, tq_format f, float width, int *start)
{
    if (!tq_format_is_float(f)) {
        int merged = i / nlevels;
        for (int g = 0; g < nlevels; g++) start[g] = g * merged;
        return nlevels;
    }
    float scale = (float)i * width / tq_format_max(f);
    int n = 0;
    float level = NAN;
    for (int j = 0; j < i; j++) {
        float v = tq_format_round(f, ((float)j + 0.5f) * width / scale);
        if (j == 0 || v != level) start[n++] = j;
        level = v;
    }
    return n;
}

float tq_calib_entropy(const double *hist, int nbins, float range, float cap, tq_format f)
{
    int nlevels = tq_format_nonneg_levels(f);
    if (nlevels < 2) nlevels = 2;
    if (nlevels >= nbins) return range;
    kl_sums k = {malloc((size_t)(nbins + 1) * sizeof(double)),
                 malloc((size_t)(nbins + 1) * sizeof(double)),
                 malloc((size_t)(nbins + 1) * sizeof(double))};
    int *start = malloc((size_t)nbins * sizeof *start);
    float best_amax = range; /* max calibration is the safe answer without memory */
    if (k.count && k.hlogh && k.nonempty && start) {
        k.count[0] = k.hlogh[0] = k.nonempty[0] = 0.0;
        for (int j = 0; j < nbins; j++) {
            double h = hist[j];
            k.count[j + 1] = k.count[j] + h;
            k.hlogh[j + 1] = k.hlogh[j] + (h > 0.0 ? h * log(h) : 0.0);
            k.nonempty[j + 1] = k.nonempty[j] + (h > 0.0);
        }
        float width = range / (float)nbins;
        /* thresholds up to the bin holding the abs max seen: a grown range reaches beyond it */
        int top = nbins;
        while (top > nlevels && (float)(top - 1) * width >= cap) top--;
        int best = top;
        double best_kl = INFINITY;
        for (int i = nlevels; i <= top; i++) {
            int ngroups = group_starts(i, nlevels, f, width, start);
            double kl = kl_divergence(hist, &k, nbins, i, start, ngroups);
            if (kl < best_kl) best_kl = kl, best = i;
        }
        best_amax = (float)best * width;
    }
    free(k.count);
    free(k.hlogh);
    free(k.nonempty);
    free(start);
    return best_amax;
}
