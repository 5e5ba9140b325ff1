/* The quantizer object: spec, state, amax array, calibration observers and the
 * auto-unsigned decision; tq_quantize dispatches on the state. */
#include "quant_internal.h"

#include <stdio.h>
#include <stdlib.h>

static tq_status check_spec(const tq_qspec *s, tq_error *err)
{
    const tq_format f = s->format;
    if ((f.kind == TQ_FORMAT_INT || f.kind == TQ_FORMAT_UINT) && (f.bits < 2 || f.bits > 8))
        return tq_fail(err, TQ_STATUS_ARG, "quantizer: %d-bit integers (expected 2..8)", f.bits);
    if ((unsigned)f.kind > TQ_FORMAT_E2M1 || (unsigned)s->block > TQ_BLOCK_BLOCK ||
        (unsigned)s->scale > TQ_SCALE_NVFP4 || (unsigned)s->calib > TQ_CALIB_ENTROPY ||
        (unsigned)s->ste > TQ_STE_PASSTHROUGH)
        return tq_fail(err, TQ_STATUS_ARG, "quantizer: spec holds an unknown enum value");
    if (s->block != TQ_BLOCK_TENSOR && (s->axis < -1 || s->axis >= TQ_MAX_DIMS))
        return tq_fail(err, TQ_STATUS_ARG, "quantizer: axis %d (expected -1..%d)", s->axis,
                       TQ_MAX_DIMS - 1);
    if (s->block == TQ_BLOCK_BLOCK && s->block_size < 1)
        return tq_fail(err, TQ_STATUS_ARG, "quantizer: block size %d (expected >= 1)",
                       s->block_size);
    if (s->calib == TQ_CALIB_PERCENTILE && !(s->percentile > 0.0f && s->percentile <= 100.0f))
        return tq_fail(err, TQ_STATUS_ARG, "quantizer: percentile %g (expected (0,100])",
                       (double)s->percentile);
    if (s->scale != TQ_SCALE_FLOAT && s->block != TQ_BLOCK_BLOCK)
        return tq_fail(err, TQ_STATUS_ARG, "quantizer: MX and NVFP4 scales need per-block blocks");
    if (s->scale == TQ_SCALE_NVFP4 && f.kind != TQ_FORMAT_E2M1)
        return tq_fail(err, TQ_STATUS_ARG, "quantizer: NVFP4 scales need e2m1 elements");
    if (s->scale == TQ_SCALE_E8M0 && f.kind == TQ_FORMAT_UINT)
        return tq_fail(err, TQ_STATUS_ARG, "quantizer: MX scales need signed elements");
    if (s->learn_scale) return tq_qspec_check_learnable(s, err);
    return TQ_STATUS_OK;
}

tq_quantizer *tq_quantizer_new(const tq_qspec *spec, tq_error *err)
{
    if (!spec) {
        tq_fail(err, TQ_STATUS_ARG, "quantizer: NULL spec");
        return NULL;
    }
    if (check_spec(spec, err) != TQ_STATUS_OK) return NULL;
    tq_quantizer *q = calloc(1, sizeof *q);
    if (!q) {
        tq_fail(err, TQ_STATUS_NOMEM, "quantizer: out of memory");
        return NULL;
    }
    q->spec = *spec;
    q->format = spec->format;
    q->state = TQ_QSTATE_OFF;
    return q;
}

static void free_observers(tq_quantizer *q)
{
    for (int64_t i = 0; i < q->n_obs; i++) tq_observer_free(&q->obs[i]);
    free(q->obs);
    q->obs = NULL;
    q->n_obs = 0;
    q->seen_negative = false;
}

void tq_quantizer_reset(tq_quantizer *q)
{
    free_observers(q);
    free(q->amax);
    free(q->amax_grad);
    q->amax = q->amax_grad = NULL;
    q->amax_count = 0;
    q->from_weights = false;
    q->unsigned_chosen = false;
    q->format = q->spec.format;
}

void tq_quantizer_free(tq_quantizer *q)
{
    if (!q) return;
    tq_quantizer_reset(q);
    free(q);
}

const tq_qspec *tq_quantizer_spec(const tq_quantizer *q) { return &q->spec; }
tq_format tq_quantizer_format(const tq_quantizer *q) { return q->format; }
void tq_quantizer_set_state(tq_quantizer *q, tq_qstate state) { q->state = state; }
tq_qstate tq_quantizer_state(const tq_quantizer *q) { return q->state; }
int64_t tq_quantizer_amax_count(const tq_quantizer *q) { return q->amax_count; }
const float *tq_quantizer_amax(const tq_quantizer *q) { return q->amax; }
bool tq_quantizer_unsigned_chosen(const tq_quantizer *q) { return q->unsigned_chosen; }
void tq_quantizer_mark_from_weights(tq_quantizer *q) { q->from_weights = true; }

