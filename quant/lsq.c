/* The fake-quant op of a quantizer that learns its scales (spec option scale=learn): the
 * fixed-scale forward, and LSQ's backward, which also gives amax a gradient (quant.h). */
#include "quant_internal.h"

/* As in fake_quant.c: only tensors far larger than any activation here go parallel. */
#define PARALLEL_MIN (1 << 22)

typedef struct lsq_saved {
    tq_layout layout;
    const float *scale; /* l.count steps, on the arena */
    double *partial;    /* one sum per span, on the arena: summed in span order afterwards, so
                           the result is the same for any thread count */
    double *per_amax;   /* l.count sums */
    tq_format format;   /* effective (uintN after the unsigned switch) */
    double coef;        /* g * ds/damax = 1 / (qmax * sqrt(N * Q_P)) */
    bool pass;          /* ste=pass: x's gradient passes outside the range too */
} lsq_saved;

/* One run of elements sharing step s: adds x's gradient into gx (when x has one) and returns
 * sum g * dx_hat/ds. A zero step (amax 0) quantizes everything to 0: no gradient for s, and
 * x's passes where the fixed-scale STE would pass it (x = 0, or everywhere with ste=pass). */
static double lsq_run(const float *restrict x, const float *restrict g, float *restrict gx,
                      int64_t len, float s, tq_format f, bool pass)
{
    if (!(s > 0.0f)) {
        for (int64_t i = 0; gx && i < len; i++) gx[i] += pass || x[i] == 0.0f ? g[i] : 0.0f;
        return 0.0;
    }
    bool fp = tq_format_is_float(f);
    tq_fp_params p = fp ? tq_fp_params_of(f) : (tq_fp_params){0, 0, 0.0f};
    float lo = tq_format_min(f), hi = tq_format_max(f);
    double sum = 0.0;
    for (int64_t i = 0; i < len; i++) {
        float v = x[i] / s; /* the forward's own division, so the codes are the forward's */
        bool inside = v >= lo && v <= hi;
        float d = inside     ? (fp ? tq_fp_round(v, p) : rintf(v)) - v
                  : v < lo   ? lo
                  : v > hi   ? hi
                             : 0.0f; /* NaN */
        sum += (double)g[i] * (double)d;
        if (gx && (inside || pass)) gx[i] += g[i];
    }
    return sum;
}

static void lsq_backward(tq_node *n)
{
    const lsq_saved *sv = n->saved;
    const tq_layout *l = &sv->layout;
    const float *x = n->in[0]->data, *g = n->out->grad;
    float *gx = n->in[0]->grad, *gamax = n->in[1]->grad;
    int64_t spans = tq_layout_span_count(l);
#pragma omp parallel for schedule(static) if (n->out->numel >= PARALLEL_MIN)
    for (int64_t k = 0; k < spans; k++) {
        tq_span s = tq_layout_span(l, k);
        sv->partial[k] = lsq_run(x + s.start, g + s.start, gx ? gx + s.start : NULL, s.len,
                                 sv->scale[s.sidx], sv->format, sv->pass);
    }
    for (int64_t j = 0; j < l->count; j++) sv->per_amax[j] = 0.0;
    for (int64_t k = 0; k < spans; k++) sv->per_amax[tq_layout_span(l, k).sidx] += sv->partial[k];
    for (int64_t j = 0; j < l->count; j++) gamax[j] += (float)(sv->coef * sv->per_amax[j]);
}

static const tq_op_def op_lsq = {.name = "fake_quant_lsq", .backward = lsq_backward};

tq_tensor *tq_lsq_op(tq_tape *t, tq_tensor *x, tq_quantizer *q)
{
    tq_error e = {0};
    tq_layout l;
    if (!tq_layout_of(&q->spec, x, &l, "quantize", &e))
        return tq_tape_fail(t, e.status, "%s", e.msg);
    /* learnable specs have per-tensor or per-channel layouts: every span has one step */
    TQ_ASSERT(l.kind != TQ_BLOCK_BLOCK);
    /* amax as an input of the op whose gradient is the quantizer's own buffer, as a weight's
     * is the model's: the op is recorded, and amax learns, even where x needs no gradient
     * (the image entering the first layer) */
    tq_tensor *amax = tq_tape_tensor(t, 1, (int32_t[]){(int32_t)l.count}, false);
    float *scale = tq_tape_alloc(t, (size_t)l.count * sizeof(float));
    if (!amax || !scale) return NULL;
    if (tq_quant_prepare(q, x, &l, amax->data, scale, &e) != TQ_STATUS_OK)
        return tq_tape_fail(t, e.status, "%s", e.msg);
    TQ_ASSERT(q->amax_grad);
    amax->grad = q->amax_grad;
    tq_tensor *in[2] = {x, amax};
    tq_tensor *y = tq_tape_tensor(t, x->ndim, x->shape, tq_tape_needs_grad(t, in, 2));
    if (!y) return NULL;
    tq_fake_quant_forward(q->format, &l, scale, x->data, y->data);
    tq_node *n = tq_tape_record(t, &op_lsq, y, in, 2);
    if (!n) return y;
    int64_t spans = tq_layout_span_count(&l);
    lsq_saved *sv = tq_tape_alloc(t, sizeof *sv);
    double *sums = tq_tape_alloc(t, (size_t)(spans + l.count) * sizeof(double));
    if (!sv || !sums) return NULL;
    double qmax = tq_format_max(q->format), per_amax = (double)x->numel / (double)l.count;
    *sv = (lsq_saved){.layout = l, .scale = scale, .partial = sums, .per_amax = sums + spans,
                      .format = q->format, .coef = 1.0 / (qmax * sqrt(per_amax * qmax)),
                      .pass = q->spec.ste == TQ_STE_PASSTHROUGH};
    n->saved = sv;
    return y;
}
