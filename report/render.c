/* A figure drawn with the SVG writer: its panels in a grid, each with axes fitted to its
 * series, the series, and a legend of those that have a name. */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIG_WIDTH 760.0
#define MARGIN_LEFT 62.0
#define MARGIN_RIGHT 14.0
#define LEGEND_ROW 15.0

typedef struct range {
    double lo, hi;
} range;

static void widen(range *r, double v, bool log_scale)
{
    if (!isfinite(v) || (log_scale && v <= 0)) return;
    if (v < r->lo) r->lo = v;
    if (v > r->hi) r->hi = v;
}

/* The data range of a panel's series along x and y. */
static void data_ranges(const tq_panel *p, range *x, range *y)
{
    *x = (range){INFINITY, -INFINITY};
    *y = (range){INFINITY, -INFINITY};
    if (p->y_from_zero && !p->ylog) y->lo = y->hi = 0;
    for (int k = 0; k < p->n_series; k++) {
        const tq_series *s = &p->series[k];
        int nx = s->kind == TQ_SERIES_HIST ? s->n + 1 : s->n;
        if (s->kind != TQ_SERIES_HLINE && s->kind != TQ_SERIES_BARS)
            for (int i = 0; i < nx; i++) widen(x, s->x ? s->x[i] : i, p->xlog);
        if (s->kind != TQ_SERIES_VLINE)
            for (int i = 0; i < s->n; i++) widen(y, s->y[i], p->ylog);
    }
    if (p->ylog && isfinite(y->hi) && y->lo == y->hi) y->hi = y->lo * 10;
}

static int legend_entries(const tq_panel *p)
{
    int n = 0;
    for (int k = 0; k < p->n_series; k++) n += p->series[k].name[0] != '\0';
    return n;
}

/* Legend rows, 3 entries a row in a narrow panel, 2 when a name is long. */
static int legend_rows(const tq_panel *p, double width)
{
    int n = legend_entries(p), per_row = width >= 500 ? 3 : 2;
    for (int k = 0; k < p->n_series; k++)
        if (strlen(p->series[k].name) > 24) per_row = width >= 500 ? 2 : 1;
    return (n + per_row - 1) / per_row;
}

static void draw_legend(tq_svg *svg, const tq_panel *p, double x, double y, double width)
{
    int n = legend_entries(p), rows = legend_rows(p, width);
    if (!n) return;
    int per_row = (n + rows - 1) / rows, i = 0;
    double col_w = (width - MARGIN_LEFT) / per_row;
    for (int k = 0; k < p->n_series; k++) {
        const tq_series *s = &p->series[k];
        if (!s->name[0]) continue;
        double ex = x + MARGIN_LEFT + col_w * (i % per_row), ey = y + LEGEND_ROW * (i / per_row);
        const char *c = tq_report_color(s->color);
        if (s->kind == TQ_SERIES_BARS || s->kind == TQ_SERIES_HIST)
            tq_svg_rect(svg, ex, ey - 8, 14, 9, c, NULL);
        else
            tq_svg_rect(svg, ex, ey - 5, 14, s->dashed ? 1.5 : 2.5, c, NULL);
        tq_svg_text(svg, ex + 18, ey, "start", 10, 0, s->name);
        i++;
    }
}

/* A heat map panel: the PNG, row and column labels, and each value written in its cell
 * when the matrix is small enough to read them. */
static void draw_heatmap(tq_svg *svg, const tq_panel *p, const tq_series *s, double x, double y,
                         double w, double h)
{
    int cols = p->n_cats > 0 ? p->n_cats : 1, rows = s->n / cols;
    if (rows < 1) return;
    double side = fmin(w - MARGIN_LEFT - MARGIN_RIGHT, h - 40), cw = side / cols, ch = side / rows;
    double left = x + MARGIN_LEFT, top = y + 8;
    size_t len = 0;
    uint8_t *png = tq_png_heatmap(s->y, rows, cols, 4, &len);
    tq_svg_group(svg, "series");
    if (png) tq_svg_png(svg, left, top, side, side, png, len);
    tq_svg_group_end(svg);
    free(png);
    tq_svg_rect(svg, left, top, side, side, "none", "#888");
    char buf[32];
    for (int i = 0; i < rows && i < p->n_cats; i++)
        tq_svg_text(svg, left - 4, top + ch * (i + 0.6), "end", 9, 0, p->cats[i]);
    for (int j = 0; j < cols; j++)
        tq_svg_text(svg, left + cw * (j + 0.5), top + side + 12, "end", 9, -40, p->cats[j]);
    if (rows * cols <= 400 && cw >= 18)
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) {
                double v = s->y[i * cols + j];
                if (!isfinite(v) || v == 0) continue;
                snprintf(buf, sizeof buf, "%.0f", v);
                tq_svg_text(svg, left + cw * (j + 0.5), top + ch * (i + 0.5) + 3, "middle", 8, 0, buf);
            }
    if (p->xlabel[0]) tq_svg_text(svg, left + side / 2, top + side + 44, "middle", 10, 0, p->xlabel);
    if (p->ylabel[0]) tq_svg_text(svg, x + 12, top + side / 2, "middle", 10, -90, p->ylabel);
}

