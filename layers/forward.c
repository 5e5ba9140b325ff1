/* The forward pass: walks the layer records in order, each reading earlier outputs, with
 * the quantizer slots of Linear and Conv2d applied to their input and weight. */
#include "internal.h" /* autograd's fused ops: conv2d -> batch norm -> ReLU, add -> ReLU */
#include "layers_internal.h"

#include <stdio.h>

/* x -> input quantizer, w -> weight quantizer, then the op itself. */
static tq_tensor *quantized_op(tq_tape *t, const tq_layer *l, tq_qlayer *q, tq_tensor *x)
{
    if (q->input_mul) x = tq_mul_channel(t, x, q->input_mul);
    if (q->input_q) x = tq_quantize(t, x, q->input_q);
    tq_tensor *w = q->weight_q ? tq_quantize(t, q->weight, q->weight_q) : q->weight;
    if (l->kind == TQ_LAYER_LINEAR) return tq_linear(t, x, w, q->bias);
    return tq_conv2d(t, x, w, q->bias, l->stride, l->pad);
}

/* Whether a layer from `from` on reads the output of layer `out`. */
static bool read_from(const tq_model *m, int out, int from)
{
    for (int j = from; j < m->n_layers; j++) {
        const tq_layer *l = &m->layers[j];
        if (l->src == out || (l->kind == TQ_LAYER_ADD && l->src2 == out)) return true;
    }
    return false;
}

/* In inference (nothing recorded), conv2d -> batch norm (-> ReLU) runs as one op when no
 * other layer reads the intermediate outputs: how many layers from i that covers, 0 for
 * none. */
static int eval_chain_length(const tq_model *m, const tq_tape *t, int i)
{
    if (tq_tape_training(t) || tq_tape_recording(t) || i + 1 >= m->n_layers) return 0;
    const tq_layer *conv = &m->layers[i], *bn = &m->layers[i + 1];
    if (conv->kind != TQ_LAYER_CONV2D || bn->kind != TQ_LAYER_BATCHNORM || bn->folded ||
        bn->src != i || read_from(m, i, i + 2))
        return 0;
    if (i + 2 < m->n_layers && m->layers[i + 2].kind == TQ_LAYER_RELU &&
        m->layers[i + 2].src == i + 1 && !read_from(m, i + 1, i + 3))
        return 3;
    return 2;
}

/* A batch norm whose output only the ReLU right after it reads: the two run as one op.
 * 2 (layers covered) or 0. */
static int bn_relu_length(const tq_model *m, int i)
{
    if (i + 1 >= m->n_layers) return 0;
    const tq_layer *bn = &m->layers[i], *relu = &m->layers[i + 1];
    return bn->kind == TQ_LAYER_BATCHNORM && !bn->folded && relu->kind == TQ_LAYER_RELU &&
                   relu->src == i && !read_from(m, i, i + 2)
               ? 2
               : 0;
}

/* A residual add whose output only the ReLU right after it reads: the two run as one op.
 * 2 (layers covered) or 0. */
static int add_relu_length(const tq_model *m, int i)
{
    if (i + 1 >= m->n_layers) return 0;
    const tq_layer *add = &m->layers[i], *relu = &m->layers[i + 1];
    return add->kind == TQ_LAYER_ADD && relu->kind == TQ_LAYER_RELU && relu->src == i &&
                   !read_from(m, i, i + 2)
               ? 2
               : 0;
}

static tq_tensor *chain_forward(tq_model *m, tq_tape *t, int i, int len, tq_tensor *x)
{
    const tq_layer *l = &m->layers[i], *bn = &m->layers[i + 1];
    tq_qlayer *q = &m->qlayers[l->qlayer];
    if (q->input_mul) x = tq_mul_channel(t, x, q->input_mul);
    if (q->input_q) x = tq_quantize(t, x, q->input_q);
    tq_tensor *w = q->weight_q ? tq_quantize(t, q->weight, q->weight_q) : q->weight;
    return tq_conv2d_bn_eval(t, x, w, q->bias, l->stride, l->pad, &m->params[bn->weight].t,
                             &m->params[bn->bias].t, &bn->bn, len == 3);
}

