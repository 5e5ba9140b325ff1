/* The fake-quant op: quantize-dequantize with fixed amax in forward, straight-through
 * estimator with clipping (or plain pass-through) in backward. */
#include "quant_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* Elements below which the op runs on one thread. It streams memory at a few cycles per
 * element (a millisecond or two for a million), and on a shared machine every fork-join can
 * wait a whole time slice for a preempted thread: with two threads under load, parallel
 * fake quant on ResNet-20's activations (2^18..2^20 elements) made a QAT step 1.4x a float
 * one, serial 1.02-1.10x (bench/bench_qat.c). Only tensors far larger go parallel. */
#define PARALLEL_MIN (1 << 22)

/* ---- forward kernels over one run; scale 0 (amax 0) gives 0, NaN stays NaN */

static void zero_run(const float *x, float *y, int64_t len)
{
    for (int64_t i = 0; i < len; i++) y[i] = isnan(x[i]) ? x[i] : 0.0f;
}

static void int_run(const float *x, float *y, int64_t len, float s, float lo, float hi)
{
    if (!(s > 0.0f)) {
        zero_run(x, y, len);
        return;
    }
    for (int64_t i = 0; i < len; i++) {
        float v = rintf(x[i] / s);
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        y[i] = v * s;
    }
}

static void fp_run(const float *x, float *y, int64_t len, float s, tq_fp_params p)
{
    if (!(s > 0.0f)) {
        zero_run(x, y, len);
        return;
    }
    for (int64_t i = 0; i < len; i++) y[i] = tq_fp_round(x[i] / s, p) * s;
}

static void vec_run(tq_format f, const float *x, float *y, int64_t len, const float *s)
{
    for (int64_t i = 0; i < len; i++) {
        if (!(s[i] > 0.0f)) y[i] = isnan(x[i]) ? x[i] : 0.0f;
        else y[i] = tq_format_round(f, x[i] / s[i]) * s[i];
    }
}

void tq_fake_quant_forward(tq_format f, const tq_layout *l, const float *scale, const float *x,
                           float *y)
{
    int64_t spans = tq_layout_span_count(l);
    int64_t numel = l->outer * l->n * l->inner;
    bool fp = tq_format_is_float(f);
    tq_fp_params p = fp ? tq_fp_params_of(f) : (tq_fp_params){0, 0, 0.0f};
    float lo = tq_format_min(f), hi = tq_format_max(f);
#pragma omp parallel for schedule(static) if (numel >= PARALLEL_MIN)
    for (int64_t k = 0; k < spans; k++) {
        tq_span s = tq_layout_span(l, k);
        if (s.vec) vec_run(f, x + s.start, y + s.start, s.len, scale + s.sidx);
        else if (fp) fp_run(x + s.start, y + s.start, s.len, scale[s.sidx], p);
        else int_run(x + s.start, y + s.start, s.len, scale[s.sidx], lo, hi);
    }
}

tq_status tq_quant_prepare(const tq_quantizer *q, const tq_tensor *x, const tq_layout *l,
                           float *amax_out, float *scale_out, tq_error *err)
{
    char spec[128]; /* formatted only on the error paths: this runs on every step */
    if (q->amax_count == 0) {
        tq_qspec_format(&q->spec, spec, sizeof spec);
        return tq_fail(err, TQ_STATUS_ARG, "quantizer %s: no amax yet (calibrate it first)", spec);
    }
    float global = 0.0f;
    /* an activation's single amax clips the block amax of every tensor, even one that holds
     * a single block: an image is quantized alike whatever the batch it comes in */
    bool clip = q->spec.block == TQ_BLOCK_BLOCK && q->amax_count == 1 && !q->from_weights;
    if (!clip && q->amax_count == l->count) {
        memcpy(amax_out, q->amax, (size_t)l->count * sizeof *amax_out);
        for (int64_t j = 0; j < l->count; j++) global = fmaxf(global, amax_out[j]);
    } else if (clip) {
        global = q->amax[0];
        tq_layout_block_absmax(l, x->data, amax_out);
        for (int64_t j = 0; j < l->count; j++) amax_out[j] = fminf(amax_out[j], global);
    } else {
        char sh[64];
        tq_qspec_format(&q->spec, spec, sizeof spec);
        return tq_fail(err, TQ_STATUS_SHAPE,
                       "quantizer %s: holds %lld amax values, a tensor of shape %s needs %lld",
                       spec, (long long)q->amax_count, tq_shape_str(x, sh, sizeof sh),
                       (long long)l->count);
    }
    tq_scales_from_amax(&q->spec, q->format, amax_out, l->count, global, scale_out);
    return TQ_STATUS_OK;
}

/* ---- the op on the tape */

