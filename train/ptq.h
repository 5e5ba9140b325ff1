/* tinyqat ptq: recipes (which quantizers go on which layers), post-training quantization
 * (attach, calibrate), calibrators of your own, and the PTQ-against-QAT comparison. */
#ifndef TINYQAT_PTQ_H
#define TINYQAT_PTQ_H

#include "train.h"

/* A trained float model quantized with a recipe, one layer of it by hand, evaluated, then
 * fine-tuned with QAT and saved (each call returns TQ_STATUS_OK, or a status with err.msg
 * saying what went wrong; the checks are left out here):
 *
 *     tq_error err = {0};
 *     tq_run run;                                   // a float model and how it was trained
 *     tq_dataset train, val, test;
 *     tq_run_load("lenet5.tqc", &run, &err);        // tq_run_load_model for your own model
 *     tq_run_open_data(&run, "fashion-mnist", &train, &val, &test, &err);
 *
 *     tq_recipe r;                                  // int4 weights, int8 inputs; but conv1:
 *     tq_recipe_make("w4a8", NULL, NULL, &r, &err);
 *     tq_recipe_layer(&r, "conv1", "int8:channel=0", "int8", &err);
 *     tq_attach_recipe(run.model, &r, -1, &err);    // weight scales set, inputs calibrating
 *     tq_calibrate(run.model, &train, run.mean, run.std, 32, 64, 1, &err); // 32 batches of 64
 *     double acc;
 *     tq_evaluate(run.model, &test, run.mean, run.std, 256, &acc, NULL, &err); // PTQ accuracy
 *
 *     // QAT: the training loop of train.h with the scales fixed; a new optimizer, slow rate
 *     float lr = (float)tq_qat_default_lr(&run);   // 1% of the float model's
 *     tq_optim_free(run.optim);
 *     run.optim = NULL;
 *     run.epoch = 0;
 *     run.schedule = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = lr};
 *     tq_train_epoch(&run, &train, NULL, NULL, &err);
 *     tq_run_save(&run, "lenet5-w4a8.tqc", &err);   // the quantizers and their amax too
 *
 * tq_ptq_run does attach and calibrate in one, with SmoothQuant, AWQ or batch-norm folding
 * first when the recipe asks; tq_calibrate_with calibrates with a calibrator of your own;
 * tq_compare_recipe is `tinyqat compare`'s experiment for one recipe. */

