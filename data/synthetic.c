/* A generated data set for tests and demos that must not depend on files: grey images whose
 * class is a fixed random +-1 pattern, blurred by noise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

tq_status tq_dataset_synthetic(tq_dataset *out, const tq_synthetic_config *cfg, tq_error *err)
{
    memset(out, 0, sizeof *out);
    int32_t side = cfg->side, classes = cfg->classes, pixels = side * side;
    if (classes < 2 || classes > 256)
        return tq_fail(err, TQ_STATUS_ARG, "synthetic: %d classes (expected 2 to 256)", classes);
    if (tq_dataset_alloc(out, cfg->n, 1, side, side, classes, "synthetic", "generated", err))
        return err->status;
    float *patterns = malloc((size_t)classes * (size_t)pixels * sizeof *patterns);
    if (!patterns) {
        tq_dataset_free(out);
        return tq_fail(err, TQ_STATUS_NOMEM, "synthetic: out of memory");
    }
    /* the class patterns are the same for every seed, so that train and test sets agree */
    tq_rng rng;
    tq_rng_seed(&rng, 99);
    for (int64_t i = 0; i < (int64_t)classes * pixels; i++)
        patterns[i] = tq_rng_uniform(&rng) < 0.5f ? -1.0f : 1.0f;
    tq_rng_seed(&rng, cfg->seed);
    for (int64_t i = 0; i < cfg->n; i++) {
        int32_t y = (int32_t)tq_rng_below(&rng, (uint64_t)classes);
        out->labels[i] = (uint8_t)y;
        for (int32_t p = 0; p < pixels; p++) {
            float v = 128.0f + cfg->signal * patterns[(int64_t)y * pixels + p] +
                      cfg->noise * tq_rng_normal(&rng);
            out->images[i * pixels + p] = (uint8_t)fminf(fmaxf(v, 0.0f), 255.0f);
        }
    }
    free(patterns);
    snprintf(out->name, sizeof out->name, "generated");
    return TQ_STATUS_OK;
}
