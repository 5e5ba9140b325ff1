/* tinyqat train: training and evaluation loops, model checkpoints, PTQ and QAT flows and the
 * PTQ-versus-QAT comparison; the `tinyqat` command is built on these. */
#ifndef TINYQAT_TRAIN_H
#define TINYQAT_TRAIN_H

#include <signal.h>
#include <stdio.h>

#include "autograd.h"
#include "data.h"
#include "layers.h"
#include "optim.h"
#include "quant.h"

/* LeNet-5 trained for three epochs on Fashion-MNIST, evaluated and saved (checks left out):
 *
 *     tq_error err = {0};
 *     tq_run run = {.batch = 64, .seed = 1, .optim_cfg = tq_optim_defaults(TQ_OPTIM_ADAM),
 *                   .schedule = {.kind = TQ_SCHEDULE_CONSTANT, .lr = 1e-3f}};
 *     tq_dataset train, val, test;                     // val: empty without run.val_fraction
 *     tq_run_open_data(&run, "fashion-mnist", &train, &val, &test, &err);
 *     tq_rng rng;
 *     tq_rng_seed(&rng, run.seed);
 *     run.model = tq_model_create("lenet5", train.c, train.h, train.w, train.classes, &rng, &err);
 *     tq_dataset_stats(&train, run.mean, run.std);     // the inputs' normalisation
 *     snprintf(run.data_name, sizeof run.data_name, "fashion-mnist");
 *     tq_reporter rep = tq_reporter_stdout(false);     // a progress bar; NULL: silent
 *     for (int e = 0; e < 3; e++) tq_train_epoch(&run, &train, &rep, NULL, &err);
 *     double acc;
 *     tq_evaluate(run.model, &test, run.mean, run.std, 256, &acc, NULL, &err);
 *     tq_run_save(&run, "lenet5.tqc", &err);           // tq_run_load reads it back
 *     tq_run_free(&run);
 *     tq_dataset_free(&train);
 *     tq_dataset_free(&val);
 *     tq_dataset_free(&test);
 *
 * A model of your own goes in run.model the same way (layers.h); the same loop fine-tunes a
 * quantized model (QAT, ptq.h). */

