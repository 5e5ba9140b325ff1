/* Private to train/: the --report output of compare, ptq, qat and sensitivity (a folder
 * with index.html, one SVG a figure and report.json, the figures' data, which `tinyqat
 * report` redraws), and the figure families that turn a run into figures (train/fig_*.c). */
#ifndef TINYQAT_REPORT_OUT_H
#define TINYQAT_REPORT_OUT_H

#include "ptq.h"
#include "report.h"
#include "sensitivity.h"

/* Creates dir when missing and checks a file can be written in it: before any work. */
tq_status tq_report_check_dir(const char *dir, tq_error *err);
/* Writes dir/index.html, dir/ID.svg for every figure and dir/report.json (each atomically);
 * *skipped (may be NULL) gets the values that could not be drawn. */
tq_status tq_report_write(const tq_report *r, const char *dir, int64_t *skipped, tq_error *err);
/* The figures as JSON text (caller frees) and back; loading checks every field and names
 * the first that is wrong. */
char *tq_report_to_json(const tq_report *r, size_t *len);
tq_status tq_report_from_json(const char *text, size_t len, tq_report *r, tq_error *err);

/* ---- figure families (train/fig_*.c): each adds one figure (or two) to r */

/* Per-epoch figures of the runs of a command; NaN where one was not measured. */
#define TQ_CURVE_MAX_POINTS 128
#define TQ_MAX_CURVES 48
typedef struct tq_curve {
    char group[64]; /* its panel: "float", "w4a4 QAT" */
    char name[64];  /* the run in it: "float", "lr 0.0002" */
    int n;
    double epoch[TQ_CURVE_MAX_POINTS], loss[TQ_CURVE_MAX_POINTS], acc[TQ_CURVE_MAX_POINTS],
        val_acc[TQ_CURVE_MAX_POINTS];
} tq_curve;
typedef struct tq_curves {
    int n;
    tq_curve c[TQ_MAX_CURVES];
} tq_curves;
/* Adds one epoch to run (group, name), made on first use; points past the limits are dropped. */
void tq_curves_add(tq_curves *c, const char *group, const char *name, double epoch, double loss,
                   double acc, double val_acc);
/* 1. Loss and accuracy per epoch, a pair of panels per group; epoch 0 of QAT is its PTQ start. */
void tq_fig_training(tq_report *r, const tq_curves *c);

/* 2. Accuracy (fractions, NaN: not run) of each method (series) on each recipe (category). */
void tq_fig_accuracy(tq_report *r, const char *caption, const char *const *recipes, int n_recipes,
                     const char *const *methods, int n_methods, const double *acc);

/* 3. Per layer, the weight histogram (log counts) with the quantized values, the grid of the
 * largest amax and +-amax; after_qat names the float weights latent. */
void tq_fig_weights(tq_report *r, tq_model *m, bool after_qat);

/* 4 and 5. Per layer, the input activations' |x| histogram (log counts) with each
 * calibrator's amax and its MSE, and the error against the clipping threshold split into
 * clipping and rounding. Needs input quantizers calibrated with a histogram calibrator. */
void tq_fig_activations(tq_report *r, tq_model *m);

/* 6. Per layer: accuracy change from sensitivity rows (NULL: none), weight and input SQNR
 * (the model's quantizers), and parameter count. */
void tq_fig_layers(tq_report *r, tq_model *m, const tq_sens_row *rows, int n_rows);

/* Fractions of each layer's latent weights and inputs (one batch) outside its quantizer's
 * range, where the STE passes no gradient; per epoch of one QAT run. */
#define TQ_CLIP_MAX 64
typedef struct tq_clip_log {
    int n_layers, n_epochs;
    char names[TQ_CLIP_MAX][48];
    double epoch[TQ_CLIP_MAX], weights[TQ_CLIP_MAX][TQ_CLIP_MAX], inputs[TQ_CLIP_MAX][TQ_CLIP_MAX];
} tq_clip_log;
/* Measures m on the first up-to-256 images of d and adds them as `epoch`. */
tq_status tq_clip_log_add(tq_clip_log *log, tq_model *m, const tq_dataset *d, const float *mean,
                          const float *std, double epoch, tq_error *err);
/* 7. The forward staircase and the STE's backward mask of one input quantizer (through the
 * fake-quant op itself), and the clipped fractions per epoch when log is not NULL. */
void tq_fig_ste(tq_report *r, tq_model *m, const tq_clip_log *log);

/* 8. The representable values of every format m's quantizers use, on one number line. */
void tq_fig_formats(tq_report *r, tq_model *m);

