/* The experiment behind `tinyqat compare`: for one recipe, PTQ with each calibrator, then QAT
 * from the best of them at each rate asked for. With a validation split, the calibrator and
 * the QAT rate and epoch kept (the PTQ start counting as epoch 0) are chosen on it, so the
 * test set only measures. */
#include "ptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

tq_status tq_compare_init(tq_compare *x, tq_error *err)
{
    tq_model *m = x->run->model;
    size_t nt = (size_t)x->test->n, nv = x->val ? (size_t)x->val->n : 0;
    tq_detach_quantizers(m);
    x->ptq_pred = malloc(nt * sizeof(int32_t) + 1);
    for (int k = 0; k < TQ_QAT_METHODS; k++) x->qat_pred[k] = malloc(nt * sizeof(int32_t) + 1);
    x->val_start_pred = malloc(nv * sizeof(int32_t) + 1);
    x->val_pred = malloc(nv * sizeof(int32_t) + 1);
    if (!x->ptq_pred || !x->qat_pred[TQ_QAT_FIXED] || !x->qat_pred[TQ_QAT_LSQ] ||
        !x->val_start_pred || !x->val_pred ||
        tq_snapshot_init(&x->float_weights, m, err) || tq_snapshot_init(&x->kept, m, err) ||
        tq_snapshot_init(&x->start, m, err)) {
        tq_compare_free(x);
        return tq_fail(err, TQ_STATUS_NOMEM, "compare: out of memory");
    }
    return TQ_STATUS_OK;
}

void tq_compare_restore_float(tq_compare *x)
{
    tq_model *m = x->run->model;
    tq_detach_quantizers(m);
    for (int i = 0; i < tq_model_qlayer_count(m); i++)
        tq_model_set_input_mul(m, i, NULL, 0, &(tq_error){0});
    tq_snapshot_restore(&x->float_weights, m);
}

void tq_compare_free(tq_compare *x)
{
    if (x->float_weights.params) tq_compare_restore_float(x);
    tq_snapshot_free(&x->float_weights);
    tq_snapshot_free(&x->kept);
    tq_snapshot_free(&x->start);
    free(x->ptq_pred);
    for (int k = 0; k < TQ_QAT_METHODS; k++) {
        free(x->qat_pred[k]);
        x->qat_pred[k] = NULL;
    }
    free(x->val_start_pred);
    free(x->val_pred);
    x->ptq_pred = x->val_start_pred = x->val_pred = NULL;
}

static const char *const method_names[TQ_QAT_METHODS] = {"qat", "qat-lsq"};

const char *tq_qat_method_name(tq_qat_method m)
{
    return (unsigned)m < TQ_QAT_METHODS ? method_names[m] : "?";
}

bool tq_qat_method_parse(const char *s, tq_qat_method *out)
{
    for (int k = 0; k < TQ_QAT_METHODS; k++)
        if (!strcmp(s, method_names[k])) {
            *out = (tq_qat_method)k;
            return true;
        }
    return false;
}

/* Accuracy of the model on d, each image's class into pred when not NULL. */
static tq_status accuracy_on(tq_compare *x, const tq_dataset *d, int32_t *pred, double *acc,
                             tq_error *err)
{
    const tq_run *run = x->run;
    return pred ? tq_predict(run->model, d, run->mean, run->std, 256, pred, acc, err)
                : tq_evaluate(run->model, d, run->mean, run->std, 256, acc, NULL, err);
}

/* PTQ from the float model; test accuracy and, with a split, validation accuracy (0
 * without), with the per-image classes when the buffers are given. */
static tq_status ptq(tq_compare *x, const tq_recipe *r, int calib, tq_accuracy_pair *acc,
                     int32_t *test_pred, int32_t *val_pred, tq_error *err)
{
    tq_run *run = x->run;
    tq_compare_restore_float(x);
    acc->val = 0;
    if (tq_ptq_run(run->model, r, calib, x->train, run->mean, run->std, x->calib_batches,
                   run->batch, run->seed, err) ||
        accuracy_on(x, x->test, test_pred, &acc->test, err) ||
        (x->val && accuracy_on(x, x->val, val_pred, &acc->val, err)))
        return err->status;
    return TQ_STATUS_OK;
}

