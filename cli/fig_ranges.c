/* Figure 10: per output channel, the largest |weight|, against the one range a per-tensor
 * scale must cover; before and after SmoothQuant or AWQ moved range into the weights. */
#include "report_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tq_status tq_ranges_take(tq_ranges *g, tq_model *m, tq_error *err)
{
    memset(g, 0, sizeof *g);
    for (int i = 0; i < tq_model_qlayer_count(m) && i < TQ_CLIP_MAX; i++) {
        const tq_tensor *w = tq_model_qlayer(m, i)->weight;
        int ch = w->shape[0];
        int64_t per = w->numel / ch;
        double *a = calloc((size_t)ch, sizeof *a);
        if (!a) {
            tq_ranges_free(g);
            return tq_fail(err, TQ_STATUS_NOMEM, "report: out of memory");
        }
        for (int c = 0; c < ch; c++)
            for (int64_t k = 0; k < per; k++) a[c] = fmax(a[c], fabsf(w->data[c * per + k]));
        g->absmax[i] = a;
        g->n_ch[i] = ch;
        g->n_layers = i + 1;
    }
    return TQ_STATUS_OK;
}

void tq_ranges_free(tq_ranges *g)
{
    for (int i = 0; i < g->n_layers; i++) free(g->absmax[i]);
    memset(g, 0, sizeof *g);
}

static double max_of(const double *v, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, v[i]);
    return m;
}

void tq_fig_ranges(tq_report *r, tq_model *m, const tq_ranges *before, const char *algo)
{
    tq_ranges now;
    if (tq_ranges_take(&now, m, &(tq_error){0})) return;
    char caption[512];
    snprintf(caption, sizeof caption,
             "Per output channel, the largest |weight| (points) against the per-tensor range, "
             "the largest of them all (line). A per-tensor scale must cover the widest channel, "
             "so narrow channels use few of the grid's values; per-channel scales give each "
             "its own.%s", algo ? " Grey: before rescaling, coloured: after it moved range "
                                  "between activations and weights." : "");
    tq_figure *f = tq_report_figure(r, "ranges", "Per-channel weight ranges", caption);
    if (f) f->cols = 2;
    for (int i = 0; f && i < now.n_layers; i++) {
        const tq_qlayer *l = tq_model_qlayer(m, i);
        tq_panel *p = tq_figure_panel(r, f, l->name, "output channel", "max |w|");
        if (!p) break;
        p->y_from_zero = true;
        char name[64];
        if (before && algo && i < before->n_layers && before->n_ch[i] == now.n_ch[i]) {
            double t = max_of(before->absmax[i], before->n_ch[i]);
            snprintf(name, sizeof name, "before %s", algo);
            tq_panel_series(r, p, TQ_SERIES_POINTS, name, -1, NULL, before->absmax[i], before->n_ch[i]);
            tq_panel_series(r, p, TQ_SERIES_HLINE, "", -1, NULL, &t, 1);
        }
        double t = max_of(now.absmax[i], now.n_ch[i]);
        tq_panel_series(r, p, TQ_SERIES_POINTS, algo ? "after" : "per channel", 0, NULL,
                        now.absmax[i], now.n_ch[i]);
        tq_panel_series(r, p, TQ_SERIES_HLINE, "per tensor", 3, NULL, &t, 1);
    }
    tq_ranges_free(&now);
}
