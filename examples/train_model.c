/* Lesson 1: train a model of your own design.
 *
 * small_cnn.h builds a small convolutional network with the layer API. This program opens a
 * data set, trains the network with Adam on a cosine-decayed rate, prints the test accuracy
 * after each epoch, and saves a checkpoint, which lessons 2 and 3 quantize.
 *
 *     train_model [DATA] [OUT] [--quick]
 *
 * DATA is a data set as the tinyqat command takes it (default fashion-mnist, the files of
 * Debian's dataset-fashion-mnist; or mnist:DIR, cifar10:DIR, pngdir:DIR), OUT the checkpoint
 * (default small_cnn.tqc). Three epochs, or one with --quick. On Fashion-MNIST three epochs
 * reached 91.2% test accuracy; on the test suite's generated bars, 96.7%. */
#include <stdio.h>
#include <string.h>

#include <tinyqat/train.h>

#include "small_cnn.h"

static int fail(const tq_error *err)
{
    fprintf(stderr, "train_model: %s\n", err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    const char *args[2] = {"fashion-mnist", "small_cnn.tqc"};
    int n_args = 0, epochs = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            epochs = 1;
        } else if (n_args < 2 && argv[i][0] != '-') {
            args[n_args++] = argv[i];
        } else {
            fprintf(stderr, "usage: train_model [DATA] [OUT] [--quick]\n");
            return 2;
        }
    }
    const char *data = args[0], *out = args[1];

    /* A run: the model and everything needed to train it on, and to save it. */
    tq_error err = {0};
    tq_run run = {.batch = 64, .seed = 1, .epochs = epochs,
                  .optim_cfg = tq_optim_defaults(TQ_OPTIM_ADAM)};
    tq_dataset train, val, test; /* val stays empty: no run.val_fraction */
    if (tq_run_open_data(&run, data, &train, &val, &test, &err)) return fail(&err);
    int rc = 0;
    run.model = small_cnn_new(train.c, train.h, train.w, train.classes, run.seed, &err);
    if (!run.model) {
        rc = fail(&err);
        goto done;
    }
    tq_model_describe(run.model, stdout);
    /* The inputs are normalised with the training set's mean and standard deviation; the
     * checkpoint keeps them, so whoever loads the model normalises the same way. */
    tq_dataset_stats(&train, run.mean, run.std);
    snprintf(run.data_name, sizeof run.data_name, "%s", data);
    int64_t steps = (train.n + run.batch - 1) / run.batch;
    run.schedule = (tq_schedule){.kind = TQ_SCHEDULE_COSINE, .lr = 2e-3f,
                                 .total_steps = epochs * steps};

    double acc = 0;
    while (run.epoch < run.epochs) {
        tq_epoch_stats st;
        if (tq_train_epoch(&run, &train, NULL, &st, &err) ||
            tq_evaluate(run.model, &test, run.mean, run.std, 256, &acc, NULL, &err)) {
            rc = fail(&err);
            goto done;
        }
        printf("epoch %lld: loss %.4f, train accuracy %.4f, test accuracy %.4f\n",
               (long long)st.epoch, st.loss, st.accuracy, acc);
    }
    /* Parameters, batch-norm statistics, normalisation and optimizer state, atomically. */
    if (tq_run_save(&run, out, &err)) {
        rc = fail(&err);
        goto done;
    }
    printf("saved %s\naccuracy float %.4f\n", out, acc);
done:
    tq_run_free(&run);
    tq_dataset_free(&train);
    tq_dataset_free(&val);
    tq_dataset_free(&test);
    return rc;
}
