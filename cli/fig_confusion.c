/* Figure 9: the confusion matrix of one model, and how another changes it (which classes the
 * quantized model confuses more, or less). */
#include "report_out.h"

#include <stdio.h>
#include <stdlib.h>

void tq_fig_confusion(tq_report *r, const uint8_t *labels, const int32_t *before,
                      const int32_t *after, int64_t n, int classes, const char *before_name,
                      const char *after_name)
{
    if (classes < 1 || classes > TQ_PANEL_MAX_CATS) return;
    double *cm = calloc((size_t)classes * classes, sizeof *cm);
    double *diff = calloc((size_t)classes * classes, sizeof *diff);
    if (!cm || !diff) {
        free(cm);
        free(diff);
        r->failed = true;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        int y = labels[i], b = before[i], a = after[i];
        if (y < 0 || y >= classes || b < 0 || b >= classes || a < 0 || a >= classes) continue;
        cm[y * classes + b] += 1;
        diff[y * classes + b] -= 1;
        diff[y * classes + a] += 1;
    }
    char caption[512], title[96];
    snprintf(caption, sizeof caption,
             "Left: test images by true class (rows) and the class %s predicts (columns); the "
             "diagonal is right. Right: %s minus %s, red where it puts more images, blue fewer: "
             "red off the diagonal is confusion that quantization added.", before_name,
             after_name, before_name);
    tq_figure *f = tq_report_figure(r, "confusion", "Confusion matrix", caption);
    if (f) f->cols = 2;
    const char *names[TQ_PANEL_MAX_CATS];
    char buf[TQ_PANEL_MAX_CATS][8];
    for (int c = 0; c < classes; c++) {
        snprintf(buf[c], sizeof buf[c], "%d", c);
        names[c] = buf[c];
    }
    tq_panel *p = tq_figure_panel(r, f, before_name, "predicted", "true class");
    tq_panel_categories(p, names, classes);
    tq_panel_series(r, p, TQ_SERIES_HEATMAP, "", 0, NULL, cm, classes * classes);
    snprintf(title, sizeof title, "%s - %s", after_name, before_name);
    p = tq_figure_panel(r, f, title, "predicted", "true class");
    tq_panel_categories(p, names, classes);
    tq_panel_series(r, p, TQ_SERIES_HEATMAP, "", 0, NULL, diff, classes * classes);
    free(cm);
    free(diff);
}
