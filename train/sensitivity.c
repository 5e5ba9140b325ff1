/* Per-layer sensitivity to a recipe (each layer quantized alone, and all layers but one),
 * and a greedy mixed-precision proposal meeting an accuracy target. */
#include "sensitivity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Float for every layer except `only` (only >= 0), or float for `skip` alone. */
static void one_layer_recipe(const tq_recipe *base, tq_model *m, int only, int skip,
                             tq_recipe *out)
{
    *out = *base;
    out->keep = TQ_KEEP_NONE;
    out->n_overrides = 0;
    for (int i = 0; i < tq_model_qlayer_count(m) && i < TQ_RECIPE_MAX_OVERRIDES; i++) {
        if (only >= 0 ? i == only : i != skip) continue;
        tq_layer_override *o = &out->overrides[out->n_overrides++];
        memset(o, 0, sizeof *o);
        snprintf(o->layer, sizeof o->layer, "%s", tq_model_qlayer(m, i)->name);
    }
}

/* Input SQNR of layer i on one calibration batch (the model already quantized). */
static double input_sqnr(tq_model *m, int i, const tq_sens_ctx *c, tq_error *err)
{
    tq_qlayer *l = tq_model_qlayer(m, i);
    if (!l->input_q) return INFINITY;
    tq_loader_config cfg = {.batch = c->batch, .shuffle = true, .seed = c->seed};
    memcpy(cfg.mean, c->mean, sizeof cfg.mean);
    memcpy(cfg.std, c->std, sizeof cfg.std);
    tq_loader *loader = tq_loader_new(c->train, &cfg, err);
    if (!loader) return NAN;
    tq_loader_start_epoch(loader, 0);
    const tq_dataset *d = c->train;
    float *x = malloc((size_t)c->batch * d->c * d->h * d->w * sizeof(float));
    int32_t *labels = malloc((size_t)c->batch * sizeof(int32_t));
    tq_tape *tape = tq_tape_new();
    double s = NAN;
    if (x && labels && tape) {
        int32_t n = tq_loader_fill(loader, 0, x, labels);
        tq_tensor view = {.data = x};
        tq_shape_set(&view, 4, (int32_t[]){n, d->c, d->h, d->w});
        tq_tape_set_recording(tape, false);
        tq_tape_set_training(tape, false);
        tq_tensor *in = tq_model_forward(m, tape, &view, NULL) ? tq_model_qlayer_input(m, i) : NULL;
        float *q = in ? malloc((size_t)in->numel * sizeof(float)) : NULL;
        tq_tensor *seen = in;
        if (in && l->input_mul) seen = tq_mul_channel(tape, in, l->input_mul);
        if (q && seen && tq_quantizer_apply(l->input_q, seen, q, err) == TQ_STATUS_OK)
            s = tq_sqnr_db(seen->data, q, seen->numel);
        free(q);
    }
    free(x);
    free(labels);
    tq_tape_free(tape);
    tq_loader_free(loader);
    return s;
}

/* SQNR of the quantized weights against the float ones (float_params: the float model's
 * parameter buffer; GPTQ has replaced the layer's own weights by quantized ones). */
static double weight_sqnr(tq_model *m, const tq_qlayer *l, const float *float_params)
{
    if (!l->weight_q) return INFINITY;
    float *q = malloc((size_t)l->weight->numel * sizeof(float));
    const float *w = float_params + (l->weight->data - tq_model_params(m));
    double s = NAN;
    tq_error e = {0};
    if (q && tq_quantizer_apply(l->weight_q, l->weight, q, &e) == TQ_STATUS_OK)
        s = tq_sqnr_db(w, q, l->weight->numel);
    free(q);
    return s;
}

tq_status tq_sens_accuracy(tq_model *m, const tq_recipe *r, const tq_sens_ctx *c, double *acc,
                           tq_error *err)
{
    tq_snapshot float_weights = {0}; /* GPTQ changes weights: back to float after */
    if (r->algo == TQ_ALGO_GPTQ && tq_snapshot_init(&float_weights, m, err)) return err->status;
    tq_status st = tq_ptq_run(m, r, -1, c->train, c->mean, c->std, c->calib_batches, c->batch,
                              c->seed, err);
    if (st == TQ_STATUS_OK) st = tq_evaluate(m, c->test, c->mean, c->std, 256, acc, NULL, err);
    tq_detach_quantizers(m);
    if (float_weights.params) tq_snapshot_restore(&float_weights, m);
    tq_snapshot_free(&float_weights);
    return st;
}

