/* The report as one HTML page: a title, a table of contents, and each figure's SVG inline
 * with its caption. Self-contained (no script, no font, nothing fetched), printable, and
 * well-formed XML too, so an XML parser can check it. */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char css[] =
    "body{font-family:sans-serif;max-width:800px;margin:1.5em auto;padding:0 1em;color:#222;"
    "line-height:1.45}\n"
    "h1{font-size:1.5em;margin-bottom:0.2em}h2{font-size:1.15em;margin:1.6em 0 0.3em;"
    "border-bottom:1px solid #ddd}\n"
    ".sub{color:#555;margin-top:0}.caption{font-size:0.92em;color:#333}\n"
    "nav ol{columns:2;font-size:0.92em}svg{max-width:100%;height:auto;display:block}\n"
    ".file{font-size:0.8em;color:#777}.warn{color:#a40}\n"
    "@media print{nav{display:none}section{break-inside:avoid}body{max-width:none}}\n";

typedef struct page {
    char *buf;
    size_t len, cap;
    bool oom;
} page;

static void add(page *p, const char *s, size_t n)
{
    if (p->oom) return;
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 65536;
        while (cap < p->len + n + 1) cap *= 2;
        char *b = realloc(p->buf, cap);
        if (!b) {
            p->oom = true;
            return;
        }
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void addf(page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(page *p, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        add(p, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        p->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    add(p, big, (size_t)n);
    free(big);
}

/* A string literal, its length counted by the compiler. */
#define add_lit(p, lit) add((p), (lit), sizeof(lit) - 1)

/* Text escaped for HTML and XML alike. */
static void add_text(page *p, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': add(p, "&amp;", 5); break;
        case '<': add(p, "&lt;", 4); break;
        case '>': add(p, "&gt;", 4); break;
        case '"': add(p, "&quot;", 6); break;
        default: add(p, s, 1);
        }
    }
}

char *tq_report_html(const tq_report *r, size_t *len, int64_t *skipped)
{
    page p = {0};
    add_lit(&p, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>");
    add_text(&p, r->title);
    addf(&p, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", css);
    add_text(&p, r->title);
    add_lit(&p, "</h1>\n<p class=\"sub\">");
    add_text(&p, r->subtitle);
    add_lit(&p, "</p>\n<nav><ol>\n");
    for (int f = 0; f < r->n_figs; f++) {
        add_lit(&p, "<li><a href=\"#");
        add_text(&p, r->figs[f].id);
        add_lit(&p, "\">");
        add_text(&p, r->figs[f].title);
        add_lit(&p, "</a></li>\n");
    }
    add_lit(&p, "</ol></nav>\n");
    for (int f = 0; f < r->n_figs; f++) {
        const tq_figure *fig = &r->figs[f];
        int64_t fig_skipped = 0;
        size_t n = 0;
        char *svg = tq_figure_svg(fig, &n, &fig_skipped);
        if (!svg) {
            p.oom = true;
            break;
        }
        add_lit(&p, "<section id=\"");
        add_text(&p, fig->id);
        add_lit(&p, "\">\n<h2>");
        add_text(&p, fig->title);
        add_lit(&p, "</h2>\n<p class=\"caption\">");
        add_text(&p, fig->caption);
        add_lit(&p, "</p>\n");
        add(&p, svg, n);
        free(svg);
        if (fig_skipped)
            addf(&p, "<p class=\"warn\">%lld value(s) not finite (NaN or infinite) were left out "
                     "of this figure.</p>\n", (long long)fig_skipped);
        add_lit(&p, "<p class=\"file\">");
        add_text(&p, fig->id);
        add_lit(&p, ".svg</p>\n</section>\n");
        if (skipped) *skipped += fig_skipped;
    }
    add_lit(&p, "</body>\n</html>\n");
    if (p.oom) {
        free(p.buf);
        return NULL;
    }
    *len = p.len;
    return p.buf;
}
