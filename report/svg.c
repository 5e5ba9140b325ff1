/* The SVG writer: a growing buffer of elements, text escaped for XML, non-finite values
 * skipped and counted, so whatever the data the document stays well-formed. */
#include "report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tq_svg {
    char *buf;
    size_t len, cap;
    bool oom;
    int64_t skipped;
};

static void put(tq_svg *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(tq_svg *s, const char *fmt, ...)
{
    if (s->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        s->oom = true;
        return;
    }
    if (s->len + (size_t)n + 1 > s->cap) {
        size_t cap = s->cap * 2;
        while (cap < s->len + (size_t)n + 1) cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b) {
            s->oom = true;
            return;
        }
        s->buf = b;
        s->cap = cap;
        va_start(ap, fmt);
        vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
    }
    s->len += (size_t)n;
}

/* Text content or an attribute value: &, <, >, quotes escaped; control characters (not
 * allowed in XML 1.0) and bytes of broken UTF-8 become '?'. */
static void put_escaped(tq_svg *s, const char *t)
{
    const unsigned char *p = (const unsigned char *)t;
    while (*p) {
        unsigned char c = *p;
        int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
                  : (c & 0xF8) == 0xF0 ? 3 : -1;
        bool ok = extra >= 0 && !(extra == 1 && c < 0xC2);
        for (int k = 1; ok && k <= extra; k++) ok = (p[k] & 0xC0) == 0x80;
        if (!ok) {
            put(s, "?");
            p++;
            continue;
        }
        if (extra) {
            put(s, "%.*s", extra + 1, (const char *)p);
            p += extra + 1;
            continue;
        }
        switch (c) {
        case '&': put(s, "&amp;"); break;
        case '<': put(s, "&lt;"); break;
        case '>': put(s, "&gt;"); break;
        case '"': put(s, "&quot;"); break;
        case '\'': put(s, "&apos;"); break;
        default: put(s, "%c", c < 0x20 && c != '\t' && c != '\n' ? '?' : (char)c);
        }
        p++;
    }
}

tq_svg *tq_svg_new(double width, double height)
{
    tq_svg *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cap = 4096;
    s->buf = malloc(s->cap);
    if (!s->buf) {
        free(s);
        return NULL;
    }
    s->buf[0] = '\0';
    put(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
           "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n",
        width, height, width, height);
    return s;
}

void tq_svg_free(tq_svg *s)
{
    if (!s) return;
    free(s->buf);
    free(s);
}

char *tq_svg_finish(tq_svg *s, size_t *len)
{
    put(s, "</svg>\n");
    char *out = s->oom ? NULL : s->buf;
    if (out) {
        *len = s->len;
        s->buf = NULL;
    }
    tq_svg_free(s);
    return out;
}

int64_t tq_svg_skipped(const tq_svg *s) { return s->skipped; }

void tq_svg_text(tq_svg *s, double x, double y, const char *anchor, double size, double rotate,
                 const char *text)
{
    put(s, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"%s\"", x, y, size,
        anchor);
    if (rotate != 0) put(s, " transform=\"rotate(%.0f %.1f %.1f)\"", rotate, x, y);
    put(s, ">");
    put_escaped(s, text);
    put(s, "</text>\n");
}

void tq_svg_rect(tq_svg *s, double x, double y, double w, double h, const char *fill,
                 const char *stroke)
{
    put(s, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"%s\"/>\n",
        x, y, w > 0 ? w : 0, h > 0 ? h : 0, fill, stroke ? stroke : "none");
}

void tq_svg_group(tq_svg *s, const char *cls)
{
    put(s, "<g class=\"");
    put_escaped(s, cls);
    put(s, "\">\n");
}

void tq_svg_group_end(tq_svg *s) { put(s, "</g>\n"); }

/* A value that could not be drawn: counted when it is NaN or infinite (a non-positive value
 * on a log axis is left out without a count: the axis has no place for it). */
static void skip(tq_svg *s, double x, double y)
{
    s->skipped += !isfinite(x) || !isfinite(y);
}

static double to_unit(double v, double lo, double hi, bool log_scale)
{
    if (log_scale) return (log10(v) - log10(lo)) / (log10(hi) - log10(lo));
    return (v - lo) / (hi - lo);
}

