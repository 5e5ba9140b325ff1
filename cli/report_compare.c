/* `compare --report`: the experiment's curves, clipped fractions and QAT results are kept as
 * it runs; at the end one recipe (the one PTQ hurts most, unless named) is calibrated once
 * more with histograms kept, and every figure is drawn. */
#include "report_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tq_status tq_compare_report_init(tq_compare_report *cr, const char *dir, const char *recipe,
                                 const tq_dataset *probe, const float *mean, const float *std,
                                 const tq_dataset *test, tq_error *err)
{
    memset(cr, 0, sizeof *cr);
    cr->dir = dir;
    cr->mean = mean;
    cr->std = std;
    cr->recipe = recipe;
    cr->probe = probe;
    cr->curves = calloc(1, sizeof *cr->curves);
    cr->float_pred = malloc((size_t)test->n * sizeof *cr->float_pred + 1);
    return cr->curves && cr->float_pred ? TQ_STATUS_OK
                                        : tq_fail(err, TQ_STATUS_NOMEM, "report: out of memory");
}

void tq_compare_report_free(tq_compare_report *cr)
{
    free(cr->curves);
    free(cr->float_pred);
    for (int i = 0; i < cr->n_runs; i++) free(cr->clips[i]);
    for (int i = 0; i < cr->n_recipes; i++) {
        tq_snapshot_free(&cr->kept[i]);
        free(cr->qat_pred[i]);
    }
    memset(cr, 0, sizeof *cr);
}

static tq_clip_log *run_log(tq_compare_report *cr, const char *name)
{
    for (int i = 0; i < cr->n_runs; i++)
        if (!strcmp(cr->run_names[i], name)) return cr->clips[i];
    if (cr->n_runs == TQ_COMPARE_REPORT_RUNS) return NULL;
    tq_clip_log *log = calloc(1, sizeof *log);
    if (!log) return NULL;
    snprintf(cr->run_names[cr->n_runs], sizeof cr->run_names[0], "%s", name);
    cr->clips[cr->n_runs++] = log;
    return log;
}

void tq_compare_report_epoch(void *ctx, tq_model *m, const char *recipe, double lr,
                             int64_t epoch, const tq_epoch_stats *st, double val_acc)
{
    tq_compare_report *cr = ctx;
    char group[64], name[64], run[128];
    snprintf(group, sizeof group, "%s QAT", recipe);
    snprintf(name, sizeof name, "lr %.2g", lr);
    tq_curves_add(cr->curves, group, name, (double)epoch, st ? st->loss : NAN,
                  st ? st->accuracy : NAN, val_acc);
    snprintf(run, sizeof run, "%s %s", recipe, name);
    tq_clip_log *log = run_log(cr, run);
    tq_error ignored = {0}; /* a report figure short of a point is no reason to stop */
    if (log) tq_clip_log_add(log, m, cr->probe, cr->mean, cr->std, (double)epoch, &ignored);
}

tq_status tq_compare_report_recipe(tq_compare_report *cr, const tq_compare *x, tq_error *err)
{
    if (cr->n_recipes == 16) return TQ_STATUS_OK;
    int i = cr->n_recipes;
    cr->qat_pred[i] = malloc((size_t)x->test->n * sizeof(int32_t) + 1);
    if (!cr->qat_pred[i] || tq_snapshot_init(&cr->kept[i], x->run->model, err)) {
        free(cr->qat_pred[i]);
        cr->qat_pred[i] = NULL;
        return tq_fail(err, TQ_STATUS_NOMEM, "report: out of memory");
    }
    memcpy(cr->qat_pred[i], x->qat_pred[tq_compare_left_method(x)], (size_t)x->test->n * sizeof(int32_t));
    cr->n_recipes++;
    return TQ_STATUS_OK;
}

/* The recipe the per-layer figures show: the one named, else the one whose best PTQ loses
 * most against float (the first of equals). */
static int pick_recipe(const tq_compare_report *cr, const tq_compare_row *rows, int n)
{
    int pick = 0;
    for (int i = 0; i < n; i++) {
        if (cr->recipe && !strcmp(rows[i].recipe, cr->recipe)) return i;
        if (rows[i].ptq[rows[i].best].test < rows[pick].ptq[rows[pick].best].test) pick = i;
    }
    return pick;
}

