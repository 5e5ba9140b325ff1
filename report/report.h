/* tinyqat report: figures as plain data (panels of series), a small SVG writer that draws them,
 * PNG heat maps, and the self-contained HTML page that holds them. Knows nothing of models:
 * train/ turns a run into figures (train/fig_*.c) and saves and reloads them as JSON. */
#ifndef TINYQAT_REPORT_H
#define TINYQAT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- the SVG writer
 * Draws into a growing buffer. Text is escaped for XML; values that are NaN or infinite are
 * skipped and counted, never written, and values not positive on a log axis are left out:
 * every document it produces is well-formed XML, whatever the data. */

typedef struct tq_svg tq_svg;

/* A plot area on the page (pixels) and the data range it shows. */
typedef struct tq_axes {
    double left, top, width, height; /* pixels */
    double xlo, xhi, ylo, yhi;       /* data; on a log axis, both > 0 */
    bool xlog, ylog;
    int n_cats;                      /* > 0: x is categorical, categories at x = 0..n_cats-1 */
    bool hide_y;                     /* no y tick labels (rows told apart by the legend) */
} tq_axes;

/* An empty document of width x height pixels; NULL without memory. */
tq_svg *tq_svg_new(double width, double height);
/* The document closed, as a NUL-terminated string of *len bytes (caller frees), or NULL
 * (without memory at any point); s is freed either way. */
char *tq_svg_finish(tq_svg *s, size_t *len);
void tq_svg_free(tq_svg *s);
/* NaN or infinite values skipped so far. */
int64_t tq_svg_skipped(const tq_svg *s);

/* Text at (x, y) pixels; anchor "start", "middle" or "end"; rotate in degrees (0: none). */
void tq_svg_text(tq_svg *s, double x, double y, const char *anchor, double size, double rotate,
                 const char *text);
void tq_svg_rect(tq_svg *s, double x, double y, double w, double h, const char *fill,
                 const char *stroke);
/* A group of elements with a class (escaped), e.g. "series" around one series' marks. */
void tq_svg_group(tq_svg *s, const char *cls);
void tq_svg_group_end(tq_svg *s);
/* Frame, grid lines, nice ticks and labels for a; categories label a categorical x. The range
 * is widened to round ticks (linear) or whole decades (log), and an empty one (lo == hi, or
 * nothing finite) to a range around it. */
void tq_svg_axes(tq_svg *s, tq_axes *a, const char *xlabel, const char *ylabel,
                 const char *const *categories);
/* Data to pixels; false (nothing written) when the point cannot be drawn on a. */
bool tq_axes_map(const tq_axes *a, double x, double y, double *px, double *py);

/* Series on axes a, in colour `color` (CSS). x NULL: 0, 1, 2, ... A line is broken where a
 * value is skipped, and marks its points when it has few (one alone would not show). */
void tq_svg_line(tq_svg *s, const tq_axes *a, const double *x, const double *y, int n,
                 const char *color, bool dashed);
void tq_svg_points(tq_svg *s, const tq_axes *a, const double *x, const double *y, int n,
                   const char *color);
/* Bars from the axis floor to y, centred at x + offset, width in x units. */
void tq_svg_bars(tq_svg *s, const tq_axes *a, const double *x, const double *y, int n,
                 double offset, double width, const char *color);
/* A histogram's outline: nbins counts between nbins + 1 edges, filled lightly when fill. */
void tq_svg_hist(tq_svg *s, const tq_axes *a, const double *edges, const double *counts,
                 int nbins, const char *color, bool fill);
/* A vertical line at data x, or a horizontal one at data y, across the plot area. */
void tq_svg_vline(tq_svg *s, const tq_axes *a, double x, const char *color, bool dashed);
void tq_svg_hline(tq_svg *s, const tq_axes *a, double y, const char *color, bool dashed);
/* A PNG (len bytes) placed at (x, y), w x h pixels, inline as a data: URI. */
void tq_svg_png(tq_svg *s, double x, double y, double w, double h, const uint8_t *png,
                size_t len);

/* Up to cap round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten,
 * about `target` of them), the range widened to the outer ticks into *nlo, *nhi. lo == hi
 * is widened by a tenth of the value either side (1 at zero). Returns the count. */
int tq_nice_ticks(double lo, double hi, int target, double *ticks, int cap, double *nlo,
                  double *nhi);
/* Decade ticks 10^k covering [lo, hi] (both > 0), the range widened to whole decades. */
int tq_log_ticks(double lo, double hi, double *ticks, int cap, double *nlo, double *nhi);
/* A tick label: short, exact for round values ("0.5", "2e-06", "1000"). */
void tq_tick_label(double v, char *buf, size_t len);

/* ---------------------------------------------------------------- PNG */

