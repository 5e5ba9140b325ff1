/* Figures as data: a report holds figures, a figure panels, a panel series. The builders
 * copy what they are given, so the figure families can build from temporary arrays. */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[TQ_SERIES_KINDS] = {"line",  "points", "bars",   "hist",
                                                        "vline", "hline",  "heatmap"};

const char *tq_series_kind_name(tq_series_kind k)
{
    return (unsigned)k < TQ_SERIES_KINDS ? kind_names[k] : "?";
}

bool tq_series_kind_parse(const char *s, tq_series_kind *out)
{
    for (int k = 0; k < TQ_SERIES_KINDS; k++)
        if (!strcmp(s, kind_names[k])) {
            *out = (tq_series_kind)k;
            return true;
        }
    return false;
}

const char *tq_report_color(int i)
{
    /* Okabe and Ito's colour-blind-safe palette, the yellow left out (unreadable on white). */
    static const char *const palette[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                          "#CC79A7", "#56B4E9", "#000000", "#8C564B"};
    if (i < 0) return "#999999";
    return palette[i % (int)(sizeof palette / sizeof *palette)];
}

tq_figure *tq_report_figure(tq_report *r, const char *id, const char *title, const char *caption)
{
    if (r->n_figs == TQ_REPORT_MAX_FIGS) {
        r->failed = true;
        return NULL;
    }
    tq_figure *f = &r->figs[r->n_figs++];
    memset(f, 0, sizeof *f);
    snprintf(f->id, sizeof f->id, "%s", id);
    snprintf(f->title, sizeof f->title, "%s", title);
    snprintf(f->caption, sizeof f->caption, "%s", caption ? caption : "");
    f->cols = 1;
    return f;
}

tq_panel *tq_figure_panel(tq_report *r, tq_figure *f, const char *title, const char *xlabel,
                          const char *ylabel)
{
    if (!f) return NULL;
    tq_panel **grown = realloc(f->panels, (size_t)(f->n_panels + 1) * sizeof *grown);
    tq_panel *p = grown ? calloc(1, sizeof *p) : NULL;
    if (grown) f->panels = grown;
    if (!p) {
        r->failed = true;
        return NULL;
    }
    f->panels[f->n_panels++] = p;
    snprintf(p->title, sizeof p->title, "%s", title ? title : "");
    snprintf(p->xlabel, sizeof p->xlabel, "%s", xlabel ? xlabel : "");
    snprintf(p->ylabel, sizeof p->ylabel, "%s", ylabel ? ylabel : "");
    return p;
}

tq_series *tq_panel_series(tq_report *r, tq_panel *p, tq_series_kind kind, const char *name,
                           int color, const double *x, const double *y, int n)
{
    if (!p) return NULL;
    if (p->n_series == TQ_PANEL_MAX_SERIES || n < 0) {
        r->failed = true;
        return NULL;
    }
    tq_series *s = &p->series[p->n_series];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name ? name : "");
    s->kind = kind;
    s->color = color;
    s->n = n;
    int nx = kind == TQ_SERIES_HIST ? n + 1 : n;
    s->y = malloc((size_t)n * sizeof *s->y + 1);
    s->x = x ? malloc((size_t)nx * sizeof *s->x + 1) : NULL;
    if (!s->y || (x && !s->x)) {
        free(s->x);
        free(s->y);
        r->failed = true;
        return NULL;
    }
    if (n) memcpy(s->y, y, (size_t)n * sizeof *s->y);
    if (x && nx) memcpy(s->x, x, (size_t)nx * sizeof *s->x);
    p->n_series++;
    return s;
}

void tq_panel_categories(tq_panel *p, const char *const *names, int n)
{
    if (!p) return;
    p->n_cats = n < TQ_PANEL_MAX_CATS ? n : TQ_PANEL_MAX_CATS;
    for (int i = 0; i < p->n_cats; i++) snprintf(p->cats[i], sizeof p->cats[i], "%s", names[i]);
}

void tq_report_free(tq_report *r)
{
    for (int f = 0; f < r->n_figs; f++) {
        for (int i = 0; i < r->figs[f].n_panels; i++) {
            tq_panel *p = r->figs[f].panels[i];
            for (int k = 0; k < p->n_series; k++) {
                free(p->series[k].x);
                free(p->series[k].y);
            }
            free(p);
        }
        free(r->figs[f].panels);
    }
    memset(r, 0, sizeof *r);
}