static void accuracy_figure(tq_report *r, const tq_compare_row *rows, int n, double float_acc,
                            tq_qat_method qm)
{
    const char *methods[] = {"float", "ptq-max", "ptq-percentile", "ptq-mse", "ptq-entropy", "qat"};
    char labels[16][64];
    const char *names[16];
    double acc[6 * 16];
    n = n < 16 ? n : 16;
    for (int i = 0; i < n; i++) {
        snprintf(labels[i], sizeof labels[i], "%.20s (p %.1g)", rows[i].recipe,
                 tq_mcnemar_p(rows[i].qat[qm].gained, rows[i].qat[qm].lost));
        names[i] = labels[i];
        acc[i] = float_acc;
        for (int k = 0; k < TQ_COMPARE_CALIBS; k++)
            acc[(k + 1) * n + i] = rows[i].ptq[k].test >= 0 ? rows[i].ptq[k].test : NAN;
        acc[5 * n + i] = rows[i].qat[qm].acc.test;
    }
    tq_fig_accuracy(r, "Test accuracy of the float model, PTQ with each calibrator, and QAT from "
                       "the best PTQ (chosen on the held-out images when there are some). p is "
                       "McNemar's exact test of the test images QAT gets right and its PTQ start "
                       "wrong against the reverse: below 0.05, QAT's change is beyond chance.",
                    names, n, methods, 6, acc);
}

tq_status tq_compare_report_finish(tq_compare_report *cr, tq_compare *x, const tq_compare_row *rows,
                                   int n_rows, double float_acc, tq_error *err)
{
    tq_run *run = x->run;
    tq_model *m = run->model;
    int k = pick_recipe(cr, rows, n_rows);
    const tq_compare_row *row = &rows[k];
    tq_qat_method qm = tq_compare_left_method(x);
    const tq_qat_result *qat = &row->qat[qm];
    tq_report r = {0};
    snprintf(r.command, sizeof r.command, "compare");
    snprintf(r.title, sizeof r.title, "tinyqat compare: PTQ against QAT");
    snprintf(r.subtitle, sizeof r.subtitle,
             "%s on %.300s, float %.2f%% on %lld test images; per-layer figures for %s (best PTQ "
             "with %s calibration, QAT %s)", tq_model_name(m), x->test->name, 100 * float_acc,
             (long long)x->test->n, row->recipe, tq_calib_name(row->best),
             qat->epoch ? "epoch kept" : "kept its PTQ start");
    tq_fig_training(&r, cr->curves);
    accuracy_figure(&r, rows, n_rows, float_acc, qm);

    tq_recipe recipe;
    tq_ranges before = {0};
    tq_compare_restore_float(x);
    tq_status st = tq_ranges_take(&before, m, err);
    if (!st) st = tq_recipe_make(row->recipe, NULL, NULL, &recipe, err);
    if (!st) {
        if (x->keep >= 0) recipe.keep = (tq_keep_kind)x->keep;
        recipe.keep_histograms = true;
        st = tq_ptq_run(m, &recipe, row->best, x->train, run->mean, run->std, x->calib_batches,
                        run->batch, run->seed, err);
    }
    if (!st && k < cr->n_recipes) {
        /* the snapshot holds QAT's amax too: fixed ones are PTQ's, learned ones QAT's */
        tq_snapshot_restore(&cr->kept[k], m);
        char run_name[128];
        snprintf(run_name, sizeof run_name, "%s lr %.2g", row->recipe,
                 qat->epoch ? qat->lr : x->qat_lrs[0]);
        const tq_clip_log *log = NULL;
        for (int i = 0; i < cr->n_runs; i++)
            if (!strcmp(cr->run_names[i], run_name)) log = cr->clips[i];
        tq_report_model(&r, m, qat->epoch > 0, log, NULL, 0);
        tq_fig_confusion(&r, x->test->labels, cr->float_pred, cr->qat_pred[k], x->test->n,
                         x->test->classes, "float", qat->epoch ? "QAT" : "PTQ");
        const char *algo = recipe.algo == TQ_ALGO_SMOOTHQUANT ? "SmoothQuant"
                         : recipe.algo == TQ_ALGO_AWQ ? "AWQ" : NULL;
        tq_fig_ranges(&r, m, algo ? &before : NULL, algo);
    }
    tq_ranges_free(&before);
    tq_compare_restore_float(x);
    if (st) {
        tq_report_free(&r);
        return st;
    }
    return tq_report_finish(&r, cr->dir, err);
}
