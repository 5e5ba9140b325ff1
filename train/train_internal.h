/* Private to train/: the calibration batch loop shared by the calibration code. */
#ifndef TINYQAT_TRAIN_INTERNAL_H
#define TINYQAT_TRAIN_INTERNAL_H

#include "ptq.h"

/* Called after each calibration forward; the tape still holds that forward's tensors (what
 * tq_model_qlayer_input returns), and more may be put on it. */
typedef tq_status (*tq_calib_step_fn)(void *ctx, tq_tape *tape, tq_error *err);

/* Runs up to `batches` batches of train (shuffled as seed orders epoch 0, normalised with
 * mean and std) forward through m in inference mode, recording nothing, and calls step
 * after each: the batches tq_calibrate draws with the same arguments. */
tq_status tq_calib_batches(tq_model *m, const tq_dataset *train, const float *mean,
                           const float *std, int batches, int32_t batch, uint64_t seed,
                           tq_calib_step_fn step, void *ctx, tq_error *err);

#endif
