/* The figures of a report as JSON (report.json beside index.html), and read back for
 * `tinyqat report`: every field checked, so a broken or hostile file gets one message. */
#include "cli.h"
#include "report_out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_VERSION 1
#define MAX_PANELS 1024 /* a report's panels in all (ResNet-20's has about 130) */

static void save_series(tq_json *j, const tq_series *s)
{
    tq_json_open(j, NULL, '{');
    tq_json_str(j, "name", s->name);
    tq_json_str(j, "kind", tq_series_kind_name(s->kind));
    tq_json_int(j, "color", s->color);
    if (s->dashed) tq_json_int(j, "dashed", 1);
    if (s->x) tq_json_nums(j, "x", s->x, s->kind == TQ_SERIES_HIST ? s->n + 1 : s->n);
    tq_json_nums(j, "y", s->y, s->n);
    tq_json_close(j, '{');
}

static void save_panel(tq_json *j, const tq_panel *p)
{
    tq_json_open(j, NULL, '{');
    tq_json_str(j, "title", p->title);
    tq_json_str(j, "xlabel", p->xlabel);
    tq_json_str(j, "ylabel", p->ylabel);
    tq_json_int(j, "xlog", p->xlog);
    tq_json_int(j, "ylog", p->ylog);
    tq_json_int(j, "y_from_zero", p->y_from_zero);
    tq_json_int(j, "hide_y", p->hide_y);
    if (p->n_cats) {
        tq_json_open(j, "categories", '[');
        for (int i = 0; i < p->n_cats; i++) tq_json_str(j, NULL, p->cats[i]);
        tq_json_close(j, '[');
    }
    tq_json_open(j, "series", '[');
    for (int k = 0; k < p->n_series; k++) save_series(j, &p->series[k]);
    tq_json_close(j, '[');
    tq_json_close(j, '{');
}

char *tq_report_to_json(const tq_report *r, size_t *len)
{
    tq_json j;
    tq_json_begin(&j);
    tq_json_int(&j, "tinyqat_report", REPORT_VERSION);
    tq_json_str(&j, "command", r->command);
    tq_json_str(&j, "title", r->title);
    tq_json_str(&j, "subtitle", r->subtitle);
    tq_json_open(&j, "figures", '[');
    for (int f = 0; f < r->n_figs; f++) {
        const tq_figure *fig = &r->figs[f];
        tq_json_open(&j, NULL, '{');
        tq_json_str(&j, "id", fig->id);
        tq_json_str(&j, "title", fig->title);
        tq_json_str(&j, "caption", fig->caption);
        tq_json_int(&j, "cols", fig->cols);
        tq_json_open(&j, "panels", '[');
        for (int i = 0; i < fig->n_panels; i++) save_panel(&j, fig->panels[i]);
        tq_json_close(&j, '[');
        tq_json_close(&j, '{');
    }
    tq_json_close(&j, '[');
    char *out = tq_json_finish(&j, len);
    tq_json_free(&j);
    return out;
}

/* ---- reading */

typedef struct loader {
    tq_report *r;
    int panels;      /* in the whole report, against MAX_PANELS */
    tq_error *err;
    char where[160]; /* "figure 3 panel 2 series 1", for messages */
} loader;

static tq_status bad(loader *l, const char *field, const char *expected)
{
    return tq_fail(l->err, TQ_STATUS_FORMAT, "%s%s%s: expected %s", l->where,
                   l->where[0] ? " " : "", field, expected);
}

/* A string member into buf (cut at len - 1 bytes); absent is "" unless required. */
static tq_status get_str(loader *l, const tq_jv *o, const char *key, char *buf, size_t len,
                         bool required)
{
    const tq_jv *v = tq_jv_get(o, key, TQ_JV_STR);
    if (!v) {
        buf[0] = '\0';
        return required ? bad(l, key, "a string") : TQ_STATUS_OK;
    }
    snprintf(buf, len, "%s", v->str);
    return TQ_STATUS_OK;
}

