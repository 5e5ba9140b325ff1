/* Private to train/: per-layer sensitivity to a recipe and mixed-precision proposals. */
#ifndef TINYQAT_SENSITIVITY_H
#define TINYQAT_SENSITIVITY_H

#include "ptq.h"

/* Where calibration and evaluation data come from. */
typedef struct tq_sens_ctx {
    const tq_dataset *train, *test;
    const float *mean, *std;
    int calib_batches;
    int32_t batch;
    uint64_t seed;
} tq_sens_ctx;

typedef struct tq_sens_row {
    char name[48];
    int qlayer;
    double float_acc;
    double alone_acc;    /* only this layer quantized */
    double all_but_acc;  /* every layer but this one quantized */
    double weight_sqnr, input_sqnr; /* dB, this layer quantized alone; +inf if float */
} tq_sens_row;

/* PTQ with r (the model's quantizers are removed after, and GPTQ's weights put back to
 * float), accuracy on the test data. */
tq_status tq_sens_accuracy(tq_model *m, const tq_recipe *r, const tq_sens_ctx *c, double *acc,
                           tq_error *err);
/* One row per Linear/Conv2d into rows (qlayer count), most sensitive (largest drop when
 * quantized alone) first. r may be a GPTQ recipe (its weights are put back after each run,
 * and the weight SQNR is GPTQ's against the float weights), but no SmoothQuant, AWQ or
 * folding. */
tq_status tq_sensitivity(tq_model *m, const tq_recipe *r, const tq_sens_ctx *c, double float_acc,
                         tq_sens_row *rows, tq_error *err);
/* Greedy: the most sensitive layers move to int8 one at a time, then to float, until the
 * drop from float_acc is at most target_drop points; the recipe found into out. */
tq_status tq_mixed_precision(tq_model *m, const tq_recipe *r, const tq_sens_ctx *c,
                             const tq_sens_row *rows, double float_acc, double target_drop,
                             tq_recipe *out, double *acc, tq_error *err);

#endif