bool tq_axes_map(const tq_axes *a, double x, double y, double *px, double *py)
{
    if (!isfinite(x) || !isfinite(y) || (a->xlog && x <= 0) || (a->ylog && y <= 0)) return false;
    *px = a->left + a->width * to_unit(x, a->xlo, a->xhi, a->xlog);
    *py = a->top + a->height * (1 - to_unit(y, a->ylo, a->yhi, a->ylog));
    return isfinite(*px) && isfinite(*py);
}

/* One axis's range made drawable and its ticks: round values, or decades on a log axis. */
static int axis_ticks(double *lo, double *hi, bool log_scale, double *ticks, int cap)
{
    if (log_scale) {
        if (!(*lo > 0) || !isfinite(*lo)) *lo = *hi > 0 && isfinite(*hi) ? *hi / 10 : 1;
        if (!(*hi > 0) || !isfinite(*hi)) *hi = *lo * 10;
        return tq_log_ticks(*lo, *hi, ticks, cap, lo, hi);
    }
    if (!isfinite(*lo) || !isfinite(*hi)) *lo = *hi = 0;
    return tq_nice_ticks(*lo, *hi, 5, ticks, cap, lo, hi);
}

void tq_svg_axes(tq_svg *s, tq_axes *a, const char *xlabel, const char *ylabel,
                 const char *const *categories)
{
    /* Both ranges settled first: a tick on one axis is placed through the other's range. */
    double xt[64], yt[64];
    char label[32];
    int nx = 0;
    if (a->n_cats > 0) {
        a->xlo = -0.5;
        a->xhi = a->n_cats - 0.5;
        a->xlog = false;
    } else {
        nx = axis_ticks(&a->xlo, &a->xhi, a->xlog, xt, 64);
    }
    int ny = axis_ticks(&a->ylo, &a->yhi, a->ylog, yt, 64);
    double x_any = a->xlog ? a->xhi : a->xlo, y_any = a->ylog ? a->yhi : a->ylo, px, py;
    tq_svg_rect(s, a->left, a->top, a->width, a->height, "#fff", "#888");
    for (int i = 0; i < ny; i++) {
        if (!tq_axes_map(a, x_any, yt[i], &px, &py)) continue;
        put(s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
            a->left, py, a->left + a->width, py);
        tq_tick_label(yt[i], label, sizeof label);
        if (!a->hide_y) tq_svg_text(s, a->left - 4, py + 4, "end", 10, 0, label);
    }
    for (int i = 0; i < nx; i++) {
        if (!tq_axes_map(a, xt[i], y_any, &px, &py)) continue;
        put(s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
            px, a->top, px, a->top + a->height);
        tq_tick_label(xt[i], label, sizeof label);
        tq_svg_text(s, px, a->top + a->height + 13, "middle", 10, 0, label);
    }
    double step = a->n_cats > 0 ? a->width / a->n_cats : 0;
    for (int i = 0; i < a->n_cats && categories; i++) {
        bool slant = step < 48;
        tq_svg_text(s, a->left + step * (i + 0.5), a->top + a->height + 13, slant ? "end" : "middle",
                    10, slant ? -40 : 0, categories[i]);
    }
    if (xlabel && *xlabel)
        tq_svg_text(s, a->left + a->width / 2, a->top + a->height + (a->n_cats ? 44 : 28),
                    "middle", 11, 0, xlabel);
    if (ylabel && *ylabel)
        tq_svg_text(s, a->left - 40, a->top + a->height / 2, "middle", 11, -90, ylabel);
}

void tq_svg_line(tq_svg *s, const tq_axes *a, const double *x, const double *y, int n,
                 const char *color, bool dashed)
{
    bool open = false;
    for (int i = 0; i < n; i++) {
        double px, py;
        if (!tq_axes_map(a, x ? x[i] : i, y[i], &px, &py)) {
            skip(s, x ? x[i] : i, y[i]);
            if (open) put(s, "\"/>\n");
            open = false;
            continue;
        }
        if (!open)
            put(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"", color,
                dashed ? " stroke-dasharray=\"5 3\"" : "");
        put(s, "%s%.1f,%.1f", open ? " " : "", px, py);
        open = true;
    }
    if (open) put(s, "\"/>\n");
    if (n <= 40)
        for (int i = 0; i < n; i++) {
            double px, py;
            if (tq_axes_map(a, x ? x[i] : i, y[i], &px, &py))
                put(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.8\" fill=\"%s\"/>\n", px, py, color);
        }
}

