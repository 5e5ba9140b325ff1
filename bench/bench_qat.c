/* QAT overhead: time of a training step (batch 64, Adam, random inputs) with a recipe's
 * quantizers attached and calibrated, against the same model in float, measured interleaved.
 * Usage: bench_qat [THREADS [PAIRS [MODEL RECIPE]]]
 *   times PAIRS pairs of steps (one float, one QAT, in alternating order) and prints, per
 *   model and recipe: float ms/step, QAT ms/step (medians), the median of the per-pair
 *   ratios QAT / float, and the ratio of the fastest steps (preemption only ever adds time,
 *   so on a loaded machine the minimum is the least disturbed estimate). Defaults: 2 threads, 21 pairs, lenet5 and resnet20 with int8 and
 *   w4a4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "layers.h"
#include "optim.h"
#include "ptq.h"

typedef struct bench {
    tq_model *m;
    tq_optim *opt;
    tq_tape *tape;
    tq_tensor *x;
    int32_t labels[64];
    tq_rng rng;
} bench;

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "bench_qat: %s: %s\n", what, msg);
    return 1;
}

/* Every quantizer of the model on or off: OFF quantizers pass values through, so the
 * float measurement runs the very same model, weights and optimizer. */
static void set_quantizers(tq_model *m, tq_qstate state)
{
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        if (l->weight_q) tq_quantizer_set_state(l->weight_q, state);
        if (l->input_q) tq_quantizer_set_state(l->input_q, state);
    }
}

/* Attaches the recipe and calibrates the activation quantizers on the benchmark batch. */
static int attach(bench *b, const char *recipe)
{
    tq_error err = {0};
    tq_recipe r;
    if (tq_recipe_make(recipe, NULL, NULL, &r, &err) ||
        tq_attach_recipe(b->m, &r, -1, &err))
        return fail(recipe, err.msg);
    tq_tape_reset(b->tape);
    tq_tape_set_recording(b->tape, false);
    tq_tape_set_training(b->tape, false);
    if (!tq_model_forward(b->m, b->tape, b->x, NULL))
        return fail("calibrate", tq_tape_error(b->tape)->msg);
    for (int i = 0; i < tq_model_qlayer_count(b->m); i++) {
        tq_quantizer *q = tq_model_qlayer(b->m, i)->input_q;
        if (!q) continue;
        if (tq_quantizer_finish_calibration(q, &err)) return fail("calibrate", err.msg);
        tq_quantizer_set_state(q, TQ_QSTATE_QUANTIZING);
    }
    return 0;
}

static int step(bench *b)
{
    tq_tape_reset(b->tape);
    tq_tape_set_recording(b->tape, true);
    tq_tape_set_training(b->tape, true);
    tq_tensor *logits = tq_model_forward(b->m, b->tape, b->x, &b->rng);
    tq_tensor *loss = tq_softmax_cross_entropy(b->tape, logits, b->labels);
    tq_model_zero_grad(b->m);
    if (tq_backward(b->tape, loss) != TQ_STATUS_OK)
        return fail("step", tq_tape_error(b->tape)->msg);
    tq_optim_step(b->opt, tq_model_params(b->m), tq_model_grads(b->m), 1e-3f);
    return 0;
}

/* Seconds of one step with every quantizer in the given state. */
static double timed_step(bench *b, tq_qstate state)
{
    set_quantizers(b->m, state);
    double t0 = now();
    return step(b) ? -1.0 : now() - t0;
}

static int run(const char *model, const char *recipe, int pairs)
{
    bench b = {0};
    tq_error err = {0};
    tq_rng_seed(&b.rng, 1);
    int32_t c = 1, h = 28, w = 28;
    if (strcmp(model, "resnet20") == 0 || strcmp(model, "convnet") == 0) c = 3, h = w = 32;
    b.m = tq_model_create(model, c, h, w, 10, &b.rng, &err);
    if (!b.m) return fail(model, err.msg);
    tq_optim_config cfg = tq_optim_defaults(TQ_OPTIM_ADAM);
    b.opt = tq_optim_new(&cfg, tq_model_param_count(b.m), &err);
    b.tape = tq_tape_new();
    b.x = tq_tensor_new(4, (int32_t[]){64, c, h, w}, false);
    if (!b.opt || !b.tape || !b.x) return fail(model, "out of memory");
    for (int i = 0; i < 64; i++) b.labels[i] = (int32_t)tq_rng_below(&b.rng, 10);
    for (int64_t i = 0; i < b.x->numel; i++) b.x->data[i] = tq_rng_normal(&b.rng);
    int rc = attach(&b, recipe);
    double *tf = malloc(3 * (size_t)pairs * sizeof *tf), *tqat = tf + pairs, *ratio = tqat + pairs;
    if (!tf) rc = fail(model, "out of memory");
    /* warm-up, then float and QAT steps alternate, the order flipping every pair: on a shared
     * machine the load drifts, and adjacent steps see nearly the same load */
    if (rc == 0 && (timed_step(&b, TQ_QSTATE_OFF) < 0 || timed_step(&b, TQ_QSTATE_QUANTIZING) < 0))
        rc = 1;
    for (int i = 0; rc == 0 && i < pairs; i++) {
        bool qat_first = i % 2;
        double t1 = timed_step(&b, qat_first ? TQ_QSTATE_QUANTIZING : TQ_QSTATE_OFF);
        double t2 = timed_step(&b, qat_first ? TQ_QSTATE_OFF : TQ_QSTATE_QUANTIZING);
        if (t1 < 0 || t2 < 0) rc = 1;
        tf[i] = qat_first ? t2 : t1;
        tqat[i] = qat_first ? t1 : t2;
        ratio[i] = tqat[i] / tf[i];
    }
    if (rc == 0) {
        double mf = median(tf, pairs), mq = median(tqat, pairs); /* sorts: [0] is the min */
        printf("%-9s %-6s %10.2f %10.2f %7.3f %7.3f\n", model, recipe, 1e3 * mf, 1e3 * mq,
               median(ratio, pairs), tqat[0] / tf[0]);
    }
    fflush(stdout);
    free(tf);
    tq_tensor_free(b.x);
    tq_tape_free(b.tape);
    tq_optim_free(b.opt);
    tq_model_free(b.m);
    return rc;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int pairs = argc > 2 ? atoi(argv[2]) : 21;
    if (threads < 1 || pairs < 1 || argc == 4 || argc > 5) {
        fprintf(stderr, "usage: bench_qat [THREADS [PAIRS [MODEL RECIPE]]]\n");
        return 2;
    }
    tq_set_threads(threads);
    printf("%-9s %-6s %10s %10s %7s %7s\n", "model", "recipe", "float ms", "qat ms", "ratio",
           "min");
    if (argc == 5) return run(argv[3], argv[4], pairs);
    const char *models[] = {"lenet5", "resnet20"}, *recipes[] = {"int8", "w4a4"};
    int rc = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) rc |= run(models[i], recipes[j], pairs);
    return rc;
}
