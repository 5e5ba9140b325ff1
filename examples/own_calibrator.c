/* Lesson 3: a calibrator of your own.
 *
 * A calibrator turns the values a quantizer saw during calibration into its amax (the value
 * that maps to the largest code). tinyqat has four (max, percentile, mse, entropy); through
 * tq_calibrate_with a program brings its own: observe() gets every calibration batch at the
 * input of every layer, amax() names each layer's amax. This one keeps every |x| it sees
 * and takes their p-th percentile (tinyqat's own percentile calibrator bins them in a
 * histogram instead: less memory, a value rounded to a bin edge).
 *
 * The w4a4 recipe calibrated at three percentiles, with the test accuracy of each. At
 * p = 100 the rule is the max calibrator's, and the amax of every layer must be the built-in
 * max calibrator's, to the bit: the program checks that first.
 *
 *     own_calibrator [MODEL] [DATA] [--quick]
 *
 * MODEL is lesson 1's checkpoint (default small_cnn.tqc), DATA its data set (default
 * fashion-mnist); 16 calibration batches of 64 (--quick: 4). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tinyqat/ptq.h>

#include "small_cnn.h"

#define MAX_LAYERS 16

typedef struct percentile_rule {
    double p;                    /* in (0, 100] */
    float *seen[MAX_LAYERS];     /* every finite |x| of each layer's inputs */
    int64_t n[MAX_LAYERS], cap[MAX_LAYERS];
} percentile_rule;

static tq_status observe(void *ctx, int qi, const tq_tensor *x, tq_error *err)
{
    percentile_rule *r = ctx;
    if (qi >= MAX_LAYERS) return tq_fail(err, TQ_STATUS_ARG, "more than %d layers", MAX_LAYERS);
    if (r->n[qi] + x->numel > r->cap[qi]) { /* grow by doubling */
        int64_t cap = 2 * (r->n[qi] + x->numel);
        float *grown = realloc(r->seen[qi], (size_t)cap * sizeof(float));
        if (!grown) return tq_fail(err, TQ_STATUS_NOMEM, "out of memory");
        r->seen[qi] = grown;
        r->cap[qi] = cap;
    }
    for (int64_t i = 0; i < x->numel; i++)
        if (isfinite(x->data[i])) r->seen[qi][r->n[qi]++] = fabsf(x->data[i]);
    return TQ_STATUS_OK;
}

static int by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static tq_status amax_of(void *ctx, int qi, const tq_quantizer *q, float *amax, int64_t n,
                         tq_error *err)
{
    (void)q; /* its format, were the rule to depend on the grid: tq_quantizer_format(q) */
    percentile_rule *r = ctx;
    if (n != 1)
        return tq_fail(err, TQ_STATUS_ARG, "per-tensor specs only (got %lld amax)", (long long)n);
    qsort(r->seen[qi], (size_t)r->n[qi], sizeof(float), by_value);
    int64_t k = (int64_t)ceil(r->p / 100.0 * (double)r->n[qi]) - 1; /* the p-th percentile */
    amax[0] = r->seen[qi][k < 0 ? 0 : k];
    r->n[qi] = 0; /* ready for the next calibration */
    return TQ_STATUS_OK;
}

int main(int argc, char **argv)
{
    const char *args[2] = {"small_cnn.tqc", "fashion-mnist"};
    int n_args = 0, batches = 16;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            batches = 4;
        } else if (n_args < 2 && argv[i][0] != '-') {
            args[n_args++] = argv[i];
        } else {
            fprintf(stderr, "usage: own_calibrator [MODEL] [DATA] [--quick]\n");
            return 2;
        }
    }
    tq_error err = {0};
    tq_dataset train = {0}, test = {0};
    tq_run run = {0};
    tq_model *m = NULL;
    percentile_rule rule = {.p = 100};
    tq_calibrator calibrator = {.ctx = &rule, .observe = observe, .amax = amax_of};
    tq_recipe r;
    float builtin[MAX_LAYERS];
    if (tq_dataset_open(args[1], TQ_SPLIT_TRAIN, &train, &err) ||
        tq_dataset_open(args[1], TQ_SPLIT_TEST, &test, &err) ||
        !(m = small_cnn_new(train.c, train.h, train.w, train.classes, 0, &err)) ||
        tq_run_load_model(args[0], m, &run, &err)) {
        tq_model_free(m);
        goto done;
    }
    const float *mean = run.mean, *std = run.std;
    int layers = tq_model_qlayer_count(run.model);
    /* The built-in max calibrator first (w4a4's input specs calibrate by max). */
    if (tq_recipe_make("w4a4", NULL, NULL, &r, &err) || tq_attach_recipe(run.model, &r, -1, &err) ||
        tq_calibrate(run.model, &train, mean, std, batches, 64, 1, &err))
        goto done;
    for (int i = 0; i < layers && i < MAX_LAYERS; i++)
        builtin[i] = tq_quantizer_amax(tq_model_qlayer(run.model, i)->input_q)[0];
    static const double percentiles[] = {100, 99.9, 99};
    for (size_t k = 0; k < sizeof percentiles / sizeof *percentiles; k++) {
        rule.p = percentiles[k];
        if (tq_attach_recipe(run.model, &r, -1, &err) ||
            tq_calibrate_with(run.model, &calibrator, &train, mean, std, batches, 64, 1, &err))
            goto done;
        for (int i = 0; rule.p == 100 && i < layers && i < MAX_LAYERS; i++) {
            tq_qlayer *l = tq_model_qlayer(run.model, i);
            float ours = tq_quantizer_amax(l->input_q)[0];
            printf("%-6s input amax: max calibrator %.9g, percentile 100 %.9g\n", l->name,
                   (double)builtin[i], (double)ours);
            if (memcmp(&ours, &builtin[i], sizeof ours) != 0) {
                tq_fail(&err, TQ_STATUS_NUMERIC, "%s: percentile 100 is not the max", l->name);
                goto done;
            }
        }
        double acc;
        if (tq_evaluate(run.model, &test, mean, std, 256, &acc, NULL, &err)) goto done;
        printf("accuracy w4a4 percentile %g %.4f\n", percentiles[k], acc);
    }
done:
    if (err.status) fprintf(stderr, "own_calibrator: %s\n", err.msg);
    for (int i = 0; i < MAX_LAYERS; i++) free(rule.seen[i]);
    tq_run_free(&run);
    tq_dataset_free(&train);
    tq_dataset_free(&test);
    return err.status ? 1 : 0;
}
