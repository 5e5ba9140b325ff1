/* The outlier demo: an MLP trained on generated data, then given a few hidden channels
 * 100 times larger than the rest (its weights rescaled so the float model is unchanged,
 * as happens in large models). W8A8 PTQ with max calibration against SmoothQuant.
 * With --save, the zoo MLP given such outliers (and one more epoch of training) is written
 * as a checkpoint, with its data set beside it, so that tinyqat's own commands can probe it
 * (docs/tutorial.md). Usage:
 *   outlier_demo [FACTOR]             the demo's MLP, one line: float, int8, int8-sq, w4a16-awq
 *   outlier_demo --save DIR [FACTOR]  DIR/mlp.tqc and its data, DIR/{train,t10k}-*-ubyte
 *                                     (DIR is created if missing) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "ptq.h"

/* 10 classes of 8x8 grey images: a random +-1 pattern per class plus noise. */
static void make_dataset(tq_dataset *d, int64_t n, uint64_t seed)
{
    tq_synthetic_config cfg = {.n = n, .side = 8, .classes = 10, .signal = 25.0f, .noise = 60.0f,
                               .seed = seed};
    tq_error e = {0};
    if (tq_dataset_synthetic(d, &cfg, &e)) {
        fprintf(stderr, "outlier_demo: %s\n", e.msg);
        exit(1);
    }
}

static int fail(const tq_error *e)
{
    fprintf(stderr, "outlier_demo: %s\n", e->msg);
    return 1;
}

/* Four epochs of Adam at 0.002 on train; the normalisation into run. */
static tq_status train_model(tq_run *run, tq_model *m, const tq_dataset *train, tq_error *e)
{
    *run = (tq_run){.model = m, .batch = 64, .seed = 1, .epochs = 4};
    run->optim_cfg = tq_optim_defaults(TQ_OPTIM_ADAM);
    run->schedule = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = 0.002f};
    tq_dataset_stats(train, run->mean, run->std);
    tq_reporter rep = {.out = stderr, .quiet = true};
    while (run->epoch < run->epochs)
        if (tq_train_epoch(run, train, &rep, NULL, e)) return e->status;
    return TQ_STATUS_OK;
}

/* Four of the `hidden` channels entering fc2 and fc3 become `outlier` times larger: fc1's
 * (fc2's) rows for them are scaled up, the next layer's weights on them as much down. */
static tq_status add_outliers(tq_model *m, int hidden, float outlier, tq_error *e)
{
    float *s = malloc((size_t)hidden * sizeof *s);
    if (!s) return tq_fail(e, TQ_STATUS_NOMEM, "out of memory");
    for (int c = 0; c < hidden; c++) s[c] = c % (hidden / 4) == 0 ? 1.0f / outlier : 1.0f;
    tq_status st = TQ_STATUS_OK;
    for (int qi = 1; qi <= 2 && !st; qi++)
        if (tq_model_scale_input(m, qi, s, e) != 1) st = e->status ? e->status : TQ_STATUS_ARG;
    free(s);
    return st;
}

static int demo(float outlier)
{
    tq_dataset train, test;
    make_dataset(&train, 8192, 1);
    make_dataset(&test, 2048, 2);
    tq_error e = {0};
    tq_model *m = tq_model_new("outlier-mlp", 1, 8, 8, &e);
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc1", 128, true);
    tq_model_relu(m, "relu1");
    tq_model_linear(m, "fc2", 128, true);
    tq_model_relu(m, "relu2");
    tq_model_linear(m, "fc3", 10, true);
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    tq_run run;
    if (tq_model_finish(m, &rng, &e) || train_model(&run, m, &train, &e) ||
        add_outliers(m, 128, outlier, &e))
        return fail(&e);
    size_t np = (size_t)tq_model_param_count(m);
    float *snap = malloc(np * sizeof(float));
    memcpy(snap, tq_model_params(m), np * sizeof(float));
    double float_acc, acc[3];
    if (tq_evaluate(m, &test, run.mean, run.std, 256, &float_acc, NULL, &e)) return fail(&e);
    const char *names[3] = {"int8", "int8-sq", "w4a16-awq"};
    for (int k = 0; k < 3; k++) {
        memcpy(tq_model_params(m), snap, np * sizeof(float));
        for (int i = 0; i < 3; i++) tq_model_set_input_mul(m, i, NULL, 0, &e);
        tq_recipe r;
        if (tq_recipe_make(names[k], NULL, NULL, &r, &e) ||
            tq_ptq_run(m, &r, -1, &train, run.mean, run.std, 16, 64, 1, &e) ||
            tq_evaluate(m, &test, run.mean, run.std, 256, &acc[k], NULL, &e))
            return fail(&e);
    }
    printf("outlier x%g: float %.4f | int8 (max) %.4f (%+.2f) | int8-sq %.4f (%+.2f) | w4a16-awq %.4f (%+.2f)\n",
           (double)outlier, float_acc, acc[0], 100 * (acc[0] - float_acc), acc[1],
           100 * (acc[1] - float_acc), acc[2], 100 * (acc[2] - float_acc));
    tq_optim_free(run.optim);
    tq_model_free(m);
    free(snap);
    tq_dataset_free(&train);
    tq_dataset_free(&test);
    return 0;
}