typedef struct fq_saved {
    tq_layout layout;
    const float *amax; /* l.count values, on the arena */
    bool is_uint;
} fq_saved;

/* ---- backward kernels: gx += g where x lies inside the clipping range. Branch-free and
 * on restrict pointers so that they vectorise: half the inputs after a ReLU sit at the
 * boundary, so a branch per element mispredicts. */

static void pass_run(const float *restrict x, const float *restrict g, float *restrict gx,
                     int64_t len, float lo, float hi)
{
    for (int64_t i = 0; i < len; i++) {
        float gi = g[i]; /* loaded unconditionally: a conditional load blocks if-conversion */
        gx[i] += (x[i] >= lo) & (x[i] <= hi) ? gi : 0.0f;
    }
}

static void pass_vec(const float *restrict x, const float *restrict g, float *restrict gx,
                     int64_t len, const float *restrict a, bool is_uint)
{
    for (int64_t i = 0; i < len; i++) {
        float lo = is_uint ? 0.0f : -a[i], gi = g[i];
        gx[i] += (x[i] >= lo) & (x[i] <= a[i]) ? gi : 0.0f;
    }
}

static void fake_quant_backward(tq_node *n)
{
    const float *g = n->out->grad, *x = n->in[0]->data;
    float *gx = n->in[0]->grad;
    const fq_saved *sv = n->saved;
    if (!sv) { /* pass-through */
        for (int64_t i = 0; i < n->out->numel; i++) gx[i] += g[i];
        return;
    }
    const tq_layout *l = &sv->layout;
    int64_t spans = tq_layout_span_count(l);
    bool is_uint = sv->is_uint;
#pragma omp parallel for schedule(static) if (n->out->numel >= PARALLEL_MIN)
    for (int64_t k = 0; k < spans; k++) {
        tq_span s = tq_layout_span(l, k);
        const float *xs = x + s.start, *gs = g + s.start;
        float *gxs = gx + s.start;
        if (s.vec) {
            pass_vec(xs, gs, gxs, s.len, sv->amax + s.sidx, is_uint);
        } else {
            float a = sv->amax[s.sidx];
            pass_run(xs, gs, gxs, s.len, is_uint ? 0.0f : -a, a);
        }
    }
}

static const tq_op_def op_fake_quant = {.name = "fake_quant", .backward = fake_quant_backward};

static tq_tensor *fail_from(tq_tape *t, const tq_error *e)
{
    return tq_tape_fail(t, e->status, "%s", e->msg);
}

tq_tensor *tq_fake_quant_op(tq_tape *t, tq_tensor *x, tq_quantizer *q)
{
    if (q->spec.learn_scale) return tq_lsq_op(t, x, q);
    tq_error e = {0};
    tq_layout l;
    if (!tq_layout_of(&q->spec, x, &l, "quantize", &e)) return fail_from(t, &e);
    float *amax = tq_tape_alloc(t, (size_t)l.count * sizeof(float));
    float *scale = tq_tape_alloc(t, (size_t)l.count * sizeof(float));
    if (!amax || !scale) return NULL;
    if (tq_quant_prepare(q, x, &l, amax, scale, &e) != TQ_STATUS_OK) return fail_from(t, &e);
    tq_tensor *y = tq_tape_tensor(t, x->ndim, x->shape, tq_tape_needs_grad(t, &x, 1));
    if (!y) return NULL;
    tq_fake_quant_forward(q->format, &l, scale, x->data, y->data);
    tq_node *n = tq_tape_record(t, &op_fake_quant, y, &x, 1);
    if (n && q->spec.ste == TQ_STE_CLIP) {
        fq_saved *sv = tq_tape_alloc(t, sizeof *sv);
        if (!sv) return NULL;
        *sv = (fq_saved){l, amax, q->format.kind == TQ_FORMAT_UINT};
        n->saved = sv;
    }
    return y;
}

tq_status tq_quantizer_apply(const tq_quantizer *q, const tq_tensor *x, float *out,
                             tq_error *err)
{
    if (!q || !x || !out) return tq_fail(err, TQ_STATUS_ARG, "quantizer_apply: NULL argument");
    char spec[128];
    tq_qspec_format(&q->spec, spec, sizeof spec);
    tq_layout l;
    if (!tq_layout_of(&q->spec, x, &l, spec, err)) return err->status;
    float *buf = malloc(2 * (size_t)l.count * sizeof *buf);
    if (!buf) return tq_fail(err, TQ_STATUS_NOMEM, "quantizer %s: out of memory", spec);
    tq_status st = tq_quant_prepare(q, x, &l, buf, buf + l.count, err);
    if (st == TQ_STATUS_OK) tq_fake_quant_forward(q->format, &l, buf + l.count, x->data, out);
    free(buf);
    return st;
}
