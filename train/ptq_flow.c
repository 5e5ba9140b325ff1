/* The whole PTQ flow of a recipe: batch-norm folding, SmoothQuant or AWQ on statistics of
 * calibration batches, quantizers attached, AWQ clipping or GPTQ, activation calibration;
 * and the loop over calibration batches they share. */
#include "ptq.h"

#include <stdlib.h>
#include <string.h>

tq_status tq_for_calib_batches(const tq_dataset *train, const float *mean, const float *std,
                               int batches, int32_t batch, uint64_t seed, tq_batch_fn fn,
                               void *ctx, tq_error *err)
{
    tq_loader_config cfg = {.batch = batch, .shuffle = true, .seed = seed};
    memcpy(cfg.mean, mean, sizeof cfg.mean);
    memcpy(cfg.std, std, sizeof cfg.std);
    tq_loader *loader = tq_loader_new(train, &cfg, err);
    if (!loader) return err->status;
    tq_loader_start_epoch(loader, 0);
    float *x = malloc((size_t)batch * train->c * train->h * train->w * sizeof(float));
    int32_t *labels = malloc((size_t)batch * sizeof(int32_t));
    tq_status st = TQ_STATUS_OK;
    if (!x || !labels) st = tq_fail(err, TQ_STATUS_NOMEM, "calibration batches: out of memory");
    int64_t total = tq_loader_batch_count(loader);
    for (int64_t i = 0; st == TQ_STATUS_OK && i < batches && i < total; i++) {
        int32_t n = tq_loader_fill(loader, i, x, labels);
        tq_tensor view = {.data = x};
        tq_shape_set(&view, 4, (int32_t[]){n, train->c, train->h, train->w});
        st = fn(&view, ctx, err);
    }
    free(x);
    free(labels);
    tq_loader_free(loader);
    return st;
}

typedef struct stats_ctx {
    tq_model *m;
    tq_chan_stats *s;
} stats_ctx;

static tq_status observe_batch(tq_tensor *x, void *ctx, tq_error *err)
{
    stats_ctx *c = ctx;
    return tq_chan_stats_observe(c->m, c->s, x, err);
}

/* Per-channel statistics over up to `batches` shuffled training batches (the same batches
 * tq_calibrate draws with this seed). */
static tq_chan_stats *collect_stats(tq_model *m, const tq_dataset *train, const float *mean,
                                    const float *std, int batches, int32_t batch, uint64_t seed,
                                    tq_error *err)
{
    stats_ctx c = {m, tq_chan_stats_new(m, err)};
    if (!c.s) return NULL;
    if (tq_for_calib_batches(train, mean, std, batches, batch, seed, observe_batch, &c, err)) {
        tq_chan_stats_free(c.s, tq_model_qlayer_count(m));
        return NULL;
    }
    return c.s;
}

tq_status tq_ptq_run(tq_model *m, const tq_recipe *r, int calib, const tq_dataset *train,
                     const float *mean, const float *std, int batches, int32_t batch,
                     uint64_t seed, tq_error *err)
{
    tq_detach_quantizers(m);
    if (r->fold_bn && tq_model_fold_batchnorms(m, err) < 0) return err->status;
    tq_chan_stats *s = NULL;
    if (r->algo == TQ_ALGO_SMOOTHQUANT || r->algo == TQ_ALGO_AWQ) {
        s = collect_stats(m, train, mean, std, batches, batch, seed, err);
        if (!s) return err->status;
    }
    tq_status st = TQ_STATUS_OK;
    if (r->algo == TQ_ALGO_SMOOTHQUANT) st = tq_smoothquant_model(m, s, r->alpha, err);
    else if (r->algo == TQ_ALGO_AWQ) st = tq_awq_model(m, s, &r->weights, NULL, err);
    if (st == TQ_STATUS_OK) st = tq_attach_recipe(m, r, calib, err);
    if (st == TQ_STATUS_OK && r->algo == TQ_ALGO_AWQ && r->awq_clip)
        st = tq_awq_clip_model(m, s, err);
    if (st == TQ_STATUS_OK && r->algo == TQ_ALGO_GPTQ)
        st = tq_gptq_model(m, &r->gptq, train, mean, std, batches, batch, seed, err);
    if (st == TQ_STATUS_OK)
        st = tq_calibrate(m, train, mean, std, batches, batch, seed, err);
    tq_chan_stats_free(s, tq_model_qlayer_count(m));
    return st;
}