/* After an exact rescaling the weights reading the big channels are as much smaller, and
 * SmoothQuant at any alpha undoes it (equalising either side restores the model). One more
 * epoch lets those weights grow back, so that the big channels carry a big share of the
 * output, as outlier channels do in large language models; then neither side can take the
 * whole range, and SmoothQuant's alpha has a best value between 0 and 1. */
static tq_status one_more_epoch(tq_run *run, const tq_dataset *train, tq_error *e)
{
    tq_reporter rep = {.out = stderr, .quiet = true};
    run->epochs++;
    return tq_train_epoch(run, train, &rep, NULL, e);
}

/* d as the IDX pair DIR/PREFIX-images-idx3-ubyte and DIR/PREFIX-labels-idx1-ubyte. */
static tq_status write_idx(const char *dir, const char *prefix, const tq_dataset *d, tq_error *e)
{
    size_t pixels = (size_t)d->n * (size_t)d->h * (size_t)d->w;
    unsigned char *buf = malloc(16 + pixels);
    if (!buf) return tq_fail(e, TQ_STATUS_NOMEM, "out of memory");
    uint32_t head[4] = {0x803, (uint32_t)d->n, (uint32_t)d->h, (uint32_t)d->w};
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 4; b++) buf[4 * i + b] = (unsigned char)(head[i] >> (24 - 8 * b));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    memcpy(buf + 16, d->images, pixels);
    tq_status st = tq_write_file_atomic(path, buf, 16 + pixels, e);
    if (!st) { /* the labels' header: magic 0x801, count */
        memcpy(buf, (unsigned char[]){0, 0, 8, 1}, 4);
        memcpy(buf + 8, d->labels, (size_t)d->n);
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
        st = tq_write_file_atomic(path, buf, 8 + (size_t)d->n, e);
    }
    free(buf);
    return st;
}

static int save(const char *dir, float outlier)
{
    tq_dataset train, test;
    make_dataset(&train, 8192, 1);
    make_dataset(&test, 2048, 2);
    char ckpt[4096];
    snprintf(ckpt, sizeof ckpt, "%s/mlp.tqc", dir);
    tq_error e = {0};
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    tq_run run = {0};
    double float_acc = 0;
    tq_model *m = NULL;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "outlier_demo: %s: cannot create the directory: %s\n", dir, strerror(errno));
        return 1;
    }
    if (tq_ckpt_check_writable(ckpt, &e) || write_idx(dir, "train", &train, &e) ||
        write_idx(dir, "t10k", &test, &e) ||
        !(m = tq_model_create("mlp", 1, 8, 8, 10, &rng, &e)) ||
        train_model(&run, m, &train, &e) || add_outliers(m, 256, outlier, &e) ||
        one_more_epoch(&run, &train, &e) ||
        tq_evaluate(m, &test, run.mean, run.std, 256, &float_acc, NULL, &e))
        return fail(&e);
    /* a trained model: the optimizer's moments belong to the weights before the rescaling */
    tq_optim_free(run.optim);
    run.optim = NULL;
    snprintf(run.data_name, sizeof run.data_name, "mnist:%s", dir);
    if (tq_run_save(&run, ckpt, &e)) return fail(&e);
    printf("wrote %s: zoo mlp on %s, 4 of the 256 channels entering fc2 and fc3 x%g, then "
           "one more epoch; float accuracy %.4f\n", ckpt, run.data_name, (double)outlier, float_acc);
    tq_model_free(m);
    tq_dataset_free(&train);
    tq_dataset_free(&test);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    if (argc > 2 && strcmp(argv[1], "--save") == 0) {
        dir = argv[2];
        argc -= 2;
        argv += 2;
    }
    float outlier = 100.0f;
    if (argc > 1) {
        char *end;
        outlier = strtof(argv[1], &end);
        if (*end || !(outlier >= 1.0f && outlier <= 1e4f)) {
            fprintf(stderr, "outlier_demo: FACTOR '%s': expected a number from 1 to 10000\n"
                            "usage: outlier_demo [--save DIR] [FACTOR]\n", argv[1]);
            return 2;
        }
    }
    return dir ? save(dir, outlier) : demo(outlier);
}
