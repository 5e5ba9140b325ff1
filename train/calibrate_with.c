/* Calibrators of your own (tq_calibrator): the calibration batches go forward with the input
 * quantizers passing values through, each layer's input is handed to the calibrator as its
 * quantizer would see it, and the amax the calibrator names is set. */
#include "train_internal.h"

#include <math.h>
#include <stdlib.h>

/* What the passes learn about one qlayer whose input quantizer is being calibrated. */
typedef struct custom_layer {
    bool calibrating;   /* its input quantizer was calibrating when tq_calibrate_with began */
    bool seen_negative; /* decides the auto-unsigned switch, as in tq_quantizer_finish_calibration */
    int64_t seen;       /* finite values observed */
    int64_t channels;   /* amax count: the channels of a per-channel spec, else 1; 0 before any */
} custom_layer;

typedef struct custom_pass {
    tq_model *m;
    const tq_calibrator *c;
    custom_layer *layers;
} custom_pass;

/* The number of amax values q takes for tensors shaped like x; -1 if its axis is not in x. */
static int64_t amax_count_for(const tq_quantizer *q, const tq_tensor *x)
{
    const tq_qspec *s = tq_quantizer_spec(q);
    if (s->block != TQ_BLOCK_CHANNEL) return 1;
    int axis = s->axis < 0 ? x->ndim + s->axis : s->axis;
    return axis >= 0 && axis < x->ndim ? x->shape[axis] : -1;
}

static tq_status observe_layer(custom_pass *p, int qi, tq_tape *tape, tq_error *err)
{
    custom_layer *cl = &p->layers[qi];
    tq_qlayer *l = tq_model_qlayer(p->m, qi);
    tq_tensor *x = tq_model_qlayer_input(p->m, qi);
    if (x && l->input_mul) x = tq_mul_channel(tape, x, l->input_mul); /* as the quantizer sees it */
    if (!x) return tq_fail(err, TQ_STATUS_ARG, "calibrate: %s: no input recorded", l->name);
    int64_t n = amax_count_for(l->input_q, x);
    if (n < 0 || (cl->channels && n != cl->channels))
        return tq_fail(err, TQ_STATUS_SHAPE, "calibrate: %s input: %lld channels, then %lld",
                       l->name, (long long)cl->channels, (long long)n);
    cl->channels = n;
    for (int64_t i = 0; i < x->numel; i++) {
        if (!isfinite(x->data[i])) continue;
        cl->seen++;
        cl->seen_negative |= x->data[i] < 0.0f;
    }
    tq_error e = {0};
    tq_status st = p->c->observe(p->c->ctx, qi, x, &e);
    if (st)
        return tq_fail(err, st, "calibrate: %s input: %s", l->name,
                       e.msg[0] ? e.msg : "the calibrator's observe failed");
    return TQ_STATUS_OK;
}

static tq_status observe_step(void *ctx, tq_tape *tape, tq_error *err)
{
    custom_pass *p = ctx;
    for (int qi = 0; qi < tq_model_qlayer_count(p->m); qi++)
        if (p->layers[qi].calibrating && observe_layer(p, qi, tape, err)) return err->status;
    return TQ_STATUS_OK;
}

/* The unsigned switch as the built-in calibrators make it, then the calibrator's amax. */
static tq_status finish_layer(custom_pass *p, int qi, tq_error *err)
{
    const custom_layer *cl = &p->layers[qi];
    tq_qlayer *l = tq_model_qlayer(p->m, qi);
    tq_quantizer *q = l->input_q;
    if (cl->seen == 0)
        return tq_fail(err, TQ_STATUS_ARG, "calibrate: %s input: no finite values observed",
                       l->name);
    /* Only intN formats with float scales switch (tq_quantizer_set_unsigned_chosen). */
    const tq_qspec *s = tq_quantizer_spec(q);
    bool go_unsigned = s->auto_unsigned && s->format.kind == TQ_FORMAT_INT &&
                       s->scale == TQ_SCALE_FLOAT && !cl->seen_negative;
    if (tq_quantizer_set_unsigned_chosen(q, go_unsigned, err)) return err->status;
    float *amax = calloc((size_t)cl->channels, sizeof *amax);
    if (!amax) return tq_fail(err, TQ_STATUS_NOMEM, "calibrate: out of memory");
    tq_error e = {0};
    tq_status st = p->c->amax(p->c->ctx, qi, q, amax, cl->channels, &e);
    if (st == TQ_STATUS_OK) st = tq_quantizer_set_amax(q, amax, cl->channels, &e);
    free(amax);
    if (st)
        return tq_fail(err, st, "calibrate: %s input: %s", l->name,
                       e.msg[0] ? e.msg : "the calibrator's amax failed");
    return TQ_STATUS_OK;
}

tq_status tq_calibrate_with(tq_model *m, const tq_calibrator *c, const tq_dataset *train,
                            const float *mean, const float *std, int batches, int32_t batch,
                            uint64_t seed, tq_error *err)
{
    if (!c || !c->observe || !c->amax)
        return tq_fail(err, TQ_STATUS_ARG, "calibrate: a calibrator needs observe and amax");
    int n = tq_model_qlayer_count(m);
    custom_pass p = {.m = m, .c = c, .layers = calloc((size_t)n + 1, sizeof *p.layers)};
    if (!p.layers) return tq_fail(err, TQ_STATUS_NOMEM, "calibrate: out of memory");
    /* Off while the batches run: values pass through, and the spec's own calibrator, which
     * this one replaces, observes nothing. */
    for (int qi = 0; qi < n; qi++) {
        tq_quantizer *q = tq_model_qlayer(m, qi)->input_q;
        p.layers[qi].calibrating = q && tq_quantizer_state(q) == TQ_QSTATE_CALIBRATING;
        if (p.layers[qi].calibrating) tq_quantizer_set_state(q, TQ_QSTATE_OFF);
    }
    tq_status st = tq_calib_batches(m, train, mean, std, batches, batch, seed, observe_step, &p, err);
    for (int qi = 0; st == TQ_STATUS_OK && qi < n; qi++)
        if (p.layers[qi].calibrating) st = finish_layer(&p, qi, err);
    /* All quantizing, or (a failure) all calibrating again, as they were. */
    for (int qi = 0; qi < n; qi++)
        if (p.layers[qi].calibrating)
            tq_quantizer_set_state(tq_model_qlayer(m, qi)->input_q,
                                   st ? TQ_QSTATE_CALIBRATING : TQ_QSTATE_QUANTIZING);
    free(p.layers);
    return st;
}
