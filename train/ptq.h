/* Private to train/: recipes, post-training quantization and the comparison experiment. */
#ifndef TINYQAT_PTQ_H
#define TINYQAT_PTQ_H

#include "train.h"

/* What happens to the first and last layers, which are the most sensitive. */
typedef enum tq_keep_kind { TQ_KEEP_NONE, TQ_KEEP_FLOAT, TQ_KEEP_INT8 } tq_keep_kind;

typedef struct tq_recipe {
    char name[96];
    bool has_weights, has_acts;
    tq_qspec weights, acts;
    tq_keep_kind keep;
} tq_recipe;

/* A named recipe, optionally with its weight or activation spec replaced, or (name NULL)
 * a custom one from the two spec strings ("" or "float" = leave in float). */
tq_status tq_recipe_make(const char *name, const char *weights, const char *acts,
                         tq_recipe *out, tq_error *err);
const char *tq_recipe_names(void);
void tq_recipe_list(FILE *out);
bool tq_keep_parse(const char *s, tq_keep_kind *out);

#endif

/* Puts the recipe's quantizers on every Linear and Conv2d of m (replacing any there):
 * weight quantizers take amax from the weights and start quantizing; activation quantizers
 * start calibrating. calib overrides the activation spec's calibrator when >= 0. */
tq_status tq_attach_recipe(tq_model *m, const tq_recipe *r, int calib, tq_error *err);
/* Runs up to `batches` shuffled training batches forward without a tape, lets every
 * calibrating quantizer fix its amax, and switches them to quantizing. */
tq_status tq_calibrate(tq_model *m, const tq_dataset *train, const float *mean,
                       const float *std, int batches, int32_t batch, uint64_t seed,
                       tq_error *err);
/* Removes every quantizer (back to the float model). */
void tq_detach_quantizers(tq_model *m);
/* "max", "percentile", "mse", "entropy". */
bool tq_calib_parse(const char *s, tq_calib_kind *out);
const char *tq_calib_name(tq_calib_kind k);
