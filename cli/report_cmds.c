/* The reports of ptq, qat and sensitivity: which figures each command has the data for, in
 * the report's order (compare's, which has most, is in report_compare.c). */
#include "report_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tq_status tq_report_buffers(const tq_dataset *d, int32_t **a, int32_t **b, tq_error *err)
{
    *a = malloc((size_t)d->n * sizeof **a + 1);
    *b = malloc((size_t)d->n * sizeof **b + 1);
    if (*a && *b) return TQ_STATUS_OK;
    free(*a);
    free(*b);
    *a = *b = NULL;
    return tq_fail(err, TQ_STATUS_NOMEM, "report: out of memory");
}

tq_status tq_report_accuracy(tq_run *run, const tq_dataset *d, int32_t *pred, double *acc,
                             tq_error *err)
{
    return pred ? tq_predict(run->model, d, run->mean, run->std, 256, pred, acc, err)
                : tq_evaluate(run->model, d, run->mean, run->std, 256, acc, NULL, err);
}

tq_status tq_report_finish(tq_report *r, const char *dir, tq_error *err)
{
    /* Figures without a panel (no calibration histograms, no quantized layer) are left out. */
    for (int f = r->n_figs - 1; f >= 0; f--)
        if (!r->figs[f].n_panels) {
            free(r->figs[f].panels);
            memmove(&r->figs[f], &r->figs[f + 1], (size_t)(r->n_figs - f - 1) * sizeof r->figs[0]);
            r->n_figs--;
        }
    int64_t skipped = 0;
    tq_status st = tq_report_write(r, dir, &skipped, err);
    if (!st) {
        printf("report: %s/index.html (%d figures", dir, r->n_figs);
        if (skipped) printf("; %lld values not finite were left out", (long long)skipped);
        printf(")\n");
    }
    tq_report_free(r);
    return st;
}

void tq_report_model(tq_report *r, tq_model *m, bool after_qat, const tq_clip_log *log,
                     const tq_sens_row *rows, int n_rows)
{
    tq_fig_weights(r, m, after_qat);
    tq_fig_activations(r, m);
    tq_fig_layers(r, m, rows, n_rows);
    tq_fig_ste(r, m, log);
    tq_fig_formats(r, m);
}

static void header(tq_report *r, const char *command, tq_run *run, const char *what)
{
    snprintf(r->command, sizeof r->command, "%s", command);
    snprintf(r->title, sizeof r->title, "tinyqat %s: %s", command, what);
    snprintf(r->subtitle, sizeof r->subtitle, "%s on %.400s", tq_model_name(run->model),
             run->data_name);
}

tq_status tq_report_ptq(const char *dir, tq_run *run, const tq_recipe *recipe,
                        const tq_dataset *test, const int32_t *float_pred, const int32_t *pred,
                        double float_acc, double acc, const tq_ranges *before, tq_error *err)
{
    tq_report r = {0};
    header(&r, "ptq", run, recipe->name);
    snprintf(r.subtitle + strlen(r.subtitle), sizeof r.subtitle - strlen(r.subtitle),
             "; float %.2f%%, PTQ %.2f%% on %lld test images", 100 * float_acc, 100 * acc,
             (long long)test->n);
    const char *names[] = {recipe->name}, *methods[] = {"float", "ptq"};
    double accs[] = {float_acc, acc};
    tq_fig_accuracy(&r, "Test accuracy of the float model and of the quantized one.", names, 1,
                    methods, 2, accs);
    tq_report_model(&r, run->model, false, NULL, NULL, 0);
    tq_fig_confusion(&r, test->labels, float_pred, pred, test->n, test->classes, "float", "PTQ");
    const char *algo = recipe->algo == TQ_ALGO_SMOOTHQUANT ? "SmoothQuant"
                     : recipe->algo == TQ_ALGO_AWQ ? "AWQ" : NULL;
    tq_fig_ranges(&r, run->model, before, algo);
    return tq_report_finish(&r, dir, err);
}

tq_status tq_report_qat(const char *dir, tq_run *run, const tq_curves *curves,
                        const tq_clip_log *log, const tq_dataset *test, const int32_t *start_pred,
                        const int32_t *pred, double start_acc, double acc, tq_error *err)
{
    tq_report r = {0};
    header(&r, "qat", run, "fine-tuning under fake quantization");
    snprintf(r.subtitle + strlen(r.subtitle), sizeof r.subtitle - strlen(r.subtitle),
             "; start (PTQ) %.2f%%, after QAT %.2f%% on %lld test images", 100 * start_acc,
             100 * acc, (long long)test->n);
    tq_fig_training(&r, curves);
    tq_report_model(&r, run->model, true, log, NULL, 0);
    tq_fig_confusion(&r, test->labels, start_pred, pred, test->n, test->classes, "PTQ start",
                     "QAT");
    tq_fig_ranges(&r, run->model, NULL, NULL);
    return tq_report_finish(&r, dir, err);
}

tq_status tq_report_sensitivity(const char *dir, tq_run *run, const tq_recipe *recipe,
                                const tq_sens_ctx *c, const tq_sens_row *rows, int n_rows,
                                double float_acc, tq_error *err)
{
    tq_report r = {0};
    header(&r, "sensitivity", run, recipe->name);
    snprintf(r.subtitle + strlen(r.subtitle), sizeof r.subtitle - strlen(r.subtitle),
             "; float %.2f%% on %lld images", 100 * float_acc, (long long)c->test->n);
    tq_recipe with_hist = *recipe;
    with_hist.keep_histograms = true;
    tq_status st = tq_ptq_run(run->model, &with_hist, -1, c->train, c->mean, c->std,
                              c->calib_batches, c->batch, c->seed, err);
    if (!st) {
        tq_report_model(&r, run->model, false, NULL, rows, n_rows);
        tq_fig_ranges(&r, run->model, NULL, NULL);
    }
    tq_detach_quantizers(run->model);
    if (st) {
        tq_report_free(&r);
        return st;
    }
    return tq_report_finish(&r, dir, err);
}