#ifdef __cplusplus
extern "C" {
#endif

/* Everything a run needs to continue: the model, its optimizer, how the inputs are
 * normalised, and where in the schedule it is. Saved and restored by checkpoints. */
typedef struct tq_run {
    tq_model *model;
    tq_optim *optim;           /* NULL until training starts */
    tq_optim *scale_optim;     /* the learned amax's (scale=learn): optim_cfg without weight
                                  decay; NULL until training starts, and with fixed scales */
    tq_optim_config optim_cfg;
    tq_schedule schedule;
    float clip_norm;           /* 0 = no clipping */
    float val_fraction;        /* training images held out for validation */
    uint64_t split_seed;       /* seeds which images: the float run's seed, kept by later runs */
    int32_t batch;
    uint64_t seed;
    int64_t epoch;             /* epochs completed */
    int64_t batch_in_epoch;    /* batches of the current epoch done (an interrupted epoch) */
    tq_rng rng;                /* dropout masks; reseeded from (seed, epoch) at an epoch start */
    const volatile sig_atomic_t *stop; /* when set and *stop != 0, the loop stops after the current
                                  step with TQ_STATUS_INTERRUPTED (not saved) */
    int64_t epochs;            /* epochs planned */
    float mean[4], std[4];     /* input normalisation, fixed from the training set */
    char data_name[4096];      /* the data set spec trained on (a path: as long as one) */
    /* QAT with a validation split: the epoch it will end with so far (tq_best_epoch), saved
     * with the run so that a resumed run chooses as an uninterrupted one; owned, or NULL. */
    struct tq_best_epoch *best;
} tq_run;

/* Frees the model, the optimizer and the best epoch. */
void tq_run_free(tq_run *run);
/* Frees run->best and sets it to NULL: the run no longer chooses among its epochs. */
void tq_run_forget_best(tq_run *run);
/* Per quantized layer: formats, block formats, amax range, unsigned choice, weight SQNR. */
void tq_print_quantizers(tq_model *m, FILE *out);

typedef struct tq_epoch_stats {
    int64_t epoch;
    double loss, accuracy;     /* on the training batches, as seen during the epoch */
    double seconds, images_per_s;
} tq_epoch_stats;

/* How the loops report: a progress bar on a terminal, plain lines otherwise, nothing
 * when quiet or when a loop is given no reporter (NULL). */
typedef struct tq_reporter {
    FILE *out;
    bool quiet;
    bool tty;
} tq_reporter;
tq_reporter tq_reporter_stdout(bool quiet);
void tq_report_progress(tq_reporter *r, const char *what, int64_t done, int64_t total,
                        double loss, double accuracy);
void tq_report_line(tq_reporter *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A copy of a model's parameters, batch-norm statistics and every quantizer's amax (which
 * QAT changes when scales are learned), not of the quantizers themselves. */
typedef struct tq_snapshot {
    float *params, *state, *amax;
    int64_t n_params, n_state, n_amax, cap_amax;
} tq_snapshot;
/* Allocates a snapshot of m and takes it. */
tq_status tq_snapshot_init(tq_snapshot *s, tq_model *m, tq_error *err);
/* Fails only when m's quantizers hold more amax than ever before and memory runs out. */
tq_status tq_snapshot_take(tq_snapshot *s, tq_model *m, tq_error *err);
/* Onto the model it was taken from: amax too when it had quantizers, which must be the same
 * ones; a snapshot without them leaves any quantizers attached since then alone. */
void tq_snapshot_restore(const tq_snapshot *s, tq_model *m);
void tq_snapshot_free(tq_snapshot *s);

/* The epoch best on validation so far: its weights, its validation accuracy (a fraction) and
 * its number (0: the weights training started from). */
typedef struct tq_best_epoch {
    tq_snapshot weights;
    double val_acc;
    int64_t epoch;
} tq_best_epoch;

/* Whether data set d (opened from spec) fits run->model: the same image shape (C,H,W) and
 * class count; otherwise a TQ_STATUS_SHAPE error naming both shapes and both data sets. */
tq_status tq_run_check_data(const tq_run *run, const char *spec, const tq_dataset *d,
                            tq_error *err);
/* Opens data set spec for run: test split, and the training split divided as run->val_fraction
 * and run->seed say (val left empty, n = 0, without a fraction), each checked against
 * run->model first when there is one. Nothing to free on error. */
tq_status tq_run_open_data(const tq_run *run, const char *spec, tq_dataset *train,
                           tq_dataset *val, tq_dataset *test, tq_error *err);

/* Learned scales (quantizer spec option scale=learn, quant.h): QAT updates every learned
 * amax with run->scale_optim after each step of the weights, at the same rate. */
/* Switches every quantizer of m to learned (on) or fixed scales; fails naming the first
 * layer whose quantizer cannot learn, before changing any. */
tq_status tq_model_set_learn_scales(tq_model *m, bool on, tq_error *err);
/* How many amax values of m's quantizers are learned (0 with fixed scales). */
int64_t tq_model_learned_amax_count(tq_model *m);
/* Zeroes the gradients of the learned amax. */
void tq_model_zero_amax_grad(tq_model *m);
/* One optimizer step on every learned amax (buf: scratch of 2 * count floats), each kept at
 * least TQ_LEARNED_AMAX_FLOOR. */
void tq_learned_amax_step(tq_model *m, tq_optim *o, float lr, float *buf);

/* Trains run->model for one epoch over train. */
tq_status tq_train_epoch(tq_run *run, const tq_dataset *train, tq_reporter *rep,
                         tq_epoch_stats *stats, tq_error *err);
/* The rate QAT starts at when none is given: 1% of the initial rate the float model was trained
 * with (its checkpoint records it), the usual advice for fine-tuning a converged model under fake
 * quantization (NVIDIA's pytorch-quantization guide: about a tenth of the original schedule, from
 * 1% of its initial rate, cosine-annealed). At the float rate, two QAT epochs on a converged
 * LeNet-5 cost up to 0.1 point on MNIST and 0.3 on Fashion-MNIST where PTQ had lost nothing. */
double tq_qat_default_lr(const tq_run *float_run);
/* Accuracy (fraction) and mean loss of model on d with the given normalisation. */
tq_status tq_evaluate(tq_model *model, const tq_dataset *d, const float *mean, const float *std,
                      int32_t batch, double *accuracy, double *loss, tq_error *err);
/* As tq_evaluate, also writing each image's predicted class (d->n of them, in order) to pred. */
tq_status tq_predict(tq_model *model, const tq_dataset *d, const float *mean, const float *std,
                     int32_t batch, int32_t *pred, double *accuracy, tq_error *err);
/* Two-sided exact McNemar test of two classifiers on the same images: `gained` images only the
 * second gets right, `lost` only the first; the probability of a split at least this uneven if
 * both were equally good (binomial, p = 1/2). 1 when both counts are 0. */
double tq_mcnemar_p(int64_t gained, int64_t lost);

/* Checkpoints: model (name, input shape, parameters, batch-norm statistics, quantizers),
 * optimizer, normalisation, epoch and schedule; versioned, checksummed, written atomically. */
tq_status tq_run_save(const tq_run *run, const char *path, tq_error *err);
/* Loads a checkpoint of a zoo model (the model is made from the name it records). */
tq_status tq_run_load(const char *path, tq_run *run, tq_error *err);
/* Loads a checkpoint of a model of your own into m, which you built as the saved one was
 * built (same name, input shape and layers): its parameters, batch-norm statistics and
 * quantizers replace m's, and the run takes m (tq_run_free frees it). On failure run is
 * empty and m, perhaps partly overwritten, is still yours to free. */
tq_status tq_run_load_model(const char *path, tq_model *m, tq_run *run, tq_error *err);

#ifdef __cplusplus
}
#endif
#endif