void tq_svg_points(tq_svg *s, const tq_axes *a, const double *x, const double *y, int n,
                   const char *color)
{
    for (int i = 0; i < n; i++) {
        double px, py;
        if (!tq_axes_map(a, x ? x[i] : i, y[i], &px, &py)) {
            skip(s, x ? x[i] : i, y[i]);
            continue;
        }
        put(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", px, py, color);
    }
}

/* The pixel row of the axis floor: y = 0 on a linear axis that holds it, else the bottom. */
static double floor_py(const tq_axes *a)
{
    double px, py;
    if (!a->ylog && a->ylo <= 0 && a->yhi >= 0 && tq_axes_map(a, a->xlo, 0, &px, &py)) return py;
    return a->top + a->height;
}

void tq_svg_bars(tq_svg *s, const tq_axes *a, const double *x, const double *y, int n,
                 double offset, double width, const char *color)
{
    double base = floor_py(a), scale = a->width / (a->xhi - a->xlo);
    for (int i = 0; i < n; i++) {
        double px, py;
        if (!tq_axes_map(a, (x ? x[i] : i) + offset, y[i], &px, &py)) {
            skip(s, x ? x[i] : i, y[i]);
            continue;
        }
        double top = py < base ? py : base, h = fabs(base - py);
        tq_svg_rect(s, px - width * scale / 2, top, width * scale, h, color, NULL);
    }
}

void tq_svg_hist(tq_svg *s, const tq_axes *a, const double *edges, const double *counts,
                 int nbins, const char *color, bool fill)
{
    /* One path: up each bin's left edge, across its top, down at the end (log axes draw
     * empty bins at the floor). */
    double base = a->top + a->height;
    bool open = false;
    for (int i = 0; i < nbins; i++) {
        double x0, x1, py, dummy;
        double c = counts[i];
        if (!isfinite(c) || !tq_axes_map(a, edges[i], a->ylog ? a->ylo : 0, &x0, &dummy) ||
            !tq_axes_map(a, edges[i + 1], a->ylog ? a->ylo : 0, &x1, &dummy)) {
            skip(s, edges[i] + edges[i + 1], c);
            continue;
        }
        if (a->ylog && c <= 0) py = base;
        else if (!tq_axes_map(a, edges[i], c, &dummy, &py)) {
            skip(s, edges[i], c);
            continue;
        }
        if (py < a->top) py = a->top;
        if (!open)
            put(s, "<path fill=\"%s\" fill-opacity=\"0.35\" stroke=\"%s\" d=\"M%.1f,%.1f",
                fill ? color : "none", color, x0, base);
        put(s, " L%.1f,%.1f L%.1f,%.1f", x0, py, x1, py);
        if (i + 1 == nbins || !isfinite(counts[i + 1])) {
            put(s, " L%.1f,%.1f\"/>\n", x1, base);
            open = false;
        } else {
            open = true;
        }
    }
    if (open) put(s, "\"/>\n");
}

void tq_svg_vline(tq_svg *s, const tq_axes *a, double x, const char *color, bool dashed)
{
    double px, py;
    if (!tq_axes_map(a, x, a->ylog ? a->ylo : (a->ylo + a->yhi) / 2, &px, &py) ||
        px < a->left - 0.5 || px > a->left + a->width + 0.5) {
        skip(s, x, 0);
        return;
    }
    put(s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.4\"%s/>\n",
        px, a->top, px, a->top + a->height, color, dashed ? " stroke-dasharray=\"4 3\"" : "");
}

void tq_svg_hline(tq_svg *s, const tq_axes *a, double y, const char *color, bool dashed)
{
    double px, py;
    if (!tq_axes_map(a, a->xlog ? a->xlo : (a->xlo + a->xhi) / 2, y, &px, &py) ||
        py < a->top - 0.5 || py > a->top + a->height + 0.5) {
        skip(s, 0, y);
        return;
    }
    put(s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.4\"%s/>\n",
        a->left, py, a->left + a->width, py, color, dashed ? " stroke-dasharray=\"4 3\"" : "");
}

void tq_svg_png(tq_svg *s, double x, double y, double w, double h, const uint8_t *png,
                size_t len)
{
    char *b64 = tq_base64(png, len);
    if (!b64) {
        s->oom = true;
        return;
    }
    put(s, "<image x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
           "preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" "
           "href=\"data:image/png;base64,%s\"/>\n", x, y, w, h, b64);
    free(b64);
}