#ifdef __cplusplus
extern "C" {
#endif

/* What happens to the first and last layers, which are the most sensitive. */
typedef enum tq_keep_kind { TQ_KEEP_NONE, TQ_KEEP_FLOAT, TQ_KEEP_INT8 } tq_keep_kind;

/* Calibration that changes weights before the quantizers are calibrated. */
typedef enum tq_calib_algo {
    TQ_ALGO_NONE,
    TQ_ALGO_SMOOTHQUANT,
    TQ_ALGO_AWQ,
    TQ_ALGO_GPTQ, /* chooses weight codes after the quantizers are attached */
} tq_calib_algo;

/* How GPTQ runs over a model (tq_gptq_model). */
typedef struct tq_gptq_config {
    tq_gptq_opts opts;  /* dampening, act-order, lazy block (quant.h) */
    bool float_inputs;  /* every layer's H from the float model's inputs, in one pass, rather
                           than from the model with the layers before it already quantized */
    int batches;        /* calibration batches for H, at most the activations' (0: as many) */
    FILE *log;          /* one line per layer when not NULL */
} tq_gptq_config;
/* The paper's options, inputs from the quantized model, 8 calibration batches (512 images at
 * batch 64: more took longer and gained nothing on LeNet-5), silent. */
tq_gptq_config tq_gptq_config_default(void);

/* One layer's override from a recipe file: its own weight and input specs. */
#define TQ_RECIPE_MAX_OVERRIDES 64
typedef struct tq_layer_override {
    char layer[48];
    bool has_weights, has_acts;
    tq_qspec weights, acts;
} tq_layer_override;

typedef struct tq_recipe {
    char name[96];
    bool has_weights, has_acts;
    tq_qspec weights, acts;
    tq_keep_kind keep;
    tq_calib_algo algo;
    float alpha;    /* SmoothQuant migration strength (default 0.5) */
    bool awq_clip;  /* AWQ: also search the weight amax per block */
    bool fold_bn;   /* fold batch norms into the layers before them first */
    bool keep_histograms; /* activation quantizers keep their calibration histogram whatever
                             the calibrator (for the report's figures) */
    tq_gptq_config gptq; /* TQ_ALGO_GPTQ */
    int n_overrides;
    tq_layer_override overrides[TQ_RECIPE_MAX_OVERRIDES];
} tq_recipe;

/* A named recipe, optionally with its weight or activation spec replaced, or (name NULL)
 * a custom one from the two spec strings ("" or "float" = leave in float). */
tq_status tq_recipe_make(const char *name, const char *weights, const char *acts,
                         tq_recipe *out, tq_error *err);
/* Gives one Linear or Conv2d layer (by name, as tq_model_qlayer names it: "conv1", "fc2") its
 * own weight and input specs, replacing the recipe's there (and any earlier call's for that
 * layer). Specs as tq_qspec_parse reads them; NULL, "" or "float" leave that side in float.
 * tq_attach_recipe fails on a name the model does not have. */
tq_status tq_recipe_layer(tq_recipe *r, const char *layer, const char *weights,
                          const char *acts, tq_error *err);
const char *tq_recipe_names(void);
void tq_recipe_list(FILE *out);
bool tq_keep_parse(const char *s, tq_keep_kind *out);

/* Reads a recipe file: '#' comments, blank lines, then lines
 *   default RECIPE            (a named recipe; required, first)
 *   layer NAME RECIPE|float   (that layer's weights and input as in RECIPE, or float)
 * Errors name the file and line. */
tq_status tq_recipe_load(const char *path, tq_recipe *out, tq_error *err);
/* Writes r's default name and overrides in that format (atomically enough for a report). */
tq_status tq_recipe_save(const char *path, const char *default_name,
                         const tq_layer_override *over, const char *const *over_names,
                         int n, tq_error *err);

/* Attach, rescale and calibrate in one: folds batch norms if asked, runs SmoothQuant or AWQ
 * on calibration statistics, attaches the recipe (AWQ clipping after), then calibrates the
 * activation quantizers. */
tq_status tq_ptq_run(tq_model *m, const tq_recipe *r, int calib, const tq_dataset *train,
                     const float *mean, const float *std, int batches, int32_t batch,
                     uint64_t seed, tq_error *err);

/* Runs fn on up to `batches` shuffled training batches (N,C,H,W), normalised, in the order
 * the seed gives: every calibration step draws the same batches for the same seed. */
typedef tq_status (*tq_batch_fn)(tq_tensor *x, void *ctx, tq_error *err);
tq_status tq_for_calib_batches(const tq_dataset *train, const float *mean, const float *std,
                               int batches, int32_t batch, uint64_t seed, tq_batch_fn fn,
                               void *ctx, tq_error *err);

/* GPTQ on every Linear/Conv2d holding a weight quantizer (attached, amax from the weights),
 * in forward order: H from the layer's inputs on the calibration batches, then the weights
 * replaced by GPTQ's dequantized codes, which the weight quantizer reproduces exactly.
 * Unless cfg->float_inputs, a layer's inputs come from the model whose earlier layers are
 * already GPTQ-quantized (activations in float: the activation quantizers are calibrated
 * afterwards, on the final weights). Quantizer states are as they were on return. */
tq_status tq_gptq_model(tq_model *m, const tq_gptq_config *cfg, const tq_dataset *train,
                        const float *mean, const float *std, int batches, int32_t batch,
                        uint64_t seed, tq_error *err);

/* Per-input-channel statistics of every Linear/Conv2d input, for SmoothQuant and AWQ. */
typedef struct tq_chan_stats {
    int32_t channels;
    int64_t count;        /* values seen per channel */
    float *amax;          /* max |x_c| */
    double *sum_abs, *sum_sq;
    tq_tensor *sample;    /* the first inputs seen, up to TQ_AWQ_SAMPLES of them */
    float *awq_s;         /* the AWQ scale chosen (NULL before) */
} tq_chan_stats;
#define TQ_AWQ_SAMPLES 32

tq_chan_stats *tq_chan_stats_new(tq_model *m, tq_error *err);
void tq_chan_stats_free(tq_chan_stats *s, int n);
/* One float forward of x (no tape recording) adding every layer's input to the stats. */
tq_status tq_chan_stats_observe(tq_model *m, tq_chan_stats *s, tq_tensor *x, tq_error *err);
/* SmoothQuant with strength alpha on every layer; AWQ's exponent search per layer with
 * weight spec wspec (best exponents into exps[qlayer] when not NULL). Last layer first, so
 * each search sees the final weights of its own layer. */
tq_status tq_smoothquant_model(tq_model *m, const tq_chan_stats *s, float alpha, tq_error *err);
tq_status tq_awq_model(tq_model *m, tq_chan_stats *s, const tq_qspec *wspec, float *exps,
                       tq_error *err);
/* AWQ clipping on every attached weight quantizer: the search of tq_awq_clip_search, kept
 * only where it does not raise the output error on the kept samples (by output channel). */
tq_status tq_awq_clip_model(tq_model *m, const tq_chan_stats *s, tq_error *err);

/* Puts the recipe's quantizers on every Linear and Conv2d of m (replacing any there):
 * weight quantizers take amax from the weights and start quantizing; activation quantizers
 * start calibrating. calib overrides the activation spec's calibrator when >= 0. */
tq_status tq_attach_recipe(tq_model *m, const tq_recipe *r, int calib, tq_error *err);
/* Runs up to `batches` shuffled training batches forward without a tape, lets every
 * calibrating quantizer fix its amax, and switches them to quantizing. */
tq_status tq_calibrate(tq_model *m, const tq_dataset *train, const float *mean,
                       const float *std, int batches, int32_t batch, uint64_t seed,
                       tq_error *err);
/* A calibrator of your own, for tq_calibrate_with: it sees every calibration batch at the
 * input of every layer being calibrated, then names each input quantizer's amax. */
typedef struct tq_calibrator {
    void *ctx; /* yours: handed back to both functions */
    /* One batch (N,C,H,W) or (N,F) at the input quantizer of Linear/Conv2d layer qi (the
     * tq_model_qlayer index), as the quantizer sees it: after the layer's input_mul. */
    tq_status (*observe)(void *ctx, int qi, const tq_tensor *x, tq_error *err);
    /* amax[0..n) for layer qi's input quantizer q: n is 1, or the channel count for a
     * per-channel spec. q's format is final: the auto-unsigned switch (uintN when no value
     * observed was negative) has been made. */
    tq_status (*amax)(void *ctx, int qi, const tq_quantizer *q, float *amax, int64_t n,
                      tq_error *err);
} tq_calibrator;
/* tq_calibrate with c in place of the calibrator each spec names: the same batches, the same
 * unsigned switch, then c's amax; every calibrating input quantizer then quantizes. On
 * failure they are left calibrating. */
tq_status tq_calibrate_with(tq_model *m, const tq_calibrator *c, const tq_dataset *train,
                            const float *mean, const float *std, int batches, int32_t batch,
                            uint64_t seed, tq_error *err);
/* Removes every quantizer (back to the float model). */
void tq_detach_quantizers(tq_model *m);
/* "max", "percentile", "mse", "entropy". */
bool tq_calib_parse(const char *s, tq_calib_kind *out);
const char *tq_calib_name(tq_calib_kind k);

/* The comparison behind `tinyqat compare` (train/compare.c). */
typedef struct tq_accuracy_pair {
    double test, val; /* fractions; val 0 without a validation split, both -1 when not run */
} tq_accuracy_pair;

#define TQ_COMPARE_CALIBS 4 /* by tq_calib_kind */

/* The QAT methods compare runs from the same PTQ start: scales fixed (`qat`) or learned
 * (`qat-lsq`, every quantizer with scale=learn). */
typedef enum tq_qat_method { TQ_QAT_FIXED, TQ_QAT_LSQ, TQ_QAT_METHODS } tq_qat_method;
const char *tq_qat_method_name(tq_qat_method m); /* "qat", "qat-lsq" */
bool tq_qat_method_parse(const char *s, tq_qat_method *out);

/* One QAT method's outcome on a recipe. */
typedef struct tq_qat_result {
    bool run;
    tq_accuracy_pair acc;
    int epoch;              /* the QAT epoch kept; 0 = the PTQ start (validation found no better) */
    double lr;              /* the rate of the QAT run kept (0 with the PTQ start) */
    double val_p;           /* McNemar p of the kept epoch against the start on validation (1: start) */
    int64_t gained, lost;   /* test images QAT gets right and its PTQ start wrong, and the reverse */
} tq_qat_result;

typedef struct tq_compare_row {
    char recipe[96];
    tq_accuracy_pair ptq[TQ_COMPARE_CALIBS];
    int best;               /* calibrator of the best PTQ: on validation, else on test */
    tq_qat_result qat[TQ_QAT_METHODS];
    int64_t lsq_gained, lsq_lost; /* with both methods: test images learned scales get right
                                     and fixed scales wrong, and the reverse */
} tq_compare_row;

typedef struct tq_compare {
    tq_run *run;                         /* the float model, its normalisation, batch, seed */
    const tq_dataset *train, *val, *test; /* val NULL: no held-out split */
    int calib_batches, qat_epochs;
    const double *qat_lrs;               /* QAT rates to try from the same start (one without val) */
    int n_qat_lrs;
    double keep_p;                       /* a QAT epoch must beat the PTQ start on validation with
                                            McNemar p at most this (1: any gain) */
    int keep;                            /* tq_keep_kind, or -1 for the recipe's own */
    unsigned methods;                    /* a bit per tq_qat_method; 0: fixed scales alone */
    tq_reporter *rep;
    tq_snapshot float_weights;           /* owned: the float model, restored before each PTQ */
    tq_snapshot kept;                    /* owned: QAT's best epoch so far */
    tq_snapshot start;                   /* owned: the PTQ start of the current recipe */
    int32_t *ptq_pred;                   /* owned: test predictions of QAT's start */
    int32_t *qat_pred[TQ_QAT_METHODS];   /* owned: test predictions of each method's result */
    int32_t *val_start_pred, *val_pred;  /* owned: validation predictions of the start, an epoch */
    /* When set, called at each QAT run's PTQ start (epoch 0, st NULL) and after each of its
     * epochs, for the report's figures (the runs of tq_compare_left_method's method); val_acc
     * is NaN without a split. */
    void (*on_qat_epoch)(void *ctx, tq_model *m, const char *recipe, double lr, int64_t epoch,
                         const tq_epoch_stats *st, double val_acc);
    void *on_qat_ctx;
} tq_compare;

/* Copies the float model (its quantizers removed) and allocates the buffers. */
tq_status tq_compare_init(tq_compare *x, tq_error *err);
/* Frees the buffers and leaves the model as tq_compare_init found it, without quantizers. */
void tq_compare_free(tq_compare *x);
/* Puts the float model back (quantizers and input multipliers removed). */
void tq_compare_restore_float(tq_compare *x);
/* The QAT method whose result compare leaves in the model (and the report shows): fixed
 * scales when they ran, else learned ones. */
tq_qat_method tq_compare_left_method(const tq_compare *x);
/* One recipe: PTQ with each calibrator, then QAT from the best with each method (learned
 * scales first); the model is left with fixed-scale QAT's result, or learned-scale QAT's
 * without it. */
tq_status tq_compare_recipe(tq_compare *x, const char *name, const tq_calib_kind *calibs,
                            int n_calibs, tq_compare_row *out, tq_error *err);

#ifdef __cplusplus
}
#endif
#endif