const char *tq_qstate_name(tq_qstate state)
{
    switch (state) {
    case TQ_QSTATE_OFF: return "off";
    case TQ_QSTATE_CALIBRATING: return "calibrating";
    case TQ_QSTATE_QUANTIZING: return "quantizing";
    }
    return "unknown";
}

static const char *spec_str(const tq_quantizer *q, char *buf, size_t len)
{
    tq_qspec_format(&q->spec, buf, len);
    return buf;
}

tq_status tq_quantizer_set_amax(tq_quantizer *q, const float *amax, int64_t n, tq_error *err)
{
    char s[128];
    if (n < 1 || !amax)
        return tq_fail(err, TQ_STATUS_ARG, "quantizer %s: %lld amax values (expected >= 1)",
                       spec_str(q, s, sizeof s), (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(amax[i]) || amax[i] < 0.0f)
            return tq_fail(err, TQ_STATUS_NUMERIC,
                           "quantizer %s: amax[%lld] = %g (expected finite and >= 0)",
                           spec_str(q, s, sizeof s), (long long)i, (double)amax[i]);
    if (n == q->amax_count) { /* in place: restoring a snapshot allocates nothing */
        memmove(q->amax, amax, (size_t)n * sizeof *amax);
        return TQ_STATUS_OK;
    }
    float *copy = malloc((size_t)n * sizeof *copy);
    float *grad = q->spec.learn_scale ? calloc((size_t)n, sizeof *grad) : NULL;
    if (!copy || (q->spec.learn_scale && !grad)) {
        free(copy);
        free(grad);
        return tq_fail(err, TQ_STATUS_NOMEM, "quantizer: out of memory for amax");
    }
    memcpy(copy, amax, (size_t)n * sizeof *copy);
    free(q->amax);
    free(q->amax_grad);
    q->amax = copy;
    q->amax_grad = grad;
    q->amax_count = n;
    return TQ_STATUS_OK;
}

tq_status tq_qspec_check_learnable(const tq_qspec *s, tq_error *err)
{
    if (tq_qspec_learnable(s)) return TQ_STATUS_OK;
    char spec[128];
    tq_qspec_format(s, spec, sizeof spec);
    return tq_fail(err, TQ_STATUS_ARG, "quantizer %s: cannot learn its scales (scale=learn works with "
                   TQ_LEARN_SCALE_ACCEPTED ")", spec);
}

tq_status tq_quantizer_set_learn_scale(tq_quantizer *q, bool on, tq_error *err)
{
    if (on == q->spec.learn_scale) return TQ_STATUS_OK;
    tq_status st = on ? tq_qspec_check_learnable(&q->spec, err) : TQ_STATUS_OK;
    if (st) return st;
    float *grad = NULL;
    if (on && q->amax_count > 0 && !(grad = calloc((size_t)q->amax_count, sizeof *grad)))
        return tq_fail(err, TQ_STATUS_NOMEM, "quantizer: out of memory for amax gradients");
    free(q->amax_grad);
    q->amax_grad = grad;
    q->spec.learn_scale = on;
    return TQ_STATUS_OK;
}

bool tq_quantizer_learns_scale(const tq_quantizer *q) { return q->spec.learn_scale; }
float *tq_quantizer_amax_grad(tq_quantizer *q) { return q->amax_grad; }

void tq_quantizer_set_learned_amax(tq_quantizer *q, const float *amax)
{
    for (int64_t j = 0; j < q->amax_count; j++) {
        float v = amax[j];
        if (q->amax[j] == 0.0f || !isfinite(v)) continue;
        q->amax[j] = v > TQ_LEARNED_AMAX_FLOOR ? v : TQ_LEARNED_AMAX_FLOOR;
    }
}

static bool can_go_unsigned(const tq_qspec *s)
{
    return s->format.kind == TQ_FORMAT_INT && s->scale == TQ_SCALE_FLOAT;
}

tq_status tq_quantizer_set_unsigned_chosen(tq_quantizer *q, bool on, tq_error *err)
{
    char s[128];
    if (on && !can_go_unsigned(&q->spec))
        return tq_fail(err, TQ_STATUS_ARG, "quantizer %s: only intN formats can switch to uintN",
                       spec_str(q, s, sizeof s));
    q->unsigned_chosen = on;
    q->format = q->spec.format;
    if (on) q->format = (tq_format){TQ_FORMAT_UINT, q->spec.format.bits, false};
    return TQ_STATUS_OK;
}

void tq_quantizer_keep_histogram(tq_quantizer *q) { q->keep_hist = true; }

/* (Re)creates n observers; histograms only when the calibrator needs one (or figures do). */
static tq_status make_observers(tq_quantizer *q, int64_t n, tq_error *err)
{
    free_observers(q);
    q->obs = calloc((size_t)n, sizeof *q->obs);
    if (!q->obs) return tq_fail(err, TQ_STATUS_NOMEM, "calibrator: out of memory");
    q->n_obs = n;
    for (int64_t i = 0; i < n; i++)
        if (tq_observer_init(&q->obs[i], q->spec.calib != TQ_CALIB_MAX || q->keep_hist, err) !=
            TQ_STATUS_OK)
            return err->status;
    return TQ_STATUS_OK;
}

/* Feeds x to the observers: one per channel for per-channel specs, else one for all. */
static tq_status observe(tq_quantizer *q, const tq_tensor *x, tq_error *err)
{
    char s[128];
    tq_layout l;
    if (!tq_layout_of(&q->spec, x, &l, spec_str(q, s, sizeof s), err)) return err->status;
    int64_t n = q->spec.block == TQ_BLOCK_CHANNEL ? l.n : 1;
    if (q->n_obs == 0 && make_observers(q, n, err) != TQ_STATUS_OK) return err->status;
    if (q->n_obs != n) {
        char sh[64];
        return tq_fail(err, TQ_STATUS_SHAPE,
                       "quantizer %s: calibrating %lld channels, got a tensor of shape %s", s,
                       (long long)q->n_obs, tq_shape_str(x, sh, sizeof sh));
    }
    if (n == 1) {
        tq_observer_add(&q->obs[0], x->data, 1, x->numel, x->numel, &q->seen_negative);
        return TQ_STATUS_OK;
    }
    for (int64_t c = 0; c < n; c++)
        tq_observer_add(&q->obs[c], x->data + c * l.inner, l.outer, l.inner, l.n * l.inner,
                        &q->seen_negative);
    return TQ_STATUS_OK;
}

tq_status tq_quantizer_calibrate_weight(tq_quantizer *q, const tq_tensor *w, tq_error *err)
{
    char s[128];
    if (!q || !w) return tq_fail(err, TQ_STATUS_ARG, "calibrate_weight: NULL argument");
    tq_layout l;
    if (!tq_layout_of(&q->spec, w, &l, spec_str(q, s, sizeof s), err)) return err->status;
    float *amax = malloc((size_t)l.count * sizeof *amax);
    if (!amax) return tq_fail(err, TQ_STATUS_NOMEM, "quantizer %s: out of memory", s);
    tq_status st = TQ_STATUS_OK;
    if (q->spec.calib == TQ_CALIB_MAX || q->spec.block == TQ_BLOCK_BLOCK) {
        tq_layout_block_absmax(&l, w->data, amax);
    } else {
        st = observe(q, w, err);
        for (int64_t c = 0; st == TQ_STATUS_OK && c < q->n_obs; c++)
            amax[c] = tq_observer_amax(&q->obs[c], &q->spec, q->spec.format);
        free_observers(q);
    }
    if (st == TQ_STATUS_OK) st = tq_quantizer_set_amax(q, amax, l.count, err);
    free(amax);
    if (st != TQ_STATUS_OK) return st;
    q->from_weights = true;
    return tq_quantizer_set_unsigned_chosen(q, false, err);
}

tq_status tq_quantizer_finish_calibration(tq_quantizer *q, tq_error *err)
{
    char s[128];
    if (q->from_weights) return TQ_STATUS_OK;
    int64_t seen = 0;
    for (int64_t c = 0; c < q->n_obs; c++) seen += q->obs[c].count;
    if (seen == 0)
        return tq_fail(err, TQ_STATUS_ARG,
                       "quantizer %s: no finite values observed during calibration",
                       spec_str(q, s, sizeof s));
    bool go_unsigned = q->spec.auto_unsigned && can_go_unsigned(&q->spec) && !q->seen_negative;
    if (tq_quantizer_set_unsigned_chosen(q, go_unsigned, err) != TQ_STATUS_OK) return err->status;
    float *amax = malloc((size_t)q->n_obs * sizeof *amax);
    if (!amax) return tq_fail(err, TQ_STATUS_NOMEM, "quantizer: out of memory for amax");
    for (int64_t c = 0; c < q->n_obs; c++)
        amax[c] = tq_observer_amax(&q->obs[c], &q->spec, q->format);
    tq_status st = tq_quantizer_set_amax(q, amax, q->n_obs, err);
    free(amax);
    return st;
}

tq_tensor *tq_quantize(tq_tape *t, tq_tensor *x, tq_quantizer *q)
{
    if (!x) {
        if (tq_tape_error(t)->status == TQ_STATUS_OK)
            tq_tape_fail(t, TQ_STATUS_ARG, "quantize: input is NULL");
        return NULL;
    }
    if (!q || q->state == TQ_QSTATE_OFF) return x;
    if (q->state == TQ_QSTATE_QUANTIZING) return tq_fake_quant_op(t, x, q);
    if (q->from_weights) return x;
    tq_error e = {0};
    if (observe(q, x, &e) != TQ_STATUS_OK) return tq_tape_fail(t, e.status, "%s", e.msg);
    return x;
}