/* 9. The confusion matrix of `before` and the change to `after` (n predictions each). */
void tq_fig_confusion(tq_report *r, const uint8_t *labels, const int32_t *before,
                      const int32_t *after, int64_t n, int classes, const char *before_name,
                      const char *after_name);

/* 10. Per output channel, the weights' range against the per-tensor range; with `before`
 * (weights before SmoothQuant or AWQ, named by algo), both. */
typedef struct tq_ranges {
    int n_layers;
    int n_ch[TQ_CLIP_MAX];
    double *absmax[TQ_CLIP_MAX];
} tq_ranges;
tq_status tq_ranges_take(tq_ranges *g, tq_model *m, tq_error *err);
void tq_ranges_free(tq_ranges *g);
void tq_fig_ranges(tq_report *r, tq_model *m, const tq_ranges *before, const char *algo);

/* ---- the commands' reports (train/report_cmds.c, train/report_compare.c) */

/* Two buffers of one predicted class per image of d (free both; on failure both NULL). */
tq_status tq_report_buffers(const tq_dataset *d, int32_t **a, int32_t **b, tq_error *err);
/* Accuracy of run's model on d, and each image's class into pred when not NULL. */
tq_status tq_report_accuracy(tq_run *run, const tq_dataset *d, int32_t *pred, double *acc,
                             tq_error *err);
/* Writes r to dir, prints where, and frees r. */
tq_status tq_report_finish(tq_report *r, const char *dir, tq_error *err);
/* The model's own figures (3-8 and 10), in the report's order, between the accuracy figure
 * and the confusion matrix: before/algo as tq_fig_ranges, log as tq_fig_ste, rows as
 * tq_fig_layers. Figures 4 and 5 need calibration histograms (recipe.keep_histograms). */
void tq_report_model(tq_report *r, tq_model *m, bool after_qat, const tq_clip_log *log,
                     const tq_sens_row *rows, int n_rows);
/* `ptq --report`: float against PTQ. */
tq_status tq_report_ptq(const char *dir, tq_run *run, const tq_recipe *recipe,
                        const tq_dataset *test, const int32_t *float_pred, const int32_t *pred,
                        double float_acc, double acc, const tq_ranges *before, tq_error *err);
/* `qat --report`: its epochs, its start against its result. */
tq_status tq_report_qat(const char *dir, tq_run *run, const tq_curves *curves,
                        const tq_clip_log *log, const tq_dataset *test, const int32_t *start_pred,
                        const int32_t *pred, double start_acc, double acc, tq_error *err);
/* `sensitivity --report`: the rows, and the recipe's PTQ figures (the model is left without
 * quantizers). */
tq_status tq_report_sensitivity(const char *dir, tq_run *run, const tq_recipe *recipe,
                                const tq_sens_ctx *c, const tq_sens_row *rows, int n_rows,
                                double float_acc, tq_error *err);

/* `compare --report`: what the experiment leaves behind as it runs, then the figures. */
#define TQ_COMPARE_REPORT_RUNS 64
typedef struct tq_compare_report {
    const char *dir;
    const char *recipe;          /* the recipe the per-layer figures show (NULL: the one
                                    whose best PTQ loses most against float) */
    const tq_dataset *probe;     /* images the clipped fractions are measured on */
    const float *mean, *std;     /* their normalisation */
    tq_curves *curves;           /* owned */
    int32_t *float_pred;         /* owned: the float model's test predictions (compare's own
                                    float accuracy fills it) */
    int n_runs;                  /* QAT runs: "recipe lr" and their clipped fractions */
    char run_names[TQ_COMPARE_REPORT_RUNS][128];
    tq_clip_log *clips[TQ_COMPARE_REPORT_RUNS];
    int n_recipes;
    tq_snapshot kept[16];        /* each recipe's QAT result, and its test predictions */
    int32_t *qat_pred[16];
} tq_compare_report;
tq_status tq_compare_report_init(tq_compare_report *cr, const char *dir, const char *recipe,
                                 const tq_dataset *probe, const float *mean, const float *std,
                                 const tq_dataset *test, tq_error *err);
/* tq_compare's on_qat_epoch: the curves and the clipped fractions. */
void tq_compare_report_epoch(void *ctx, tq_model *m, const char *recipe, double lr,
                             int64_t epoch, const tq_epoch_stats *st, double val_acc);
/* After each recipe, while the model holds its QAT result. */
tq_status tq_compare_report_recipe(tq_compare_report *cr, const tq_compare *x, tq_error *err);
/* The figures and the folder; the model is left as the float one, without quantizers. */
tq_status tq_compare_report_finish(tq_compare_report *cr, tq_compare *x, const tq_compare_row *rows,
                                   int n_rows, double float_acc, tq_error *err);
void tq_compare_report_free(tq_compare_report *cr);

#endif
