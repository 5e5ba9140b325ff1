/* Figures 3 and 10: each layer's weights against its quantizer (histogram, quantized values,
 * grid, +-amax), and the per-channel ranges that make per-channel scales worth having. */
#include "report_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEIGHT_BINS 80

static float largest(const float *v, int64_t n, bool absolute)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = absolute ? fabsf(v[i]) : v[i];
        if (a > m) m = a;
    }
    return m;
}

/* "int4 per channel", "e4m3", "mxfp4 blocks" */
static void describe(const tq_quantizer *q, char *buf, size_t len)
{
    const tq_qspec *s = tq_quantizer_spec(q);
    char f[16];
    tq_format_name(tq_quantizer_format(q), f, sizeof f);
    const char *block = s->block == TQ_BLOCK_CHANNEL ? " per channel"
                      : s->block == TQ_BLOCK_BLOCK ? " per block" : "";
    const char *scale = s->scale == TQ_SCALE_E8M0 ? ", E8M0 scales"
                      : s->scale == TQ_SCALE_NVFP4 ? ", E4M3 scales" : "";
    snprintf(buf, len, "%s%s%s", f, block, scale);
}

/* Per channel (along the weights' first axis), each channel has its own grid: dividing the
 * weights and their quantized values by their channel's amax puts them all on one. */
static bool per_out_channel(const tq_quantizer *q, const tq_tensor *w)
{
    const tq_qspec *s = tq_quantizer_spec(q);
    return s->block == TQ_BLOCK_CHANNEL && s->axis == 0 && s->scale == TQ_SCALE_FLOAT &&
           tq_quantizer_amax_count(q) == w->shape[0];
}

static void weight_panel(tq_report *r, tq_figure *f, const tq_qlayer *l, bool after_qat)
{
    const tq_quantizer *q = l->weight_q;
    int64_t n = l->weight->numel;
    float *wq = malloc((size_t)n * sizeof *wq), *w = malloc((size_t)n * sizeof *w);
    tq_error e = {0};
    if (!wq || !w || tq_quantizer_apply(q, l->weight, wq, &e)) {
        free(wq);
        free(w);
        return;
    }
    memcpy(w, l->weight->data, (size_t)n * sizeof *w);
    float amax = largest(tq_quantizer_amax(q), tq_quantizer_amax_count(q), false);
    bool normalised = per_out_channel(q, l->weight);
    if (normalised) {
        const float *a = tq_quantizer_amax(q);
        int64_t per = n / l->weight->shape[0];
        for (int64_t i = 0; i < n; i++) {
            float c = a[i / per] > 0 ? a[i / per] : 1;
            w[i] /= c;
            wq[i] /= c;
        }
        amax = 1;
    }
    double m = fmax(largest(w, n, true), amax) * 1.04;
    if (!(m > 0)) m = 1;
    double edges[WEIGHT_BINS + 1], counts[WEIGHT_BINS], qcounts[WEIGHT_BINS];
    for (int b = 0; b <= WEIGHT_BINS; b++) edges[b] = -m + 2 * m * b / WEIGHT_BINS;
    tq_histogram(w, n, -m, m, WEIGHT_BINS, true, counts, NULL);
    tq_histogram(wq, n, -m, m, WEIGHT_BINS, true, qcounts, NULL);
    free(wq);
    free(w);
    char title[96], how[48];
    describe(q, how, sizeof how);
    snprintf(title, sizeof title, "%s: %s", l->name, how);
    tq_panel *p = tq_figure_panel(r, f, title, normalised ? "weight / its channel's amax" : "weight",
                                  "count");
    if (!p) return;
    p->ylog = true;
    tq_panel_series(r, p, TQ_SERIES_HIST, after_qat ? "latent float" : "float", 0, edges, counts,
                    WEIGHT_BINS);
    tq_panel_series(r, p, TQ_SERIES_HIST, "quantized", 3, edges, qcounts, WEIGHT_BINS);
    /* The grid (per block: of the largest amax): every code's value when few enough to see. */
    const tq_qspec *s = tq_quantizer_spec(q);
    tq_grid_entry grid[256];
    tq_format fmt = tq_quantizer_format(q);
    int ng = tq_format_grid(fmt, grid, 256);
    if (s->scale == TQ_SCALE_FLOAT && ng <= 33 && amax > 0) {
        double v[256], step = amax / tq_format_max(fmt);
        for (int i = 0; i < ng; i++) v[i] = grid[i].value * step;
        tq_series *g = tq_panel_series(r, p, TQ_SERIES_VLINE, "grid", -1, v, v, ng);
        if (g) g->dashed = true;
    }
    double pm[2] = {-amax, amax};
    tq_panel_series(r, p, TQ_SERIES_VLINE, s->block == TQ_BLOCK_BLOCK ? "±largest amax" : "±amax",
                    3, pm, pm, 2);
}

void tq_fig_weights(tq_report *r, tq_model *m, bool after_qat)
{
    tq_figure *f = tq_report_figure(r, "weights",
        after_qat ? "Weights after QAT: latent float values beside their quantized values"
                  : "Weights and the quantization grid",
        after_qat ? "QAT keeps float weights (latent) and quantizes them in every forward pass: "
                    "blue is what the optimizer updates, red what the network computes with. "
                    "Counts on a log scale; dashed grey lines are the grid of representable "
                    "values (formats with few enough), red dashed lines +-amax; per-channel weights "
                    "divided by their channel's amax."
                  : "Each layer's float weights (blue) and their quantized values (red), counts "
                    "on a log scale. Dashed grey lines: the representable values (formats with "
                    "few enough to draw), red dashed lines: +-amax. Weights beyond amax are "
                    "clipped; within it, each lands on the nearest grid value. Per-channel weights are "
                    "divided by their channel's amax, so that all channels share one grid.");
    if (!f) return;
    f->cols = 2;
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        const tq_qlayer *l = tq_model_qlayer(m, i);
        if (l->weight_q && tq_quantizer_amax(l->weight_q)) weight_panel(r, f, l, after_qat);
    }
}
