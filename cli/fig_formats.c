/* Figure 8: every value each format in use can represent, on one number line: linear and
 * relative to the format's largest value (where the grid is dense), and on a log scale
 * (how many decades it spans). */
#include "report_out.h"

#include <stdio.h>
#include <string.h>

#define MAX_FORMATS 8

static void add_format(tq_format *seen, int *n, tq_format f)
{
    for (int i = 0; i < *n; i++)
        if (seen[i].kind == f.kind && seen[i].bits == f.bits && seen[i].narrow == f.narrow) return;
    if (*n < MAX_FORMATS) seen[(*n)++] = f;
}

void tq_fig_formats(tq_report *r, tq_model *m)
{
    tq_format seen[MAX_FORMATS];
    int n = 0;
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        const tq_qlayer *l = tq_model_qlayer(m, i);
        if (l->weight_q) add_format(seen, &n, tq_quantizer_format(l->weight_q));
        if (l->input_q) add_format(seen, &n, tq_quantizer_format(l->input_q));
    }
    if (!n) return;
    tq_figure *f = tq_report_figure(r, "formats", "The formats' representable values",
        "Each row is one format in use, each point a value it can represent. Left: divided by "
        "the format's largest value, so a scale maps them onto the same range: integers are "
        "evenly spaced, floating-point formats crowd near zero. Right: the positive values on "
        "a log scale: the decades a format spans without changing its scale.");
    if (!f) return;
    f->cols = 2;
    tq_panel *lin = tq_figure_panel(r, f, "relative to the largest value", "value / max", "format");
    tq_panel *lg = tq_figure_panel(r, f, "positive values", "value", "format");
    if (!lin || !lg) return;
    lg->xlog = true;
    lin->hide_y = lg->hide_y = true;
    for (int k = 0; k < n; k++) {
        tq_grid_entry grid[256];
        int ng = tq_format_grid(seen[k], grid, 256);
        double x[256], y[256], px[256], py[256], top = tq_format_max(seen[k]);
        int np = 0;
        for (int i = 0; i < ng; i++) {
            x[i] = grid[i].value / top;
            y[i] = n - k;
            if (grid[i].value > 0) px[np] = grid[i].value, py[np++] = n - k;
        }
        char name[48];
        tq_format_name(seen[k], name, sizeof name);
        snprintf(name + strlen(name), sizeof name - strlen(name), " (%d values)", ng);
        tq_panel_series(r, lin, TQ_SERIES_POINTS, name, k, x, y, ng);
        tq_panel_series(r, lg, TQ_SERIES_POINTS, "", k, px, py, np);
    }
}
