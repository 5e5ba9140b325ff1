/* Private to cli/: `tinyqat eval --engine int`, the integer engine on a checkpoint, and its
 * comparison with fake quant on the same images. */
#ifndef TINYQAT_EVAL_INT_H
#define TINYQAT_EVAL_INT_H

#include "cli.h"
#include "engine.h"

/* What the integer engine and fake quant give on the same images. */
typedef struct tq_int_compare {
    int64_t images;
    int64_t correct_int, correct_fq;
    double loss_int;         /* the engine's summed cross-entropy */
    int64_t differ;          /* images whose predicted classes differ */
    double max_logit_diff;
    int64_t codes;           /* activation codes compared (inputs of every Linear/Conv2d) */
    int64_t codes_one_step;  /* differing by one step: requantization rounding */
    /* differing by more where every earlier layer's codes of the image agreed: a bug */
    int64_t codes_more;
    /* differing by more after an earlier difference in the image: one step upstream can move
     * a code downstream by several where the next scale is fine against the weights */
    int64_t codes_propagated;
} tq_int_compare;

/* -log softmax(z)[label] over k logits, in double. */
double tq_cross_entropy_of(const float *z, int32_t k, int32_t label);

/* The rest of `eval` once --engine int is given (a is eval's parsed options). */
int tq_eval_int(const tq_cli_cmd *cmd, const tq_cli_args *a);

/* Runs engine e and model m (fake quant) on every image of d and counts the differences. */
tq_status tq_int_compare_run(tq_engine *e, tq_model *m, const tq_dataset *d, const float *mean,
                             const float *std, int32_t batch, tq_int_compare *out,
                             tq_error *err);

#endif