static int by_drop(const void *a, const void *b)
{
    const tq_sens_row *x = a, *y = b;
    double dx = x->float_acc - x->alone_acc, dy = y->float_acc - y->alone_acc;
    if (dx != dy) return dx < dy ? 1 : -1;
    return x->qlayer - y->qlayer;
}

tq_status tq_sensitivity(tq_model *m, const tq_recipe *r, const tq_sens_ctx *c, double float_acc,
                         tq_sens_row *rows, tq_error *err)
{
    /* GPTQ's weight changes are undone after each run; those of SmoothQuant, AWQ and
     * folding reach other layers and the model's structure */
    if ((r->algo != TQ_ALGO_NONE && r->algo != TQ_ALGO_GPTQ) || r->fold_bn)
        return tq_fail(err, TQ_STATUS_ARG, "sensitivity: recipe %s changes weights; use its plain form", r->name);
    int n = tq_model_qlayer_count(m);
    if (n > TQ_RECIPE_MAX_OVERRIDES)
        return tq_fail(err, TQ_STATUS_ARG, "sensitivity: %d layers, at most %d", n, TQ_RECIPE_MAX_OVERRIDES);
    tq_snapshot float_weights;
    if (tq_snapshot_init(&float_weights, m, err)) return err->status;
    tq_status st = TQ_STATUS_OK;
    for (int i = 0; st == TQ_STATUS_OK && i < n; i++) {
        tq_sens_row *row = &rows[i];
        memset(row, 0, sizeof *row);
        row->qlayer = i;
        row->float_acc = float_acc;
        snprintf(row->name, sizeof row->name, "%s", tq_model_qlayer(m, i)->name);
        tq_recipe one;
        one_layer_recipe(r, m, i, -1, &one);
        st = tq_ptq_run(m, &one, -1, c->train, c->mean, c->std, c->calib_batches, c->batch,
                        c->seed, err);
        if (st == TQ_STATUS_OK)
            st = tq_evaluate(m, c->test, c->mean, c->std, 256, &row->alone_acc, NULL, err);
        if (st == TQ_STATUS_OK) {
            row->weight_sqnr = weight_sqnr(m, tq_model_qlayer(m, i), float_weights.params);
            row->input_sqnr = input_sqnr(m, i, c, err);
        }
        tq_detach_quantizers(m);
        tq_snapshot_restore(&float_weights, m);
        one_layer_recipe(r, m, -1, i, &one);
        if (st == TQ_STATUS_OK) st = tq_sens_accuracy(m, &one, c, &row->all_but_acc, err);
    }
    tq_snapshot_free(&float_weights);
    if (st == TQ_STATUS_OK) qsort(rows, (size_t)n, sizeof *rows, by_drop);
    return st;
}

tq_status tq_mixed_precision(tq_model *m, const tq_recipe *r, const tq_sens_ctx *c,
                             const tq_sens_row *rows, double float_acc, double target_drop,
                             tq_recipe *out, double *acc, tq_error *err)
{
    int n = tq_model_qlayer_count(m);
    tq_layer_override int8;
    tq_recipe probe;
    TQ_ASSERT(tq_recipe_make("int8", NULL, NULL, &probe, err) == TQ_STATUS_OK);
    memset(&int8, 0, sizeof int8);
    int8.has_weights = int8.has_acts = true;
    int8.weights = probe.weights;
    int8.acts = probe.acts;
    *out = *r;
    out->n_overrides = 0;
    /* Most sensitive first: int8 for one more layer at a time, then float. */
    for (int step = 0; step <= 2 * n; step++) {
        if (step > 0) {
            int k = (step - 1) % n;
            bool to_float = step > n;
            tq_layer_override *o = NULL;
            for (int j = 0; j < out->n_overrides; j++)
                if (strcmp(out->overrides[j].layer, rows[k].name) == 0) o = &out->overrides[j];
            if (!o) o = &out->overrides[out->n_overrides++];
            *o = to_float ? (tq_layer_override){0} : int8;
            snprintf(o->layer, sizeof o->layer, "%s", rows[k].name);
        }
        if (tq_sens_accuracy(m, out, c, acc, err)) return err->status;
        if (100.0 * (float_acc - *acc) <= target_drop) return TQ_STATUS_OK;
    }
    return tq_fail(err, TQ_STATUS_ARG, "sensitivity: no mix meets a drop of %g points", target_drop);
}