/* rows x cols values as a heat map PNG, cell x cell pixels a value: white to blue from 0 to
 * the largest, or blue (negative) through white to red (positive) when any is negative.
 * NULL without memory; *len bytes, caller frees. Non-finite values are grey. */
uint8_t *tq_png_heatmap(const double *v, int rows, int cols, int cell, size_t *len);
/* Base64 of n bytes, NUL-terminated (caller frees), or NULL. */
char *tq_base64(const uint8_t *data, size_t n);

/* ---------------------------------------------------------------- figures as data */

typedef enum tq_series_kind {
    TQ_SERIES_LINE,    /* (x, y) points joined */
    TQ_SERIES_POINTS,  /* (x, y) markers */
    TQ_SERIES_BARS,    /* one bar per category; several BARS series are grouped side by side */
    TQ_SERIES_HIST,    /* n counts in y between n + 1 edges in x */
    TQ_SERIES_VLINE,   /* vertical lines at each x (y unused) */
    TQ_SERIES_HLINE,   /* horizontal lines at each y (x unused) */
    TQ_SERIES_HEATMAP, /* rows x categories values in y, row-major; rows = n / categories */
} tq_series_kind;
#define TQ_SERIES_KINDS 7
const char *tq_series_kind_name(tq_series_kind k);
bool tq_series_kind_parse(const char *s, tq_series_kind *out);

typedef struct tq_series {
    char name[96];       /* the legend's text ("" : not in the legend) */
    tq_series_kind kind;
    int color;           /* index into the palette (tq_report_color) */
    bool dashed;
    int n;               /* values in y */
    double *x, *y;       /* x: n values (n + 1 for HIST), or NULL for 0..n-1 */
} tq_series;

#define TQ_PANEL_MAX_SERIES 24
#define TQ_PANEL_MAX_CATS 64
typedef struct tq_panel {
    char title[96], xlabel[64], ylabel[64];
    bool xlog, ylog;
    bool y_from_zero;   /* the y axis starts at 0 (bars, counts, fractions) */
    bool hide_y;        /* y only separates rows: no tick labels */
    int n_cats;
    char cats[TQ_PANEL_MAX_CATS][32];
    int n_series;
    tq_series series[TQ_PANEL_MAX_SERIES];
} tq_panel;

typedef struct tq_figure {
    char id[48];        /* file name stem and HTML anchor: [a-z0-9-] */
    char title[128];
    char caption[1024]; /* what to read in it */
    int cols;           /* panels a row */
    int n_panels;
    tq_panel **panels;  /* each allocated alone: a panel stays put while more are added */
} tq_figure;

#define TQ_REPORT_MAX_FIGS 32
typedef struct tq_report {
    char title[256];
    char subtitle[1024];  /* one line: model, data, what was run */
    char command[32];     /* the command that made it: compare, ptq, qat, sensitivity */
    int n_figs;
    tq_figure figs[TQ_REPORT_MAX_FIGS];
    bool failed;          /* a builder ran out of memory or room: writing reports it */
} tq_report;

/* Builders: each returns NULL (and marks r->failed) when out of memory or room. Data are
 * copied. A figure's panels belong to it; tq_report_free frees everything. */
tq_figure *tq_report_figure(tq_report *r, const char *id, const char *title, const char *caption);
tq_panel *tq_figure_panel(tq_report *r, tq_figure *f, const char *title, const char *xlabel,
                          const char *ylabel);
tq_series *tq_panel_series(tq_report *r, tq_panel *p, tq_series_kind kind, const char *name,
                           int color, const double *x, const double *y, int n);
/* Sets p's categories (at most TQ_PANEL_MAX_CATS; longer names are cut). */
void tq_panel_categories(tq_panel *p, const char *const *names, int n);
void tq_report_free(tq_report *r);
/* The palette: colour i (wrapping) as CSS; negative: grey. */
const char *tq_report_color(int i);

/* A figure drawn as one SVG document (caller frees; NULL without memory); values it could
 * not draw are added to *skipped. */
char *tq_figure_svg(const tq_figure *f, size_t *len, int64_t *skipped);
/* The whole report as one HTML page: CSS and every figure's SVG inline, nothing fetched. */
char *tq_report_html(const tq_report *r, size_t *len, int64_t *skipped);

/* Counts of the finite values of v in nbins equal bins over [lo, hi] (the last bin closed);
 * values outside go to the end bins when clamp, else are left out. Returns the finite
 * values counted; *nonfinite (may be NULL) gets how many were NaN or infinite. */
int64_t tq_histogram(const float *v, int64_t n, double lo, double hi, int nbins, bool clamp,
                     double *counts, int64_t *nonfinite);

#ifdef __cplusplus
}
#endif
#endif