static tq_tensor *layer_forward(tq_model *m, tq_tape *t, const tq_layer *l, tq_tensor *x,
                                tq_tensor *x2, tq_rng *rng)
{
    switch (l->kind) {
    case TQ_LAYER_LINEAR:
    case TQ_LAYER_CONV2D:
        return quantized_op(t, l, &m->qlayers[l->qlayer], x);
    case TQ_LAYER_BATCHNORM:
        if (l->folded) return x;
        return tq_batchnorm(t, x, &m->params[l->weight].t, &m->params[l->bias].t, &l->bn);
    case TQ_LAYER_MAXPOOL2D:
        return tq_maxpool2d(t, x, l->kernel, l->stride);
    case TQ_LAYER_AVGPOOL2D:
        return tq_avgpool2d(t, x, l->kernel, l->stride);
    case TQ_LAYER_GLOBAL_AVGPOOL:
        return tq_global_avgpool(t, x);
    case TQ_LAYER_RELU:
        return tq_relu(t, x);
    case TQ_LAYER_DROPOUT:
        if (tq_tape_training(t) && l->p > 0.0f && !rng)
            return tq_tape_fail(t, TQ_STATUS_ARG, "model %s: layer %s: dropout in training needs an rng",
                                m->name, l->name);
        return tq_dropout(t, x, l->p, rng);
    case TQ_LAYER_FLATTEN:
        return x->ndim == 2 ? x : tq_flatten(t, x);
    case TQ_LAYER_ADD:
        return tq_add(t, x, x2);
    }
    return tq_tape_fail(t, TQ_STATUS_ARG, "model %s: layer %s has unknown kind %d", m->name,
                        l->name, (int)l->kind);
}

/* Layers 0..last (at least; a fused chain may run past it); the model input for last -1. */
static tq_tensor *forward_to(tq_model *m, tq_tape *t, tq_tensor *x, tq_rng *rng, int last)
{
    if (!m || !m->finished)
        return tq_tape_fail(t, TQ_STATUS_ARG, "model: forward needs a finished model");
    if (!x) {
        if (tq_tape_error(t)->status == TQ_STATUS_OK)
            tq_tape_fail(t, TQ_STATUS_ARG, "model %s: forward got no input", m->name);
        return NULL;
    }
    /* A flat (N,C) batch is accepted for a model of 1x1 inputs. */
    bool flat_ok = x->ndim == 2 && m->h == 1 && m->w == 1 && x->shape[1] == m->c;
    if (flat_ok) x = tq_reshape(t, x, 4, (int32_t[]){x->shape[0], m->c, 1, 1});
    else if (x->ndim != 4 || x->shape[1] != m->c || x->shape[2] != m->h || x->shape[3] != m->w) {
        char s[64];
        return tq_tape_fail(t, TQ_STATUS_SHAPE, "model %s: expected input (N,%d,%d,%d), got %s",
                            m->name, m->c, m->h, m->w, tq_shape_str(x, s, sizeof s));
    }
    m->last_input = x;
    if (last < 0) return x;
    for (int i = 0; i <= last; i++) {
        const tq_layer *l = &m->layers[i];
        tq_tensor *in = l->src == TQ_MODEL_INPUT ? x : m->outs[l->src];
        tq_tensor *in2 = l->kind == TQ_LAYER_ADD
                             ? (l->src2 == TQ_MODEL_INPUT ? x : m->outs[l->src2])
                             : NULL;
        int chain = eval_chain_length(m, t, i);
        tq_tensor *y = NULL;
        if (chain)
            y = chain_forward(m, t, i, chain, in);
        else if ((chain = bn_relu_length(m, i)))
            y = tq_batchnorm_relu(t, in, &m->params[l->weight].t, &m->params[l->bias].t, &l->bn);
        else if ((chain = add_relu_length(m, i)))
            y = tq_add_relu(t, in, in2);
        if (chain) { /* the covered layers all show the chain's output */
            for (int j = i; j < i + chain - 1; j++) m->outs[j] = y;
            i += chain - 1;
            m->outs[i] = y;
        } else {
            m->outs[i] = layer_forward(m, t, l, in, in2, rng);
        }
        if (!m->outs[i]) {
            if (tq_tape_error(t)->status == TQ_STATUS_OK)
                tq_tape_fail(t, TQ_STATUS_ARG, "model %s: layer %s produced no output", m->name,
                             l->name);
            return NULL;
        }
    }
    return m->outs[last];
}

tq_tensor *tq_model_forward(tq_model *m, tq_tape *t, tq_tensor *x, tq_rng *rng)
{
    return forward_to(m, t, x, rng, m ? m->n_layers - 1 : 0);
}

tq_tensor *tq_model_forward_to(tq_model *m, tq_tape *t, tq_tensor *x, int last)
{
    if (m && m->finished && (last < -1 || last >= m->n_layers))
        return tq_tape_fail(t, TQ_STATUS_ARG, "model %s: forward to layer %d of %d", m->name,
                            last, m->n_layers);
    if (tq_tape_training(t))
        return tq_tape_fail(t, TQ_STATUS_ARG, "model: a partial forward is for inference only");
    return forward_to(m, t, x, NULL, last);
}
