/* The calibration batch loop: shuffled training batches forward through the model without a
 * tape recording, a callback after each. */
#include "train_internal.h"

#include <stdlib.h>
#include <string.h>

tq_status tq_calib_batches(tq_model *m, const tq_dataset *train, const float *mean,
                           const float *std, int batches, int32_t batch, uint64_t seed,
                           tq_calib_step_fn step, void *ctx, tq_error *err)
{
    tq_loader_config cfg = {.batch = batch, .shuffle = true, .seed = seed};
    memcpy(cfg.mean, mean, sizeof cfg.mean);
    memcpy(cfg.std, std, sizeof cfg.std);
    tq_loader *loader = tq_loader_new(train, &cfg, err);
    if (!loader) return err->status;
    tq_loader_start_epoch(loader, 0);
    tq_tape *tape = tq_tape_new();
    float *x = malloc((size_t)batch * train->c * train->h * train->w * sizeof(float));
    int32_t *labels = malloc((size_t)batch * sizeof(int32_t));
    tq_status st = TQ_STATUS_OK;
    if (!tape || !x || !labels) st = tq_fail(err, TQ_STATUS_NOMEM, "calibrate: out of memory");
    int64_t total = tq_loader_batch_count(loader);
    for (int64_t i = 0; st == TQ_STATUS_OK && i < batches && i < total; i++) {
        int32_t n = tq_loader_fill(loader, i, x, labels);
        tq_tensor view = {.data = x};
        tq_shape_set(&view, 4, (int32_t[]){n, train->c, train->h, train->w});
        tq_tape_reset(tape);
        tq_tape_set_recording(tape, false);
        tq_tape_set_training(tape, false);
        if (!tq_model_forward(m, tape, &view, NULL))
            st = tq_fail(err, tq_tape_error(tape)->status, "calibrate: %s", tq_tape_error(tape)->msg);
        else
            st = step(ctx, tape, err);
    }
    free(x);
    free(labels);
    tq_tape_free(tape);
    tq_loader_free(loader);
    return st;
}