static tq_status get_int(loader *l, const tq_jv *o, const char *key, int lo, int hi, int *out)
{
    const tq_jv *v = tq_jv_get(o, key, TQ_JV_NUM);
    if (!v) return TQ_STATUS_OK; /* absent: the default */
    if (!(v->num >= lo && v->num <= hi) || v->num != floor(v->num)) {
        char what[64];
        snprintf(what, sizeof what, "an integer in [%d, %d]", lo, hi);
        return bad(l, key, what);
    }
    *out = (int)v->num;
    return TQ_STATUS_OK;
}

/* An array of numbers (null: NaN) of exactly n into a new array. */
static double *get_nums(loader *l, const tq_jv *a, const char *key, int n)
{
    if (a->n != n) {
        char what[64];
        snprintf(what, sizeof what, "%d numbers, got %d", n, a->n);
        bad(l, key, what);
        return NULL;
    }
    double *v = malloc((size_t)n * sizeof *v + 1);
    if (!v) {
        tq_fail(l->err, TQ_STATUS_NOMEM, "report: out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const tq_jv *e = &a->items[i];
        if (e->kind != TQ_JV_NUM && e->kind != TQ_JV_NULL) {
            free(v);
            bad(l, key, "numbers or null");
            return NULL;
        }
        v[i] = e->kind == TQ_JV_NUM ? e->num : NAN;
    }
    return v;
}

static tq_status load_series(loader *l, const tq_jv *o, tq_panel *p)
{
    char name[96], kind_s[16];
    tq_series_kind kind;
    int color = 0, dashed = 0;
    const tq_jv *y = tq_jv_get(o, "y", TQ_JV_ARR), *x = tq_jv_get(o, "x", TQ_JV_ARR);
    if (get_str(l, o, "name", name, sizeof name, false) ||
        get_str(l, o, "kind", kind_s, sizeof kind_s, true) ||
        get_int(l, o, "color", -1, 1000, &color) || get_int(l, o, "dashed", 0, 1, &dashed))
        return l->err->status;
    if (!tq_series_kind_parse(kind_s, &kind))
        return bad(l, "kind", "line, points, bars, hist, vline, hline or heatmap");
    if (!y) return bad(l, "y", "an array of numbers");
    if (kind == TQ_SERIES_HEATMAP && (p->n_cats == 0 || y->n % p->n_cats || y->n > 64 * 64))
        return bad(l, "y", "a heat map of whole rows of the panel's categories");
    if (kind == TQ_SERIES_HIST && !x) return bad(l, "x", "the histogram's edges");
    double *yv = get_nums(l, y, "y", y->n), *xv = NULL;
    if (yv && x) xv = get_nums(l, x, "x", kind == TQ_SERIES_HIST ? y->n + 1 : y->n);
    tq_status st = !yv || (x && !xv) ? l->err->status : TQ_STATUS_OK;
    tq_series *s = st ? NULL : tq_panel_series(l->r, p, kind, name, color, xv, yv, y->n);
    if (!st && !s) st = tq_fail(l->err, TQ_STATUS_NOMEM, "report: out of memory");
    if (s) s->dashed = dashed;
    free(xv);
    free(yv);
    return st;
}

static tq_status load_panel(loader *l, const tq_jv *o, tq_panel *p)
{
    int xlog = 0, ylog = 0, from_zero = 0, hide_y = 0;
    if (get_str(l, o, "title", p->title, sizeof p->title, false) ||
        get_str(l, o, "xlabel", p->xlabel, sizeof p->xlabel, false) ||
        get_str(l, o, "ylabel", p->ylabel, sizeof p->ylabel, false) ||
        get_int(l, o, "xlog", 0, 1, &xlog) || get_int(l, o, "ylog", 0, 1, &ylog) ||
        get_int(l, o, "y_from_zero", 0, 1, &from_zero) || get_int(l, o, "hide_y", 0, 1, &hide_y))
        return l->err->status;
    p->hide_y = hide_y;
    p->xlog = xlog;
    p->ylog = ylog;
    p->y_from_zero = from_zero;
    const tq_jv *cats = tq_jv_get(o, "categories", TQ_JV_ARR);
    if (cats) {
        if (cats->n > TQ_PANEL_MAX_CATS) return bad(l, "categories", "at most 64 names");
        for (int i = 0; i < cats->n; i++) {
            if (cats->items[i].kind != TQ_JV_STR) return bad(l, "categories", "strings");
            snprintf(p->cats[i], sizeof p->cats[i], "%s", cats->items[i].str);
        }
        p->n_cats = cats->n;
    }
    const tq_jv *series = tq_jv_get(o, "series", TQ_JV_ARR);
    if (!series) return bad(l, "series", "an array");
    if (series->n > TQ_PANEL_MAX_SERIES) return bad(l, "series", "at most 24 series");
    size_t at = strlen(l->where);
    for (int k = 0; k < series->n; k++) {
        snprintf(l->where + at, sizeof l->where - at, " series %d", k + 1);
        if (series->items[k].kind != TQ_JV_OBJ) return bad(l, "", "an object");
        if (load_series(l, &series->items[k], p)) return l->err->status;
    }
    l->where[at] = '\0';
    return TQ_STATUS_OK;
}

static bool valid_id(const char *id)
{
    if (!*id) return false;
    for (; *id; id++)
        if (!((*id >= 'a' && *id <= 'z') || (*id >= '0' && *id <= '9') || *id == '-' || *id == '_'))
            return false;
    return true;
}

static tq_status load_figure(loader *l, const tq_jv *o)
{
    char id[48], title[128], caption[1024];
    if (get_str(l, o, "id", id, sizeof id, true) || get_str(l, o, "title", title, sizeof title, false) ||
        get_str(l, o, "caption", caption, sizeof caption, false))
        return l->err->status;
    if (!valid_id(id)) return bad(l, "id", "lower-case letters, digits, '-' and '_'");
    for (int f = 0; f < l->r->n_figs; f++)
        if (!strcmp(l->r->figs[f].id, id)) return bad(l, "id", "an id of its own (it repeats)");
    if (l->r->n_figs == TQ_REPORT_MAX_FIGS) return bad(l, "", "at most 32 figures");
    tq_figure *fig = tq_report_figure(l->r, id, title, caption);
    if (get_int(l, o, "cols", 1, 4, &fig->cols)) return l->err->status;
    const tq_jv *panels = tq_jv_get(o, "panels", TQ_JV_ARR);
    if (!panels) return bad(l, "panels", "an array");
    if ((l->panels += panels->n) > MAX_PANELS) return bad(l, "panels", "at most 1024 panels in all");
    size_t at = strlen(l->where);
    for (int i = 0; i < panels->n; i++) {
        snprintf(l->where + at, sizeof l->where - at, " panel %d", i + 1);
        if (panels->items[i].kind != TQ_JV_OBJ) return bad(l, "", "an object");
        tq_panel *p = tq_figure_panel(l->r, fig, NULL, NULL, NULL);
        if (!p) return tq_fail(l->err, TQ_STATUS_NOMEM, "report: out of memory");
        if (load_panel(l, &panels->items[i], p)) return l->err->status;
    }
    return TQ_STATUS_OK;
}

tq_status tq_report_from_json(const char *text, size_t len, tq_report *r, tq_error *err)
{
    memset(r, 0, sizeof *r);
    tq_jv *root = tq_json_parse(text, len, err);
    if (!root) return err->status;
    loader l = {.r = r, .err = err};
    int version = 0;
    const tq_jv *figs = tq_jv_get(root, "figures", TQ_JV_ARR);
    tq_status st = TQ_STATUS_OK;
    if (root->kind != TQ_JV_OBJ) st = bad(&l, "the text", "a JSON object");
    else if (get_int(&l, root, "tinyqat_report", 1, REPORT_VERSION, &version) || !version)
        st = version ? err->status : bad(&l, "tinyqat_report", "1 (a tinyqat report.json)");
    else if (get_str(&l, root, "command", r->command, sizeof r->command, false) ||
             get_str(&l, root, "title", r->title, sizeof r->title, false) ||
             get_str(&l, root, "subtitle", r->subtitle, sizeof r->subtitle, false))
        st = err->status;
    else if (!figs) st = bad(&l, "figures", "an array");
    for (int f = 0; !st && f < figs->n; f++) {
        snprintf(l.where, sizeof l.where, "figure %d", f + 1);
        st = figs->items[f].kind != TQ_JV_OBJ ? bad(&l, "", "an object")
                                               : load_figure(&l, &figs->items[f]);
    }
    tq_jv_free(root);
    if (st) tq_report_free(r);
    return st;
}
