/* Per-input-channel rescaling of a Linear or Conv2d (SmoothQuant, AWQ): the weights take
 * the scale, and its inverse goes into the layer before or into a stored input multiplier. */
#include "layers_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int layer_of_qlayer(const tq_model *m, int qi)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].qlayer == qi) return i;
    return -1;
}

/* How many layers read the output of handle h. */
static int consumers(const tq_model *m, int h)
{
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const tq_layer *l = &m->layers[i];
        n += l->src == h;
        n += l->kind == TQ_LAYER_ADD && l->src2 == h;
    }
    return n;
}

/* The Linear/Conv2d whose output reaches layer li only through layers that commute with a
 * positive per-channel scale, each feeding only the next; -1 if there is none. */
static int absorbing_layer(const tq_model *m, int li)
{
    int p = m->layers[li].src;
    while (p >= 0 && consumers(m, p) == 1) {
        const tq_layer *l = &m->layers[p];
        if (l->kind == TQ_LAYER_LINEAR || l->kind == TQ_LAYER_CONV2D) return p;
        bool passes = l->kind == TQ_LAYER_RELU || l->kind == TQ_LAYER_DROPOUT ||
                      (l->kind == TQ_LAYER_BATCHNORM && l->folded);
        if (!passes) return -1;
        p = l->src;
    }
    return -1;
}

static tq_status check_qlayer(const tq_model *m, int qi, const char *what, tq_error *err)
{
    if (!m || !m->finished)
        return tq_fail(err, TQ_STATUS_ARG, "%s: needs a finished model", what);
    if (qi < 0 || qi >= m->n_qlayers)
        return tq_fail(err, TQ_STATUS_ARG, "model %s: %s: qlayer %d out of range 0..%d", m->name,
                       what, qi, m->n_qlayers - 1);
    return TQ_STATUS_OK;
}

int tq_model_scale_input(tq_model *m, int qi, const float *s, tq_error *err)
{
    if (check_qlayer(m, qi, "scale_input", err)) return -1;
    tq_qlayer *q = &m->qlayers[qi];
    tq_tensor *w = q->weight; /* (O,C) or (O,C,kh,kw) */
    int32_t out = w->shape[0], in = w->shape[1];
    int64_t inner = w->ndim == 4 ? (int64_t)w->shape[2] * w->shape[3] : 1;
    for (int32_t c = 0; c < in; c++)
        if (!(isfinite(s[c]) && s[c] > 0.0f)) {
            tq_fail(err, TQ_STATUS_ARG, "model %s: layer %s: input scale %d is %g (expected finite, > 0)",
                    m->name, q->name, c, (double)s[c]);
            return -1;
        }
    for (int32_t o = 0; o < out; o++)
        for (int32_t c = 0; c < in; c++) {
            float *row = w->data + ((int64_t)o * in + c) * inner;
            for (int64_t k = 0; k < inner; k++) row[k] *= s[c];
        }
    int p = absorbing_layer(m, layer_of_qlayer(m, qi));
    if (p >= 0) {
        tq_qlayer *prev = &m->qlayers[m->layers[p].qlayer];
        tq_tensor *pw = prev->weight;
        if (pw->shape[0] == in) {
            int64_t row = pw->numel / pw->shape[0];
            for (int32_t c = 0; c < in; c++) {
                for (int64_t k = 0; k < row; k++) pw->data[c * row + k] /= s[c];
                if (prev->bias) prev->bias->data[c] /= s[c];
            }
            return 1;
        }
    }
    if (!q->input_mul) {
        q->input_mul = tq_tensor_new(1, &in, false);
        if (!q->input_mul) {
            tq_fail(err, TQ_STATUS_NOMEM, "model %s: layer %s: out of memory", m->name, q->name);
            return -1;
        }
        for (int32_t c = 0; c < in; c++) q->input_mul->data[c] = 1.0f;
    }
    for (int32_t c = 0; c < in; c++) q->input_mul->data[c] /= s[c];
    return 0;
}

tq_status tq_model_set_input_mul(tq_model *m, int qi, const float *mul, int64_t n,
                                 tq_error *err)
{
    if (check_qlayer(m, qi, "set_input_mul", err)) return err->status;
    tq_qlayer *q = &m->qlayers[qi];
    if (!mul) {
        tq_tensor_free(q->input_mul);
        q->input_mul = NULL;
        return TQ_STATUS_OK;
    }
    int32_t in = q->weight->shape[1];
    if (n != in)
        return tq_fail(err, TQ_STATUS_ARG, "model %s: layer %s: input_mul has %lld values, expected %d",
                       m->name, q->name, (long long)n, in);
    for (int32_t c = 0; c < in; c++)
        if (!(isfinite(mul[c]) && mul[c] > 0.0f))
            return tq_fail(err, TQ_STATUS_ARG, "model %s: layer %s: input_mul %d is %g (expected finite, > 0)",
                           m->name, q->name, c, (double)mul[c]);
    if (!q->input_mul && !(q->input_mul = tq_tensor_new(1, &in, false)))
        return tq_fail(err, TQ_STATUS_NOMEM, "model %s: layer %s: out of memory", m->name, q->name);
    memcpy(q->input_mul->data, mul, (size_t)in * sizeof(float));
    return TQ_STATUS_OK;
}

tq_tensor *tq_model_qlayer_input(tq_model *m, int qi)
{
    int li = layer_of_qlayer(m, qi);
    if (li < 0 || !m->outs) return NULL;
    int src = m->layers[li].src;
    return src == TQ_MODEL_INPUT ? m->last_input : m->outs[src];
}

tq_tensor *tq_model_qlayer_apply(tq_model *m, int qi, tq_tape *t, tq_tensor *x, tq_tensor *w)
{
    int li = m && m->finished ? layer_of_qlayer(m, qi) : -1;
    if (li < 0) return tq_tape_fail(t, TQ_STATUS_ARG, "qlayer_apply: no qlayer %d", qi);
    const tq_layer *l = &m->layers[li];
    if (l->kind == TQ_LAYER_LINEAR) return tq_linear(t, x, w, NULL);
    return tq_conv2d(t, x, w, NULL, l->stride, l->pad);
}