/* Images `after` classifies right and `before` wrong (gained), and the reverse (lost). */
static void count_changes(const int32_t *before, const int32_t *after, const tq_dataset *d,
                          int64_t *gained, int64_t *lost)
{
    *gained = *lost = 0;
    for (int64_t i = 0; i < d->n; i++) {
        int32_t y = d->labels[i];
        *gained += after[i] == y && before[i] != y;
        *lost += after[i] != y && before[i] == y;
    }
}

/* One QAT run at rate lr from the weights in the model (the PTQ start). Each epoch that beats
 * *best_val on the held-out images (beyond chance as x->keep_p asks) becomes the kept one;
 * without a split every epoch is, so the last is kept. */
static tq_status qat_run(tq_compare *x, double lr, const tq_accuracy_pair *start,
                         double *best_val, const char *recipe, tq_qat_method method,
                         tq_qat_result *out, tq_error *err)
{
    const tq_dataset *val = x->val;
    bool figures = x->on_qat_epoch && method == tq_compare_left_method(x);
    tq_run q = *x->run;
    q.optim = q.scale_optim = NULL;
    q.epoch = 0;
    q.epochs = x->qat_epochs;
    int64_t steps = (x->train->n + q.batch - 1) / q.batch;
    q.schedule = (tq_schedule){.kind = TQ_SCHEDULE_COSINE, .lr = (float)lr,
                               .total_steps = steps * x->qat_epochs};
    tq_status st = TQ_STATUS_OK;
    while (st == TQ_STATUS_OK && q.epoch < q.epochs) {
        tq_epoch_stats stats;
        if ((st = tq_train_epoch(&q, x->train, x->rep, &stats, err))) break;
        double v = 0, p = 1;
        if (val) {
            int64_t gained, lost;
            if ((st = accuracy_on(x, val, x->val_pred, &v, err))) break;
            if (figures) x->on_qat_epoch(x->on_qat_ctx, q.model, recipe, lr, q.epoch, &stats, v);
            count_changes(x->val_start_pred, x->val_pred, val, &gained, &lost);
            p = tq_mcnemar_p(gained, lost);
            tq_report_line(x->rep, "  %-8s %s lr %g epoch %lld: validation %.4f (start %.4f; "
                           "+%lld / -%lld, p %.2g)", recipe, tq_qat_method_name(method), lr,
                           (long long)q.epoch, v,
                           start->val, (long long)gained, (long long)lost, p);
            if (!(v > *best_val && p <= x->keep_p)) continue;
        } else if (figures) {
            x->on_qat_epoch(x->on_qat_ctx, q.model, recipe, lr, q.epoch, &stats, NAN);
        }
        *best_val = v;
        out->epoch = (int)q.epoch;
        out->lr = lr;
        out->val_p = p;
        if ((st = tq_snapshot_take(&x->kept, q.model, err))) break;
    }
    tq_optim_free(q.optim);
    tq_optim_free(q.scale_optim);
    return st;
}

/* QAT by one method from the PTQ start in x->start, at each of the rates x->qat_lrs. With a
 * split, the epoch kept is the best on the held-out images over all rates and epochs, the
 * PTQ start included (epoch 0, winning ties); without one, a single rate's last epoch. */
static tq_status qat_method(tq_compare *x, tq_qat_method method, const tq_accuracy_pair *start,
                            const char *recipe, tq_qat_result *out, tq_error *err)
{
    tq_model *m = x->run->model;
    tq_snapshot_restore(&x->start, m);
    if (tq_model_set_learn_scales(m, method == TQ_QAT_LSQ, err) ||
        tq_snapshot_take(&x->kept, m, err))
        return err->status;
    double best_val = start->val;
    *out = (tq_qat_result){.run = true, .val_p = 1.0};
    for (int i = 0; i < x->n_qat_lrs; i++) {
        tq_snapshot_restore(&x->start, m);
        if (x->on_qat_epoch && method == tq_compare_left_method(x))
            x->on_qat_epoch(x->on_qat_ctx, m, recipe, x->qat_lrs[i], 0, NULL,
                            x->val ? start->val : NAN);
        if (qat_run(x, x->qat_lrs[i], start, &best_val, recipe, method, out, err))
            return err->status;
    }
    tq_snapshot_restore(&x->kept, m);
    out->acc.val = best_val;
    if (accuracy_on(x, x->test, x->qat_pred[method], &out->acc.test, err)) return err->status;
    count_changes(x->ptq_pred, x->qat_pred[method], x->test, &out->gained, &out->lost);
    return TQ_STATUS_OK;
}

