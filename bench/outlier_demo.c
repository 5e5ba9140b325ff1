/* The outlier demo: an MLP trained on generated data, then given a few hidden channels
 * 100 times larger than the rest (its weights rescaled so the float model is unchanged,
 * as happens in large models). W8A8 PTQ with max calibration against SmoothQuant. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv)
{
    float outlier = argc > 1 ? strtof(argv[1], NULL) : 100.0f;
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
    if (tq_model_finish(m, &rng, &e)) return fail(&e);
    tq_run run = {.model = m, .batch = 64, .seed = 1, .epochs = 4};
    run.optim_cfg = tq_optim_defaults(TQ_OPTIM_ADAM);
    run.schedule = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = 0.002f};
    tq_dataset_stats(&train, run.mean, run.std);
    tq_reporter rep = {.out = stderr, .quiet = true};
    while (run.epoch < run.epochs)
        if (tq_train_epoch(&run, &train, &rep, NULL, &e)) return fail(&e);
    /* Four hidden channels of fc1 and of fc2 become `outlier` times larger; the next layer's
     * weights on them as much smaller. */
    for (int qi = 1; qi <= 2; qi++) {
        float s[128];
        for (int c = 0; c < 128; c++) s[c] = c % 32 == 0 ? 1.0f / outlier : 1.0f;
        if (tq_model_scale_input(m, qi, s, &e) != 1) return fail(&e);
    }
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
