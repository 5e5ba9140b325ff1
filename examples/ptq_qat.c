/* Lesson 2: quantize the model of lesson 1 after training (PTQ), then fine-tune it with the
 * scales fixed (QAT); once with a named recipe, once with specs written layer by layer.
 *
 * PTQ is two calls: tq_attach_recipe puts a weight and an input quantizer on every Linear
 * and Conv2d (weight scales come from the weights at once) and tq_calibrate runs training
 * batches forward to fix the input scales. QAT is lesson 1's training loop on the quantized
 * model: fake quant in the forward, the straight-through estimator in the backward.
 *
 *     ptq_qat [MODEL] [DATA] [--quick]
 *
 * MODEL is lesson 1's checkpoint (default small_cnn.tqc), DATA its data set (default
 * fashion-mnist). Calibration on 16 batches of 64 (--quick: 4), one QAT epoch at a tenth of
 * the float rate; each quantized model is saved next to MODEL (small_cnn-w4a4.tqc, ...). */
#include <stdio.h>
#include <string.h>

#include <tinyqat/ptq.h>

#include "small_cnn.h"

/* Hand-written specs (quant.h explains the syntax): 8 bits where the image comes in and the
 * logits go out, 4 bits inside, 2-bit weights on fc1, which holds most of the weights. */
static const char *const layer_specs[][3] = {
    /* layer, weights, inputs */
    {"conv1", "int8:channel=0", "int8"},
    {"conv2", "int4:channel=0:calib=mse", "int4"},
    {"fc1", "int2:channel=0:calib=mse", "int4:calib=mse"},
    {"fc2", "int8:channel=0", "int8"},
};

/* PTQ with recipe r from the float weights, QAT, and the checkpoint saved as PREFIX-NAME. */
static tq_status quantize(tq_run *run, const tq_snapshot *float_weights, const tq_recipe *r,
                          const char *label, const tq_dataset *train, const tq_dataset *test,
                          int calib_batches, float qat_lr, const char *prefix, tq_error *err)
{
    tq_snapshot_restore(float_weights, run->model);
    double ptq_acc, qat_acc;
    if (tq_attach_recipe(run->model, r, -1, err) ||
        tq_calibrate(run->model, train, run->mean, run->std, calib_batches, 64, 1, err) ||
        tq_evaluate(run->model, test, run->mean, run->std, 256, &ptq_acc, NULL, err))
        return err->status;
    tq_print_quantizers(run->model, stdout);

    /* QAT: a fresh optimizer, one epoch, cosine-decayed from qat_lr. */
    tq_optim_free(run->optim);
    run->optim = NULL;
    run->epoch = 0;
    run->epochs = 1;
    run->schedule = (tq_schedule){.kind = TQ_SCHEDULE_COSINE, .lr = qat_lr,
                                  .total_steps = (train->n + run->batch - 1) / run->batch};
    if (tq_train_epoch(run, train, NULL, NULL, err) ||
        tq_evaluate(run->model, test, run->mean, run->std, 256, &qat_acc, NULL, err))
        return err->status;
    char path[4096];
    snprintf(path, sizeof path, "%s-%s.tqc", prefix, label);
    if (tq_run_save(run, path, err)) return err->status;
    printf("accuracy %s ptq %.4f qat %.4f (saved %s)\n", label, ptq_acc, qat_acc, path);
    return TQ_STATUS_OK;
}

int main(int argc, char **argv)
{
    const char *args[2] = {"small_cnn.tqc", "fashion-mnist"};
    int n_args = 0, calib_batches = 16;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) calib_batches = 4;
        else if (n_args < 2 && argv[i][0] != '-') args[n_args++] = argv[i];
        else {
            fprintf(stderr, "usage: ptq_qat [MODEL] [DATA] [--quick]\n");
            return 2;
        }
    }
    tq_error err = {0};
    tq_dataset train = {0}, test = {0};
    tq_run run = {0};
    tq_snapshot float_weights = {0};
    tq_recipe r;
    /* The data first: the model is built for its shape, then takes the checkpoint's weights. */
    tq_model *m = NULL;
    if (tq_dataset_open(args[1], TQ_SPLIT_TRAIN, &train, &err) ||
        tq_dataset_open(args[1], TQ_SPLIT_TEST, &test, &err) ||
        !(m = small_cnn_new(train.c, train.h, train.w, train.classes, 0, &err)) ||
        tq_run_load_model(args[0], m, &run, &err) != TQ_STATUS_OK) {
        tq_model_free(m);
        m = NULL;
        goto done;
    }
    double float_acc;
    if (tq_evaluate(run.model, &test, run.mean, run.std, 256, &float_acc, NULL, &err) ||
        tq_snapshot_init(&float_weights, run.model, &err))
        goto done;
    printf("accuracy float %.4f\n", float_acc);
    float qat_lr = 0.1f * run.schedule.lr; /* a tenth of the rate the float model began at */
    char prefix[4096];                     /* MODEL without its .tqc */
    size_t len = strlen(args[0]);
    if (len > 4 && strcmp(args[0] + len - 4, ".tqc") == 0) len -= 4;
    snprintf(prefix, sizeof prefix, "%.*s", (int)len, args[0]);

    /* A named recipe: int4 weights per channel, int4 inputs per tensor. */
    if (tq_recipe_make("w4a4", NULL, NULL, &r, &err) ||
        quantize(&run, &float_weights, &r, "w4a4", &train, &test, calib_batches, qat_lr, prefix,
                 &err))
        goto done;
    /* The same calls with a recipe of our own: a default, then every layer its own specs. */
    if (tq_recipe_make(NULL, "int8:channel=0", "int8", &r, &err)) goto done;
    for (size_t i = 0; i < sizeof layer_specs / sizeof *layer_specs; i++)
        if (tq_recipe_layer(&r, layer_specs[i][0], layer_specs[i][1], layer_specs[i][2], &err))
            goto done;
    quantize(&run, &float_weights, &r, "mixed", &train, &test, calib_batches, qat_lr, prefix, &err);
done:
    if (err.status) fprintf(stderr, "ptq_qat: %s\n", err.msg);
    tq_snapshot_free(&float_weights);
    tq_run_free(&run); /* and the model it took */
    tq_dataset_free(&train);
    tq_dataset_free(&test);
    return err.status ? 1 : 0;
}