tq_qat_method tq_compare_left_method(const tq_compare *x)
{
    return x->methods && !(x->methods & 1u << TQ_QAT_FIXED) ? TQ_QAT_LSQ : TQ_QAT_FIXED;
}

/* QAT from PTQ with calibrator `calib`, by each method asked for, from the same start. */
static tq_status qat(tq_compare *x, const tq_recipe *r, int calib, tq_compare_row *out,
                     tq_error *err)
{
    tq_accuracy_pair start;
    if (ptq(x, r, calib, &start, x->ptq_pred, x->val_start_pred, err) ||
        tq_snapshot_take(&x->start, x->run->model, err))
        return err->status;
    unsigned methods = x->methods ? x->methods : 1u << TQ_QAT_FIXED;
    /* learned scales first: the model is left with fixed-scale QAT's result, as before them */
    for (int k = TQ_QAT_METHODS; k-- > 0;)
        if ((methods >> k & 1u) &&
            qat_method(x, (tq_qat_method)k, &start, out->recipe, &out->qat[k], err))
            return err->status;
    if (out->qat[TQ_QAT_FIXED].run && out->qat[TQ_QAT_LSQ].run)
        count_changes(x->qat_pred[TQ_QAT_FIXED], x->qat_pred[TQ_QAT_LSQ], x->test,
                      &out->lsq_gained, &out->lsq_lost);
    return TQ_STATUS_OK;
}

tq_status tq_compare_recipe(tq_compare *x, const char *name, const tq_calib_kind *calibs,
                            int n_calibs, tq_compare_row *out, tq_error *err)
{
    tq_recipe r;
    if (tq_recipe_make(name, NULL, NULL, &r, err)) return err->status;
    if (x->keep >= 0) r.keep = (tq_keep_kind)x->keep;
    memset(out, 0, sizeof *out);
    snprintf(out->recipe, sizeof out->recipe, "%s", name);
    for (int k = 0; k < TQ_COMPARE_CALIBS; k++) out->ptq[k] = (tq_accuracy_pair){-1, -1};
    out->best = -1;
    for (int i = 0; i < n_calibs; i++) {
        tq_calib_kind k = calibs[i];
        if (ptq(x, &r, (int)k, &out->ptq[k], NULL, NULL, err)) return err->status;
        double score = x->val ? out->ptq[k].val : out->ptq[k].test;
        double best = out->best < 0 ? -1 : x->val ? out->ptq[out->best].val : out->ptq[out->best].test;
        if (score > best) out->best = (int)k;
        if (x->val)
            tq_report_line(x->rep, "  %-8s ptq-%-10s test %.4f  validation %.4f", name,
                           tq_calib_name(k), out->ptq[k].test, out->ptq[k].val);
        else
            tq_report_line(x->rep, "  %-8s ptq-%-10s %.4f", name, tq_calib_name(k), out->ptq[k].test);
    }
    if (qat(x, &r, out->best, out, err)) return err->status;
    for (int k = 0; k < TQ_QAT_METHODS; k++)
        if (out->qat[k].run)
            tq_report_line(x->rep, "  %-8s %s (from ptq-%s, lr %g epoch %d kept) %.4f", name,
                           tq_qat_method_name((tq_qat_method)k), tq_calib_name(out->best),
                           out->qat[k].lr, out->qat[k].epoch, out->qat[k].acc.test);
    return TQ_STATUS_OK;
}