static void draw_panel(tq_svg *svg, const tq_panel *p, double x, double y, double w, double h)
{
    tq_svg_text(svg, x + w / 2, y + 15, "middle", 12, 0, p->title);
    for (int k = 0; k < p->n_series; k++)
        if (p->series[k].kind == TQ_SERIES_HEATMAP) {
            draw_heatmap(svg, p, &p->series[k], x, y + 20, w, h - 20);
            return;
        }
    range xr, yr;
    data_ranges(p, &xr, &yr);
    double legend_h = legend_rows(p, w) * LEGEND_ROW, bottom = p->n_cats ? 58 : 40;
    tq_axes a = {.left = x + MARGIN_LEFT, .top = y + 24, .width = w - MARGIN_LEFT - MARGIN_RIGHT,
                 .xlo = xr.lo, .xhi = xr.hi, .ylo = yr.lo, .yhi = yr.hi, .xlog = p->xlog,
                 .ylog = p->ylog, .n_cats = p->n_cats, .hide_y = p->hide_y};
    a.height = h - 24 - bottom - legend_h;
    const char *cats[TQ_PANEL_MAX_CATS];
    for (int i = 0; i < p->n_cats; i++) cats[i] = p->cats[i];
    tq_svg_axes(svg, &a, p->xlabel, p->ylabel, cats);
    int n_bars = 0, bar = 0;
    for (int k = 0; k < p->n_series; k++) n_bars += p->series[k].kind == TQ_SERIES_BARS;
    for (int k = 0; k < p->n_series; k++) {
        const tq_series *s = &p->series[k];
        const char *c = tq_report_color(s->color);
        tq_svg_group(svg, "series");
        switch (s->kind) {
        case TQ_SERIES_LINE: tq_svg_line(svg, &a, s->x, s->y, s->n, c, s->dashed); break;
        case TQ_SERIES_POINTS: tq_svg_points(svg, &a, s->x, s->y, s->n, c); break;
        case TQ_SERIES_BARS: {
            double bw = 0.8 / n_bars;
            tq_svg_bars(svg, &a, s->x, s->y, s->n, (bar++ - (n_bars - 1) / 2.0) * bw, bw, c);
            break;
        }
        case TQ_SERIES_HIST:
            if (s->x) tq_svg_hist(svg, &a, s->x, s->y, s->n, c, true);
            break;
        case TQ_SERIES_VLINE:
            for (int i = 0; i < s->n; i++) tq_svg_vline(svg, &a, s->x ? s->x[i] : i, c, s->dashed);
            break;
        case TQ_SERIES_HLINE:
            for (int i = 0; i < s->n; i++) tq_svg_hline(svg, &a, s->y[i], c, s->dashed);
            break;
        case TQ_SERIES_HEATMAP: break;
        }
        tq_svg_group_end(svg);
    }
    draw_legend(svg, p, x, a.top + a.height + bottom - 2, w);
}

/* Panel height: taller when alone in its row, plus its legend. */
static double panel_height(const tq_panel *p, int cols)
{
    double w = FIG_WIDTH / cols;
    for (int k = 0; k < p->n_series; k++)
        if (p->series[k].kind == TQ_SERIES_HEATMAP) return fmin(w, 420) - MARGIN_LEFT + 90;
    return (cols == 1 ? 290 : 230) + (p->n_cats ? 18 : 0) + legend_rows(p, w) * LEGEND_ROW;
}

char *tq_figure_svg(const tq_figure *f, size_t *len, int64_t *skipped)
{
    int cols = f->cols >= 1 && f->cols <= 4 ? f->cols : 1;
    int rows = (f->n_panels + cols - 1) / cols;
    double *row_h = calloc((size_t)(rows ? rows : 1), sizeof *row_h), total = 0;
    if (!row_h) return NULL;
    for (int i = 0; i < f->n_panels; i++)
        row_h[i / cols] = fmax(row_h[i / cols], panel_height(f->panels[i], cols));
    for (int r = 0; r < rows; r++) total += row_h[r];
    tq_svg *svg = tq_svg_new(FIG_WIDTH, total > 0 ? total : 40);
    if (!svg) {
        free(row_h);
        return NULL;
    }
    if (!f->n_panels) tq_svg_text(svg, FIG_WIDTH / 2, 24, "middle", 12, 0, "(no data)");
    double y = 0, w = FIG_WIDTH / cols;
    for (int i = 0; i < f->n_panels; i++) {
        draw_panel(svg, f->panels[i], w * (i % cols), y, w, row_h[i / cols]);
        if (i % cols == cols - 1) y += row_h[i / cols];
    }
    free(row_h);
    if (skipped) *skipped += tq_svg_skipped(svg);
    return tq_svg_finish(svg, len);
}
