/* Figures 4 and 5, from the histograms calibration itself keeps: each layer's input |x| with
 * the amax every calibrator picks (and its MSE), and the squared error against the clipping
 * threshold, split into clipping error (values beyond it) and rounding error (within). */
#include "report_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOWN_BINS 96
#define THRESHOLDS 120

/* The calibration histogram up to its largest value, merged into SHOWN_BINS bins. */
static void shown_hist(const tq_calib_hist *h, double *edges, double *counts)
{
    double width = h->range / h->nbins;
    int used = (int)ceil(h->absmax / width);
    if (used < SHOWN_BINS) used = SHOWN_BINS < h->nbins ? SHOWN_BINS : h->nbins;
    if (used > h->nbins) used = h->nbins;
    for (int b = 0; b <= SHOWN_BINS; b++) edges[b] = width * used * b / SHOWN_BINS;
    for (int b = 0; b < SHOWN_BINS; b++) counts[b] = 0;
    for (int j = 0; j < used; j++) counts[(int64_t)j * SHOWN_BINS / used] += h->counts[j];
}

static void layer_panels(tq_report *r, tq_figure *hist_fig, tq_figure *err_fig, const tq_qlayer *l)
{
    tq_calib_hist h;
    if (!tq_quantizer_calib_hist(l->input_q, &h)) return;
    tq_format f = tq_quantizer_format(l->input_q);
    float pct = tq_quantizer_spec(l->input_q)->percentile;
    char fname[16], title[96];
    tq_format_name(f, fname, sizeof fname);
    snprintf(title, sizeof title, "%s input (%s)", l->name, fname);

    double edges[SHOWN_BINS + 1], counts[SHOWN_BINS];
    shown_hist(&h, edges, counts);
    tq_panel *p = tq_figure_panel(r, hist_fig, title, "|x|", "count");
    tq_panel *e = tq_figure_panel(r, err_fig, title, "clipping threshold (amax)", "mean squared error");
    if (!p || !e) return;
    p->ylog = e->ylog = true;
    tq_panel_series(r, p, TQ_SERIES_HIST, "", -1, edges, counts, SHOWN_BINS);

    double t[THRESHOLDS], clip[THRESHOLDS], rnd[THRESHOLDS], total[THRESHOLDS];
    for (int i = 0; i < THRESHOLDS; i++) {
        t[i] = h.absmax * (i + 1) / THRESHOLDS;
        tq_calib_hist_error(&h, (float)t[i], f, &clip[i], &rnd[i]);
        clip[i] /= (double)h.count;
        rnd[i] /= (double)h.count;
        total[i] = clip[i] + rnd[i];
    }
    tq_panel_series(r, e, TQ_SERIES_LINE, "clipping", 7, t, clip, THRESHOLDS);
    tq_panel_series(r, e, TQ_SERIES_LINE, "rounding", 0, t, rnd, THRESHOLDS);
    tq_panel_series(r, e, TQ_SERIES_LINE, "total", 6, t, total, THRESHOLDS);

    for (int k = 0; k < 4; k++) {
        double a = tq_calib_hist_amax(&h, (tq_calib_kind)k, pct, f), c, rd;
        tq_calib_hist_error(&h, (float)a, f, &c, &rd);
        char name[96];
        snprintf(name, sizeof name, "%s %.3g (MSE %.2g)", tq_calib_name((tq_calib_kind)k), a,
                 (c + rd) / (double)h.count);
        tq_series *s = tq_panel_series(r, p, TQ_SERIES_VLINE, name, k + 1, &a, &a, 1);
        if (s) s->dashed = k > 0;
        s = tq_panel_series(r, e, TQ_SERIES_VLINE, tq_calib_name((tq_calib_kind)k), k + 1, &a, &a, 1);
        if (s) s->dashed = true;
    }
}

void tq_fig_activations(tq_report *r, tq_model *m)
{
    tq_figure *hist = tq_report_figure(r, "activations", "Input activations and the calibrators",
        "Each layer's input |x| over the calibration batches, counts on a log scale, and the "
        "amax each calibrator picks from this same histogram: max keeps every value, percentile "
        "cuts the rarest, MSE minimises the mean squared error, entropy the KL divergence of "
        "the distribution. The legend gives each one's MSE. Weights need no such choice: they "
        "are all known, so their amax comes from the weights themselves.");
    tq_figure *err = tq_report_figure(r, "clipping", "Clipping against rounding error",
        "The mean squared error of quantizing the same values with each threshold: a small "
        "amax clips many values (brown), a large one makes the steps coarse (blue). The total "
        "(black) has its minimum where MSE calibration puts amax; the dashed lines are each "
        "calibrator's choice.");
    if (!hist || !err) return;
    hist->cols = err->cols = 2;
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        const tq_qlayer *l = tq_model_qlayer(m, i);
        if (l->input_q) layer_panels(r, hist, err, l);
    }
}
