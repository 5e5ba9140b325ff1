/* Figures 1 and 2: loss and accuracy per epoch (the PTQ start as QAT's epoch 0), and the
 * accuracy of each method on each recipe as grouped bars. */
#include "report_out.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void tq_curves_add(tq_curves *c, const char *group, const char *name, double epoch, double loss,
                   double acc, double val_acc)
{
    tq_curve *k = NULL;
    for (int i = 0; i < c->n && !k; i++)
        if (!strcmp(c->c[i].group, group) && !strcmp(c->c[i].name, name)) k = &c->c[i];
    if (!k) {
        if (c->n == TQ_MAX_CURVES) return;
        k = &c->c[c->n++];
        memset(k, 0, sizeof *k);
        snprintf(k->group, sizeof k->group, "%s", group);
        snprintf(k->name, sizeof k->name, "%s", name);
    }
    if (k->n == TQ_CURVE_MAX_POINTS) return;
    k->epoch[k->n] = epoch;
    k->loss[k->n] = loss;
    k->acc[k->n] = acc;
    k->val_acc[k->n++] = val_acc;
}

/* A curve's measured points only (a QAT start has no training loss, a run without a split
 * no held-out accuracy): NULL when there are none. */
static tq_series *measured(tq_report *r, tq_panel *p, const char *name, int colour,
                           const tq_curve *k, const double *v)
{
    double x[TQ_CURVE_MAX_POINTS], y[TQ_CURVE_MAX_POINTS];
    int n = 0;
    for (int i = 0; i < k->n; i++)
        if (isfinite(v[i])) x[n] = k->epoch[i], y[n++] = v[i];
    return n ? tq_panel_series(r, p, TQ_SERIES_LINE, name, colour, x, y, n) : NULL;
}

void tq_fig_training(tq_report *r, const tq_curves *c)
{
    if (!c->n) return;
    tq_figure *f = tq_report_figure(r, "training", "Training curves",
        "Loss and accuracy per epoch: solid lines on the training batches as seen during the "
        "epoch, dashed on the held-out images. A QAT run starts at epoch 0 from its PTQ model "
        "(held-out accuracy only), so the first step of its dashed line is what QAT won or "
        "lost against PTQ.");
    if (!f) return;
    f->cols = 2;
    for (int i = 0; i < c->n; i++) {
        bool first = true;
        for (int j = 0; j < i; j++) first &= strcmp(c->c[j].group, c->c[i].group) != 0;
        if (!first) continue;
        char title[96];
        snprintf(title, sizeof title, "%s: accuracy", c->c[i].group);
        tq_panel *acc = tq_figure_panel(r, f, title, "epoch", "accuracy");
        snprintf(title, sizeof title, "%s: training loss", c->c[i].group);
        tq_panel *loss = tq_figure_panel(r, f, title, "epoch", "loss");
        if (!acc || !loss) return;
        int colour = 0;
        for (int j = i; j < c->n; j++) {
            const tq_curve *k = &c->c[j];
            if (strcmp(k->group, c->c[i].group)) continue;
            char name[96];
            snprintf(name, sizeof name, "%s train", k->name);
            measured(r, acc, name, colour, k, k->acc);
            snprintf(name, sizeof name, "%s held-out", k->name);
            tq_series *s = measured(r, acc, name, colour, k, k->val_acc);
            if (s) s->dashed = true;
            measured(r, loss, k->name, colour, k, k->loss);
            colour++;
        }
    }
}

void tq_fig_accuracy(tq_report *r, const char *caption, const char *const *recipes, int n_recipes,
                     const char *const *methods, int n_methods, const double *acc)
{
    tq_figure *f = tq_report_figure(r, "accuracy", "Accuracy by recipe and method", caption);
    tq_panel *p = tq_figure_panel(r, f, "test accuracy", "", "accuracy (%)");
    if (!p) return;
    p->y_from_zero = true;
    tq_panel_categories(p, recipes, n_recipes);
    double pct[TQ_PANEL_MAX_CATS];
    for (int k = 0; k < n_methods; k++) {
        for (int i = 0; i < n_recipes && i < TQ_PANEL_MAX_CATS; i++)
            pct[i] = 100 * acc[k * n_recipes + i];
        tq_panel_series(r, p, TQ_SERIES_BARS, methods[k], k == 0 ? -1 : k - 1, NULL, pct,
                        n_recipes < TQ_PANEL_MAX_CATS ? n_recipes : TQ_PANEL_MAX_CATS);
    }
}
